//! The input loops: statements from `-c`, from `-f` files, and from the REPL, each run
//! through the engine and printed.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustyline::error::ReadlineError;
use strata_engine::sql::split::split_statements;
use strata_engine::{Output, ScanSummary, Session};

use crate::command::{Command, help};
use crate::helper::ReplHelper;
use crate::print_format::PrintFormat;

/// Printing settings of a run.
#[derive(Debug, Clone)]
pub struct Printer {
    pub format: PrintFormat,
    /// Show the footer (rows, time, files and bytes): in the REPL and in table format.
    pub footer: bool,
    pub timing: bool,
    /// Show a progress line for long queries (only on a terminal).
    pub progress: bool,
}

/// Runs every statement of a text; returns how many failed. `origin` names the file for
/// errors, and `stop_on_error` ends the run at the first failure.
pub async fn run_text(
    session: &Session,
    text: &str,
    origin: Option<&Path>,
    printer: &Printer,
    stop_on_error: bool,
) -> usize {
    let mut failed = 0;
    for statement in split_statements(text) {
        if statement.sql.starts_with('\\') {
            // The commands that only show things work in scripts too.
            let outcome = match statement.sql.parse::<Command>() {
                Ok(
                    command @ (Command::Describe(_)
                    | Command::ListTables(_)
                    | Command::ListZones
                    | Command::Lineage(_)
                    | Command::Help),
                ) => run_command(session, command, &mut printer.clone()).await,
                Ok(_) => Err(anyhow::anyhow!(
                    "this backslash command works in the REPL only: {}",
                    statement.sql
                )),
                Err(e) => Err(anyhow::anyhow!(e)),
            };
            if let Err(e) = outcome {
                eprintln!("error: {}", describe(&e));
                failed += 1;
                if stop_on_error {
                    break;
                }
            }
            continue;
        }
        if let Err(e) = run_statement(session, &statement.sql, printer).await {
            failed += 1;
            let prefix = match origin {
                Some(file) => format!("{} line {}: ", file.display(), statement.line),
                None => String::new(),
            };
            report(&prefix, &statement.sql, &e);
            if stop_on_error {
                break;
            }
        }
    }
    failed
}

/// Runs a script file; returns how many statements failed.
pub async fn run_file(
    session: &Session,
    file: &Path,
    printer: &Printer,
    stop_on_error: bool,
) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read script {}", file.display()))?;
    Ok(run_text(session, &text, Some(file), printer, stop_on_error).await)
}

/// Runs one statement and prints its result.
pub async fn run_statement(session: &Session, sql: &str, printer: &Printer) -> anyhow::Result<()> {
    let start = Instant::now();
    let output = session.execute(sql).await?;
    match output {
        Output::Done(message) => {
            if printer.format.prints_messages() {
                println!("{message}");
            }
        }
        Output::Rows(mut stream) => {
            let schema = stream.schema();
            let rows = Arc::new(AtomicUsize::new(0));
            let progress = printer
                .progress
                .then(|| Progress::start(start, Arc::clone(&rows), Arc::clone(session.counters())));
            let mut batches: Vec<RecordBatch> = vec![];
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(strata_engine::Error::from)?;
                rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
                batches.push(batch);
            }
            drop(progress);
            let rows = rows.load(Ordering::Relaxed);
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            printer.format.print_batches(&mut out, &schema, &batches)?;
            if printer.footer {
                let summary = session.counters().summary();
                writeln!(
                    out,
                    "{}",
                    footer(rows, start.elapsed(), &summary, printer.timing)
                )?;
            }
        }
    }
    report_skipped(session);
    Ok(())
}

fn report_skipped(session: &Session) {
    for (file, lines) in session.counters().skipped_by_file() {
        eprintln!(
            "warning: skipped {lines} malformed line{} in {file}",
            if lines == 1 { "" } else { "s" }
        );
    }
}

fn footer(rows: usize, elapsed: Duration, summary: &ScanSummary, timing: bool) -> String {
    let mut s = format!("{rows} row{}", if rows == 1 { "" } else { "s" });
    if timing {
        s.push_str(&format!(" in {:.3}s", elapsed.as_secs_f64()));
    }
    s.push_str(&format!(
        "; {} file{}, {} scanned; {}",
        summary.files,
        if summary.files == 1 { "" } else { "s" },
        human_bytes(summary.bytes),
        summary.requests
    ));
    s
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A progress line on stderr (elapsed, rows, bytes read so far) that appears once a query
/// has run for a second and disappears when it is dropped, before the result prints.
struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(
        start: Instant,
        rows: Arc<AtomicUsize>,
        counters: Arc<strata_engine::ScanCounters>,
    ) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let shown = bar.clone();
        // Ticks every 200 ms, starting one second in: quick queries never show the line.
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_millis(200),
        );
        let task = tokio::spawn(async move {
            ticks.tick().await;
            shown.set_draw_target(ProgressDrawTarget::stderr());
            loop {
                let read = counters.summary();
                shown.set_message(format!(
                    "{:.1}s, {} rows, {} files, {} read",
                    start.elapsed().as_secs_f64(),
                    rows.load(Ordering::Relaxed),
                    read.files,
                    human_bytes(read.bytes)
                ));
                shown.tick();
                ticks.tick().await;
            }
        });
        Self { bar, task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

/// The interactive loop.
pub async fn run_repl(session: Arc<Session>, mut printer: Printer) -> anyhow::Result<()> {
    let mut editor: rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()?;
    editor.set_helper(Some(ReplHelper::new(Arc::clone(session.catalog()))));
    let history = dirs::home_dir().map(|h| h.join(".strata_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "strata {} on {} (zone {}). Statements end with ';'. \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION"),
        strata_catalog::mask_credentials(session.catalog().warehouse().url().as_str()),
        session.current_zone()
    );
    loop {
        let prompt = format!("strata:{}> ", session.current_zone());
        match editor.readline(&prompt) {
            Ok(line) => {
                let line = line.trim().to_string();
                if line.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                if line.starts_with('\\') {
                    match line.parse::<Command>() {
                        Ok(Command::Quit) => break,
                        Ok(command) => {
                            if let Err(e) = run_command(&session, command, &mut printer).await {
                                eprintln!("error: {}", describe(&e));
                            }
                        }
                        Err(e) => eprintln!("error: {e}"),
                    }
                    continue;
                }
                for statement in split_statements(&line) {
                    tokio::select! {
                        result = run_statement(&session, &statement.sql, &printer) => {
                            if let Err(e) = result {
                                report("", &statement.sql, &e);
                            }
                        }
                        _ = tokio::signal::ctrl_c() => {
                            eprintln!("query cancelled");
                            break;
                        }
                    }
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

async fn run_command(
    session: &Session,
    command: Command,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    match command {
        Command::Help => println!("{}", help()),
        Command::Quit => {}
        Command::ListZones => run_statement(session, "SHOW ZONES", printer).await?,
        Command::ListTables(zone) => {
            session.catalog().refresh().await?;
            let snapshot = session.catalog().snapshot();
            let zones = match zone {
                Some(z) => {
                    snapshot.zone(&z)?;
                    vec![z]
                }
                None => snapshot.zone_names(),
            };
            let (mut z, mut t, mut f, mut p, mut l) = (vec![], vec![], vec![], vec![], vec![]);
            for zone in zones {
                for (name, entry) in snapshot.tables.get(&zone).into_iter().flatten() {
                    z.push(zone.clone());
                    t.push(name.clone());
                    f.push(entry.format.to_string());
                    p.push(
                        entry
                            .partition_columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    );
                    l.push(entry.location.clone());
                }
            }
            let schema = Arc::new(Schema::new(
                ["zone", "table", "format", "partitioned_by", "location"]
                    .map(|n| Field::new(n, DataType::Utf8, false))
                    .to_vec(),
            ));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                [z, t, f, p, l]
                    .into_iter()
                    .map(|v| Arc::new(StringArray::from(v)) as _)
                    .collect(),
            )?;
            printer
                .format
                .print_batches(&mut std::io::stdout().lock(), &schema, &[batch])?;
        }
        Command::Describe(table) => {
            run_statement(session, &format!("DESCRIBE {table}"), printer).await?;
            let (zone, name) = match table.split_once('.') {
                Some((z, n)) => (z.to_string(), n.to_string()),
                None => (session.current_zone(), table.clone()),
            };
            if let Ok(entry) = session.catalog().snapshot().table(&zone, &name) {
                println!("format:      {}", entry.format);
                println!("location:    {}", entry.location);
                if !entry.partition_columns.is_empty() {
                    let parts: Vec<String> = entry
                        .partition_columns
                        .iter()
                        .map(|p| format!("{} {}", p.name, p.data_type))
                        .collect();
                    println!("partitioned: {}", parts.join(", "));
                }
                for (k, v) in &entry.options {
                    println!("option:      {k} = {v}");
                }
                println!(
                    "registered:  {}{}",
                    entry.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    if entry.discovered {
                        " (discovered)"
                    } else {
                        ""
                    }
                );
                if let Some(sql) = &entry.lineage {
                    println!("made by:     {sql}");
                }
                if !entry.sources.is_empty() {
                    let sources: Vec<String> = entry
                        .sources
                        .iter()
                        .map(|s| match s.version {
                            Some(v) => format!("{} (version {v})", s.table),
                            None => s.table.clone(),
                        })
                        .collect();
                    println!("reads:       {}", sources.join(", "));
                }
                if let Some(m) = &entry.materialized {
                    println!(
                        "refreshed:   {}",
                        m.refreshed_at.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                    let entry = entry.clone();
                    match strata_engine::lineage::changed_sources(session, &entry).await {
                        Ok(changed) if changed.is_empty() => {
                            println!("sources:     unchanged since the refresh")
                        }
                        Ok(changed) => {
                            let changed: Vec<String> = changed
                                .iter()
                                .map(|(t, then, now)| match (then, now) {
                                    (Some(a), Some(b)) => format!("{t} (version {a} → {b})"),
                                    (_, None) => format!("{t} (gone)"),
                                    (None, Some(b)) => format!("{t} (now version {b})"),
                                })
                                .collect();
                            println!(
                                "sources:     changed since the refresh: {}; REFRESH MATERIALIZED VIEW {} brings it up to date",
                                changed.join(", "),
                                entry.qualified_name()
                            );
                        }
                        Err(e) => println!("sources:     cannot tell whether they changed: {e}"),
                    }
                }
                if let Some(v) = entry.held_version {
                    println!(
                        "held:        readers see version {v} while a write to it is being checked"
                    );
                }
            }
        }
        Command::Lineage(table) => {
            run_statement(session, &format!("SHOW LINEAGE {table}"), printer).await?;
        }
        Command::Timing => {
            printer.timing = !printer.timing;
            println!("timing is {}", if printer.timing { "on" } else { "off" });
        }
        Command::Format(format) => {
            printer.format = format;
            println!("format is {format:?}");
        }
    }
    Ok(())
}

/// `strata run`: a pipeline file with variables; a line per step with what it did, a progress
/// line while a step runs, and at the first failure the line, statement and error. Returns
/// 1 when the pipeline stopped, else 0.
pub async fn run_pipeline(
    session: &Session,
    file: &Path,
    vars: &[String],
) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read pipeline {}", file.display()))?;
    let mut values = std::collections::BTreeMap::new();
    for var in vars {
        let Some((name, value)) = var.split_once('=') else {
            anyhow::bail!("--var {var}: write it as NAME=VALUE");
        };
        values.insert(name.trim().to_string(), value.to_string());
    }
    let text = match strata_engine::pipeline::substitute(&text, &values) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {}:{e}", file.display());
            return Ok(1);
        }
    };
    let show_progress = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut progress: Option<Progress> = None;
    let result = strata_engine::pipeline::run(session, &text, |event| match event {
        strata_engine::pipeline::Event::Started {
            step,
            steps,
            line,
            sql,
        } => {
            let first = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let shown: String = first.chars().take(70).collect();
            let more = if first.chars().count() > 70 {
                "…"
            } else {
                ""
            };
            println!("[{step}/{steps}] line {line}: {shown}{more}");
            if show_progress {
                progress = Some(Progress::start(
                    Instant::now(),
                    Arc::new(AtomicUsize::new(0)),
                    Arc::clone(session.counters()),
                ));
            }
        }
        strata_engine::pipeline::Event::Finished {
            summary, elapsed, ..
        } => {
            progress = None;
            println!("  {summary} ({:.2}s)", elapsed.as_secs_f64());
        }
        strata_engine::pipeline::Event::Warning(w) => eprintln!("warning: {w}"),
    })
    .await;
    drop(progress);
    match result {
        Ok(steps) => {
            println!(
                "pipeline {} finished: {steps} statement{} in {:.1}s",
                file.display(),
                if steps == 1 { "" } else { "s" },
                start.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: pipeline {} stopped at {e}", file.display());
            Ok(1)
        }
    }
}

/// For a syntax error, the line of the statement it is on and a caret under the place.
pub(crate) fn caret(sql: &str, e: &anyhow::Error) -> Option<String> {
    let Some(strata_engine::Error::Syntax {
        line: Some(line),
        column: Some(column),
        ..
    }) = e.downcast_ref::<strata_engine::Error>()
    else {
        return None;
    };
    let text = sql.lines().nth(line.checked_sub(1)?)?;
    let indent: String = text
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    Some(format!("  {text}\n  {indent}^"))
}

/// Prints a statement's error, with a caret under a syntax error's place.
fn report(prefix: &str, sql: &str, e: &anyhow::Error) {
    eprintln!("error: {prefix}{}", describe(e));
    if let Some(pointer) = caret(sql, e) {
        eprintln!("{pointer}");
    }
}

/// An error and its causes, each said once: DataFusion's messages already hold the text of
/// the errors they wrap, which `{:#}` would print again after them.
pub(crate) fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        // A wrapper that repeats what is already said ("External error: …") adds nothing.
        if !text.contains(&part) && (text.is_empty() || !part.contains(&text)) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    strata_catalog::mask_credentials(&text)
}

#[cfg(test)]
mod describe_tests {
    use super::{caret, describe};

    #[test]
    fn a_syntax_error_gets_a_caret_under_its_place() {
        let sql = "SELECT a\nFROM t WHER b = 1";
        let e = anyhow::Error::new(strata_engine::Error::Syntax {
            message: "Expected: end of statement, found: b at Line: 2, Column: 13".into(),
            line: Some(2),
            column: Some(13),
        });
        assert_eq!(
            caret(sql, &e).as_deref(),
            Some("  FROM t WHER b = 1\n              ^")
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let inner = std::io::Error::other("No field named st.stor_id");
        let wrapped = anyhow::Error::new(inner).context("Schema error: No field named st.stor_id");
        assert_eq!(
            describe(&wrapped),
            "Schema error: No field named st.stor_id"
        );
        let other = anyhow::anyhow!("disk full").context("cannot write processed.t");
        assert_eq!(describe(&other), "cannot write processed.t: disk full");
    }
}
