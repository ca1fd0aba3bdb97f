//! `strata bench tpch|ssb`: runs a benchmark's queries (built into the binary from
//! `benches/tpch/` and `benches/ssb/`) against the tables `strata tpch gen` / `strata ssb
//! gen` make, generating them first when the zone lacks them (or holds them at another
//! scale factor or format), and reports per query the cold and warm times, rows, files
//! read and pruned, bytes read and peak memory, as a table and optionally as JSON.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use object_store::path::Path;
use strata_engine::datagen::{self, GenFormat, Generated, Generation, Progress};
use strata_engine::providers::metrics::PeakMemoryPool;
use strata_engine::{Output, Session};

/// The 22 queries, by number.
pub const TPCH: [(u32, &str); 22] = [
    (1, include_str!("../../benches/tpch/q01.sql")),
    (2, include_str!("../../benches/tpch/q02.sql")),
    (3, include_str!("../../benches/tpch/q03.sql")),
    (4, include_str!("../../benches/tpch/q04.sql")),
    (5, include_str!("../../benches/tpch/q05.sql")),
    (6, include_str!("../../benches/tpch/q06.sql")),
    (7, include_str!("../../benches/tpch/q07.sql")),
    (8, include_str!("../../benches/tpch/q08.sql")),
    (9, include_str!("../../benches/tpch/q09.sql")),
    (10, include_str!("../../benches/tpch/q10.sql")),
    (11, include_str!("../../benches/tpch/q11.sql")),
    (12, include_str!("../../benches/tpch/q12.sql")),
    (13, include_str!("../../benches/tpch/q13.sql")),
    (14, include_str!("../../benches/tpch/q14.sql")),
    (15, include_str!("../../benches/tpch/q15.sql")),
    (16, include_str!("../../benches/tpch/q16.sql")),
    (17, include_str!("../../benches/tpch/q17.sql")),
    (18, include_str!("../../benches/tpch/q18.sql")),
    (19, include_str!("../../benches/tpch/q19.sql")),
    (20, include_str!("../../benches/tpch/q20.sql")),
    (21, include_str!("../../benches/tpch/q21.sql")),
    (22, include_str!("../../benches/tpch/q22.sql")),
];

/// The 13 SSB queries, by number.
pub const SSB: [(&str, &str); 13] = [
    ("1.1", include_str!("../../benches/ssb/q1.1.sql")),
    ("1.2", include_str!("../../benches/ssb/q1.2.sql")),
    ("1.3", include_str!("../../benches/ssb/q1.3.sql")),
    ("2.1", include_str!("../../benches/ssb/q2.1.sql")),
    ("2.2", include_str!("../../benches/ssb/q2.2.sql")),
    ("2.3", include_str!("../../benches/ssb/q2.3.sql")),
    ("3.1", include_str!("../../benches/ssb/q3.1.sql")),
    ("3.2", include_str!("../../benches/ssb/q3.2.sql")),
    ("3.3", include_str!("../../benches/ssb/q3.3.sql")),
    ("3.4", include_str!("../../benches/ssb/q3.4.sql")),
    ("4.1", include_str!("../../benches/ssb/q4.1.sql")),
    ("4.2", include_str!("../../benches/ssb/q4.2.sql")),
    ("4.3", include_str!("../../benches/ssb/q4.3.sql")),
];

/// A benchmark suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    Tpch,
    Ssb,
}

impl Suite {
    /// The suite's name in commands: `tpch`, `ssb`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Tpch => "tpch",
            Suite::Ssb => "ssb",
        }
    }

    /// The suite's name for people.
    pub fn title(self) -> &'static str {
        match self {
            Suite::Tpch => "TPC-H",
            Suite::Ssb => "SSB",
        }
    }

    fn tables(self) -> &'static [&'static str] {
        match self {
            Suite::Tpch => &strata_engine::datagen::tpch::TABLES,
            Suite::Ssb => &strata_engine::datagen::ssb::TABLES,
        }
    }

    /// Whether the fact table is partitioned by year unless asked otherwise.
    fn partitioned_by_default(self) -> bool {
        self == Suite::Ssb
    }

    /// Generates the suite's tables into a zone.
    pub async fn generate(
        self,
        session: &Session,
        generation: Generation,
        progress: Progress,
    ) -> strata_engine::Result<Vec<(String, u64)>> {
        let sources = match self {
            Suite::Tpch => strata_engine::datagen::tpch::sources(generation.sf),
            Suite::Ssb => strata_engine::datagen::ssb::sources(generation.sf),
        };
        generation.run(session, sources, progress).await
    }

    fn queries(self) -> Vec<Query> {
        match self {
            Suite::Tpch => TPCH
                .iter()
                .map(|(n, sql)| Query {
                    id: serde_json::json!(n),
                    label: format!("q{n:02}"),
                    sql,
                })
                .collect(),
            Suite::Ssb => SSB
                .iter()
                .map(|(n, sql)| Query {
                    id: serde_json::json!(n),
                    label: format!("q{n}"),
                    sql,
                })
                .collect(),
        }
    }
}

/// One query of a suite.
#[derive(Debug, Clone)]
struct Query {
    /// How JSON names it: 6 for TPC-H Q6, "1.1" for SSB Q1.1.
    id: serde_json::Value,
    /// How tables name it: q06, q1.1.
    label: String,
    sql: &'static str,
}

impl Query {
    /// Whether `asked` (from `--queries`: 6, 06, q6, 1.1, q1.1) names this query.
    fn is(&self, asked: &str) -> bool {
        let asked = asked.trim().trim_start_matches(['q', 'Q']);
        match &self.id {
            serde_json::Value::Number(n) => asked.parse::<u64>().ok() == n.as_u64(),
            other => other.as_str() == Some(asked),
        }
    }
}

/// What `strata bench` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub suite: Suite,
    pub zone: String,
    /// Queries to run, as `--queries` names them (all when empty).
    pub queries: Vec<String>,
    pub iterations: usize,
    /// The scale factor wanted; `None` takes the tables the zone holds.
    pub sf: Option<f64>,
    /// The format wanted; `None` takes the tables the zone holds.
    pub format: Option<GenFormat>,
    /// Partitioning wanted when it differs from the suite's default.
    pub partitioned: Option<bool>,
    pub output: Option<PathBuf>,
}

/// One query's measurements.
#[derive(Debug)]
struct Measured {
    query: Query,
    cold_ms: f64,
    warm_ms: Vec<f64>,
    rows: usize,
    /// Distinct files opened (data files, logs and all), as the footer counts them.
    files: u64,
    bytes: u64,
    /// Data files of the query's tables.
    files_total: u64,
    /// Of those, the files the query opened.
    files_read: u64,
    peak_memory: u64,
}

impl Measured {
    fn warm_best(&self) -> f64 {
        let warm = self.warm_ms.iter().copied().fold(f64::INFINITY, f64::min);
        if warm.is_finite() { warm } else { self.cold_ms }
    }

    fn files_pruned(&self) -> u64 {
        self.files_total.saturating_sub(self.files_read)
    }
}

async fn run_once(session: &Session, sql: &str) -> anyhow::Result<(f64, usize)> {
    let start = Instant::now();
    let mut rows = 0;
    for statement in strata_engine::sql::split::split_statements(sql) {
        if let Output::Rows(mut stream) = session.execute(&statement.sql).await? {
            while let Some(batch) = stream.next().await {
                rows += batch.map_err(strata_engine::Error::from)?.num_rows();
            }
        }
    }
    Ok((start.elapsed().as_secs_f64() * 1000.0, rows))
}

/// Makes sure the zone holds the suite's tables as asked, generating them when it does not;
/// returns how they were made, when known.
async fn ensure_tables(session: &Session, options: &Options) -> anyhow::Result<Option<Generated>> {
    let suite = options.suite;
    let zone = options.zone.as_str();
    let snapshot = session.catalog().snapshot();
    snapshot.zone(zone)?;
    let complete = suite
        .tables()
        .iter()
        .all(|t| snapshot.table(zone, t).is_ok());
    let made = datagen::generated(session, zone, suite.tables());
    let fits = match (&made, complete) {
        (_, false) => false,
        (Some(made), true) => {
            options.sf.is_none_or(|sf| sf == made.sf)
                && options.format.is_none_or(|f| f == made.format)
                && options.partitioned.is_none_or(|p| p == made.partitioned)
        }
        // Tables made some other way are taken as they are, unless a scale factor or
        // format is asked for.
        (None, true) => options.sf.is_none() && options.format.is_none(),
    };
    if fits {
        return Ok(made);
    }
    let sf = options.sf.or(made.as_ref().map(|m| m.sf)).unwrap_or(1.0);
    let format = options
        .format
        .or(made.as_ref().map(|m| m.format))
        .unwrap_or(GenFormat::Parquet);
    let partitioned = options
        .partitioned
        .or(made.as_ref().map(|m| m.partitioned))
        .unwrap_or(suite.partitioned_by_default());
    say_err!(
        "generating {} at scale factor {sf} as {format} into {zone}",
        suite.title()
    );
    let generation = Generation {
        suite: suite.name(),
        sf,
        zone: zone.to_string(),
        format,
        partitioned,
    };
    generate_tables(session, suite, generation, &mut std::io::stderr()).await?;
    Ok(datagen::generated(session, zone, suite.tables()))
}

/// The data files of each table of the suite: the object-store prefix and how many.
async fn table_files(
    session: &Session,
    options: &Options,
) -> anyhow::Result<Vec<(&'static str, Path, u64)>> {
    let mut out = vec![];
    for table in options.suite.tables() {
        let (prefix, files) = datagen::table_files(session, &options.zone, table).await?;
        out.push((*table, prefix, files));
    }
    Ok(out)
}

/// The suite's tables a query reads.
fn tables_of<'a>(
    session: &Session,
    sql: &str,
    tables: &'a [(&'static str, Path, u64)],
) -> Vec<&'a (&'static str, Path, u64)> {
    let state = session.context().state();
    let mut names = vec![];
    let parsed = strata_engine::sql::parse(sql).unwrap_or_default();
    for statement in parsed.iter().filter_map(|p| p.statement.to_datafusion()) {
        if let Ok(references) = state.resolve_table_references(&statement) {
            names.extend(references.iter().map(|r| r.table().to_ascii_lowercase()));
        }
    }
    tables
        .iter()
        .filter(|(name, ..)| names.iter().any(|n| n == name))
        .collect()
}

/// Runs the benchmark; returns the number of failed queries.
pub async fn run(session: &Session, options: &Options) -> anyhow::Result<usize> {
    let suite = options.suite;
    let zone = options.zone.as_str();
    session.use_zone(zone).await?;
    let all = suite.queries();
    for asked in &options.queries {
        if !all.iter().any(|q| q.is(asked)) {
            anyhow::bail!(
                "{} has no query {asked}; its queries are {}",
                suite.title(),
                all.iter()
                    .map(|q| q.id.to_string().trim_matches('"').to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    // Queries are checked first: generating can take minutes.
    let made = ensure_tables(session, options).await?;
    let files = table_files(session, options).await?;
    let runtime = session.context().runtime_env();
    let pool = runtime.memory_pool.downcast_ref::<PeakMemoryPool>();
    let mut results = vec![];
    let mut failed = 0;
    for query in all
        .into_iter()
        .filter(|q| options.queries.is_empty() || options.queries.iter().any(|a| q.is(a)))
    {
        if let Some(pool) = pool {
            pool.reset_peak();
        }
        let (cold_ms, rows) = match run_once(session, query.sql).await {
            Ok(r) => r,
            Err(e) => {
                say_err!("{}: error: {}", query.label, crate::exec::describe(&e));
                failed += 1;
                continue;
            }
        };
        let peak_memory = pool.map_or(0, PeakMemoryPool::peak);
        let mut warm_ms = vec![];
        let mut warm_failed = false;
        for _ in 1..options.iterations.max(1) {
            match run_once(session, query.sql).await {
                Ok((ms, _)) => warm_ms.push(ms),
                Err(e) => {
                    say_err!(
                        "{}: error in a warm run: {}",
                        query.label,
                        crate::exec::describe(&e)
                    );
                    warm_failed = true;
                    break;
                }
            }
        }
        if warm_failed {
            failed += 1;
            continue;
        }
        // Files and bytes of the last run: once footers and statistics are cached (after the
        // cold run), the files a query opens are the ones whose data it reads, so pruning
        // at run time (dynamic join filters) shows as well as pruning at planning.
        let read = session.counters().summary();
        let opened = session.counters().files_opened();
        let tables = tables_of(session, query.sql, &files);
        let files_total = tables.iter().map(|(_, _, n)| n).sum();
        let files_read = opened
            .iter()
            .filter(|path| {
                let Ok(path) = Path::parse(path) else {
                    return false;
                };
                tables
                    .iter()
                    .any(|(_, table, _)| datagen::is_data_file(table, &path))
            })
            .count() as u64;
        let m = Measured {
            query,
            cold_ms,
            warm_ms,
            rows,
            files: read.files,
            bytes: read.bytes,
            files_total,
            files_read,
            peak_memory,
        };
        say_err!(
            "{}: {:.1} ms cold, {} rows",
            m.query.label,
            m.cold_ms,
            m.rows
        );
        results.push(m);
    }
    print_table(suite, zone, made.as_ref(), &results);
    if let Some(path) = &options.output {
        let json: Vec<serde_json::Value> = results
            .iter()
            .map(|m| {
                serde_json::json!({
                    "query": m.query.id,
                    "label": m.query.label,
                    "suite": suite.name(),
                    "sf": made.as_ref().map(|g| g.sf),
                    "format": made.as_ref().map(|g| g.format.to_string()),
                    "partitioned": made.as_ref().map(|g| g.partitioned),
                    "cold_ms": round3(m.cold_ms),
                    "warm_ms": m.warm_ms.iter().copied().map(round3).collect::<Vec<_>>(),
                    "warm_best_ms": round3(m.warm_best()),
                    "rows": m.rows,
                    "files": m.files,
                    "bytes": m.bytes,
                    "files_total": m.files_total,
                    "files_read": m.files_read,
                    "files_pruned": m.files_pruned(),
                    "peak_memory_bytes": m.peak_memory,
                    "build": build_description(),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(failed)
}

fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// How this binary was built, as timings depend on it: the profile, and the CPU features
/// the compiler was allowed to use beyond the architecture's baseline (`-C target-cpu`).
pub fn build_description() -> String {
    let profile = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    let features: &[(&str, bool)] = &[
        ("sse4.2", cfg!(target_feature = "sse4.2")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("bmi2", cfg!(target_feature = "bmi2")),
        ("aes", cfg!(target_feature = "aes")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("avx512bw", cfg!(target_feature = "avx512bw")),
        ("neon", cfg!(target_feature = "neon")),
    ];
    let on: Vec<&str> = features
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    if on.is_empty() {
        format!(
            "{profile}, {} baseline instructions",
            std::env::consts::ARCH
        )
    } else {
        format!(
            "{profile}, {} with {}",
            std::env::consts::ARCH,
            on.join(", ")
        )
    }
}

fn print_table(suite: Suite, zone: &str, made: Option<&Generated>, results: &[Measured]) {
    match made {
        Some(g) => say!(
            "{} at scale factor {} ({}{}) in {zone}",
            suite.title(),
            g.sf,
            g.format,
            if g.partitioned {
                ", partitioned by year"
            } else {
                ""
            }
        ),
        None => say!("{} in {zone}", suite.title()),
    }
    say!(
        "strata {}: {}",
        env!("CARGO_PKG_VERSION"),
        build_description()
    );
    say!();
    say!(
        "| query | cold ms | warm ms (best) | rows | files read | files pruned | bytes read | peak memory |"
    );
    say!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut total_cold = 0.0;
    let mut total_warm = 0.0;
    for m in results {
        total_cold += m.cold_ms;
        total_warm += m.warm_best();
        say!(
            "| {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
            m.query.label,
            m.cold_ms,
            m.warm_best(),
            m.rows,
            m.files_read,
            m.files_pruned(),
            m.bytes,
            mebibytes(m.peak_memory)
        );
    }
    say!("| total | {total_cold:.1} | {total_warm:.1} | | | | | |");
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `strata tpch gen` and `strata ssb gen`: generates a benchmark's tables with a progress
/// line, then writes the rows of each table to `out`.
pub async fn generate_tables(
    session: &Session,
    suite: Suite,
    generation: Generation,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<usize> {
    use std::io::IsTerminal;

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let shown = bar.clone();
    let start = std::time::Instant::now();
    let (sf, zone, format) = (generation.sf, generation.zone.clone(), generation.format);
    let written = suite
        .generate(
            session,
            generation,
            std::sync::Arc::new(move |table: &str, rows: u64| {
                shown.set_message(format!("{table}: {rows} rows"));
            }),
        )
        .await;
    bar.finish_and_clear();
    let written = written?;
    for (table, rows) in &written {
        writeln!(out, "{zone}.{table}: {rows} rows")?;
    }
    writeln!(
        out,
        "generated {} at scale factor {sf} as {format} in {:.1}s",
        suite.title(),
        start.elapsed().as_secs_f64()
    )?;
    Ok(0)
}
