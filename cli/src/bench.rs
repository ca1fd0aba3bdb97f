//! `strata bench tpch`: runs the TPC-H queries (built into the binary from
//! `benches/tpch/`) against tables made by `strata tpch gen`, and reports per query the cold
//! and warm times, rows, files and bytes read, as a table and optionally as JSON.

use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
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

/// One query's measurements.
#[derive(Debug)]
struct Measured {
    query: u32,
    cold_ms: f64,
    warm_ms: Vec<f64>,
    rows: usize,
    files: u64,
    bytes: u64,
}

async fn run_once(session: &Session, sql: &str) -> anyhow::Result<(f64, usize)> {
    let start = Instant::now();
    let mut rows = 0;
    for statement in strata_engine::split::split_statements(sql) {
        if let Output::Rows(mut stream) = session.execute(&statement.sql).await? {
            while let Some(batch) = stream.next().await {
                rows += batch.map_err(strata_engine::Error::from)?.num_rows();
            }
        }
    }
    Ok((start.elapsed().as_secs_f64() * 1000.0, rows))
}

/// Runs the benchmark; returns the number of failed queries.
pub async fn tpch(
    session: &Session,
    zone: &str,
    queries: &[u32],
    iterations: usize,
    output: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    session.use_zone(zone).await?;
    if session
        .catalog()
        .snapshot()
        .table(zone, "lineitem")
        .is_err()
    {
        anyhow::bail!(
            "zone {zone} has no TPC-H tables; run `strata tpch gen --sf 1 --zone {zone}` first"
        );
    }
    let mut results = vec![];
    let mut failed = 0;
    for (number, sql) in TPCH
        .iter()
        .filter(|(n, _)| queries.is_empty() || queries.contains(n))
    {
        let (cold_ms, rows) = match run_once(session, sql).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("q{number:02}: error: {e:#}");
                failed += 1;
                continue;
            }
        };
        let read = session.counters().summary();
        let mut warm_ms = vec![];
        for _ in 1..iterations.max(1) {
            warm_ms.push(run_once(session, sql).await?.0);
        }
        let m = Measured {
            query: *number,
            cold_ms,
            warm_ms,
            rows,
            files: read.files,
            bytes: read.bytes,
        };
        eprintln!("q{:02}: {:.1} ms cold, {} rows", m.query, m.cold_ms, m.rows);
        results.push(m);
    }
    println!("| query | cold ms | warm ms (best) | rows | files | bytes read |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut total_cold = 0.0;
    let mut total_warm = 0.0;
    for m in &results {
        let warm = m.warm_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let warm = if warm.is_finite() { warm } else { m.cold_ms };
        total_cold += m.cold_ms;
        total_warm += warm;
        println!(
            "| q{:02} | {:.1} | {:.1} | {} | {} | {} |",
            m.query, m.cold_ms, warm, m.rows, m.files, m.bytes
        );
    }
    println!("| total | {total_cold:.1} | {total_warm:.1} | | | |");
    if let Some(path) = output {
        let json: Vec<String> = results
            .iter()
            .map(|m| {
                format!(
                    "{{\"query\":{},\"cold_ms\":{:.3},\"warm_ms\":[{}],\"rows\":{},\"files\":{},\"bytes\":{}}}",
                    m.query,
                    m.cold_ms,
                    m.warm_ms.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>().join(","),
                    m.rows,
                    m.files,
                    m.bytes
                )
            })
            .collect();
        std::fs::write(path, format!("[{}]\n", json.join(",\n")))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(failed)
}
