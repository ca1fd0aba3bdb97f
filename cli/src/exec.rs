//! The input loops: statements from `-c`, from `-f` files, and from the REPL, each run
//! through the engine and printed.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
use crate::print_format::{PrintFormat, ResultPrinter, Shown, TableStyle};

/// Printing settings of a run.
#[derive(Debug, Clone)]
pub struct Printer {
    pub format: PrintFormat,
    /// Show the footer (rows, time, files and bytes): in the REPL and in table format.
    pub footer: bool,
    pub timing: bool,
    /// Show a progress line for long queries (only on a terminal).
    pub progress: bool,
    /// The table format's rows shown, NULL text and layout; the width is found per result.
    pub style: TableStyle,
    /// A file that results go to instead of stdout (`\o FILE`).
    pub output: Option<PathBuf>,
    /// Tables taller than the terminal go through a pager (`\pager`; the REPL only).
    pub pager: bool,
}

impl Printer {
    /// Where a result goes: stdout, or the `\o` file, appended to.
    fn sink(&self) -> anyhow::Result<Box<dyn Write + Send>> {
        Ok(match &self.output {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot write to {}", path.display()))?;
                Box::new(BufWriter::new(file))
            }
            None => Box::new(BufWriter::with_capacity(64 * 1024, Stdout)),
        })
    }

    /// Whether results show on a terminal.
    fn to_terminal(&self) -> bool {
        self.output.is_none() && std::io::stdout().is_terminal()
    }

    /// Whether a table is held until it ends, to go through the pager if it is too tall.
    fn pages(&self) -> bool {
        self.pager && self.format == PrintFormat::Table && self.to_terminal()
    }

    /// The table style for the next result: as wide as the terminal (or `$COLUMNS`).
    fn style_now(&self) -> TableStyle {
        let mut style = self.style.clone();
        style.width = if self.output.is_some() {
            None
        } else {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse::<usize>().ok())
                .filter(|c| *c > 0)
                .or_else(|| {
                    self.to_terminal()
                        .then(|| console::Term::stdout().size_checked())
                        .flatten()
                        .map(|(_, columns)| usize::from(columns))
                })
        };
        style
    }
}

/// Set once a write to stdout found its reader gone.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Stdout, noting when its reader (`head`, a pager that was quit) has gone: the error that
/// write returns then ends the run quietly (see `exit_if_closed`). Only writes to stdout
/// count; a broken connection to a store is an error like any other.
pub(crate) struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().write(buf).inspect_err(note_closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush().inspect_err(note_closed)
    }
}

/// Notes a write error of stdout: a closed pipe is remembered.
fn note_closed(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Ends the process quietly with success once stdout's reader has gone, as the usual
/// command-line tools do: whatever failed after that failed for want of a reader.
pub(crate) fn exit_if_closed(_error: &anyhow::Error) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        std::process::exit(0);
    }
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
    // A script may change how its own tables look (`\maxrows`, `\null`, `\x`).
    let mut printer = printer.clone();
    for statement in split_statements(text) {
        if statement.sql.starts_with('\\') {
            // The commands that only show things work in scripts too.
            let outcome = match statement.sql.parse::<Command>() {
                Ok(Command::MaxRows(max)) => {
                    printer.style.max_rows = max;
                    Ok(())
                }
                Ok(Command::Null(text)) => {
                    printer.style.null = text;
                    Ok(())
                }
                Ok(Command::Expanded) => {
                    printer.style.expanded = !printer.style.expanded;
                    Ok(())
                }
                Ok(
                    command @ (Command::Describe(_)
                    | Command::ListTables(_)
                    | Command::ListZones
                    | Command::Lineage(_)
                    | Command::Help),
                ) => Box::pin(run_command(session, command, &mut printer.clone())).await,
                Ok(_) => Err(anyhow::anyhow!(
                    "this backslash command works in the REPL only: {}",
                    statement.sql
                )),
                Err(e) => Err(anyhow::anyhow!(e)),
            };
            if let Err(e) = outcome {
                exit_if_closed(&e);
                say_err!("error: {}", describe(&e));
                failed += 1;
                if stop_on_error {
                    break;
                }
            }
            continue;
        }
        if let Err(e) = run_statement(session, &statement.sql, &printer).await {
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
                say!("{message}");
            }
        }
        Output::Rows(mut stream) => {
            let schema = stream.schema();
            let rows = Arc::new(AtomicUsize::new(0));
            // Rows streaming to the terminal would mix with the progress line.
            let quiet = printer.format != PrintFormat::Table && printer.to_terminal();
            let progress = (printer.progress && !quiet)
                .then(|| Progress::start(start, Arc::clone(&rows), Arc::clone(session.counters())));
            let paged = printer.pages();
            let mut held: Vec<u8> = vec![];
            let mut out: Box<dyn Write + Send + '_> = if paged {
                Box::new(&mut held)
            } else {
                printer.sink()?
            };
            let mut result =
                ResultPrinter::new(printer.format, &mut out, schema, printer.style_now());
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(strata_engine::Error::from)?;
                rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
                result.write(&batch)?;
            }
            drop(progress);
            let shown = result.finish()?;
            if printer.footer {
                let summary = session.counters().summary();
                let mut line = footer(shown, start.elapsed(), &summary, printer.timing);
                if let Some(placement) = session.last_placement() {
                    line.push_str(&format!("; ran {placement}"));
                }
                writeln!(out, "{line}")?;
            }
            out.flush()?;
            drop(out);
            if paged {
                page(&held)?;
            }
        }
    }
    report_skipped(session);
    Ok(())
}

/// Shows a table on the terminal: through the pager (`$PAGER`, else `less -FRX` if there is
/// one) when it has more lines than the terminal, else straight to stdout. A pager quit
/// before the end (`q`) ends the output quietly, as a closed pipe does.
fn page(text: &[u8]) -> anyhow::Result<()> {
    let lines = text.iter().filter(|b| **b == b'\n').count();
    if let (Some(rows), Some(pager)) = (screen_rows(), pager_command())
        && lines >= rows
    {
        match std::process::Command::new("sh")
            .args(["-c", &pager])
            .stdin(std::process::Stdio::piped())
            .spawn()
        {
            Ok(mut child) => {
                if let Some(mut input) = child.stdin.take()
                    && let Err(e) = input.write_all(text)
                    && e.kind() != std::io::ErrorKind::BrokenPipe
                {
                    drop(input);
                    let _ = child.wait();
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot write to pager '{pager}'"))
                    );
                }
                match child.wait() {
                    // The shell found no such command: the table shows without a pager.
                    Ok(status) if status.code() == Some(127) => {
                        say_err!("warning: no pager '{pager}'; set PAGER, or \\pager off");
                    }
                    _ => return Ok(()),
                }
            }
            Err(e) => {
                say_err!("warning: cannot start pager '{pager}': {e}; \\pager off turns it off")
            }
        }
    }
    let mut out = Stdout;
    out.write_all(text)?;
    out.flush()?;
    Ok(())
}

/// The terminal's height: `$LINES`, else what the terminal says.
fn screen_rows() -> Option<usize> {
    std::env::var("LINES")
        .ok()
        .and_then(|l| l.trim().parse::<usize>().ok())
        .filter(|l| *l > 0)
        .or_else(|| {
            console::Term::stdout()
                .size_checked()
                .map(|(rows, _)| usize::from(rows))
        })
}

/// The pager's command line: `$PAGER` (empty: none), else `less -FRX` if `less` is on the
/// path.
fn pager_command() -> Option<String> {
    match std::env::var("PAGER") {
        Ok(pager) => Some(pager).filter(|p| !p.trim().is_empty()),
        Err(_) => std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("less").is_file()))
            .then(|| "less -FRX".to_string()),
    }
}

fn report_skipped(session: &Session) {
    for (file, lines) in session.counters().skipped_by_file() {
        say_err!(
            "warning: skipped {lines} malformed line{} in {file}",
            if lines == 1 { "" } else { "s" }
        );
    }
}

fn footer(shown: Shown, elapsed: Duration, summary: &ScanSummary, timing: bool) -> String {
    let rows = shown.rows;
    let mut s = format!("{rows} row{}", if rows == 1 { "" } else { "s" });
    if shown.shown < rows {
        s.push_str(&format!(" ({} shown)", shown.shown));
    }
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

/// The interactive loop. A statement runs once a line ends it with `;`; until then the
/// prompt is `…>`. Every statement is appended to the history file as it runs.
pub async fn run_repl(session: Arc<Session>, mut printer: Printer) -> anyhow::Result<()> {
    let mut editor: rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()?;
    editor.set_helper(Some(ReplHelper::new(Arc::clone(&session))));
    // Ctrl-C during a statement (or a pager) is the REPL's to handle from the start.
    #[cfg(unix)]
    drop(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::interrupt(),
    ));
    printer.pager = true;
    // Entries go to the file as they are made: a REPL that is killed keeps its history.
    let history = dirs::home_dir().map(|h| h.join(".strata_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    say!(
        "strata {} on {} (zone {}). Statements end with ';'. \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION"),
        strata_catalog::mask_credentials(session.catalog().warehouse().url().as_str()),
        session.current_zone()
    );
    type Editor = rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory>;
    let remember = |editor: &mut Editor, entry: &str| {
        let _ = editor.add_history_entry(entry);
        if let Some(h) = &history {
            let _ = editor.append_history(h);
        }
    };
    let mut pending = String::new();
    // The statements run last, for `\e`.
    let mut last = String::new();
    loop {
        let main_prompt = format!("strata:{}> ", session.current_zone());
        let prompt = if pending.is_empty() {
            main_prompt
        } else {
            format!(
                "{}…> ",
                " ".repeat(main_prompt.chars().count().saturating_sub(3))
            )
        };
        if let Some(helper) = editor.helper_mut() {
            helper.set_pending(&pending);
        }
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        // `\e` edits the unfinished statement, or else the last one, and runs what is saved.
        if matches!(trimmed.parse::<Command>(), Ok(Command::Edit)) {
            remember(&mut editor, trimmed);
            let draft = if pending.is_empty() {
                last.clone()
            } else {
                std::mem::take(&mut pending)
            };
            match edit(&draft) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => {
                    let text = text.trim().to_string();
                    say!("{text}");
                    remember(&mut editor, &text);
                    run_interactive(&session, &text, &mut printer).await;
                    last = text;
                }
                Err(e) => say_err!("error: {}", describe(&e)),
            }
            continue;
        }
        if pending.is_empty() {
            if trimmed.is_empty() {
                continue;
            }
            let word = trimmed.trim_end_matches(';').trim().to_ascii_lowercase();
            if word == "quit" || word == "exit" {
                break;
            }
            if trimmed.starts_with('\\') {
                remember(&mut editor, trimmed);
                match trimmed.parse::<Command>() {
                    Ok(Command::Quit) => break,
                    Ok(command) => {
                        if let Err(e) = run_command(&session, command, &mut printer).await {
                            exit_if_closed(&e);
                            say_err!("error: {}", describe(&e));
                        }
                    }
                    Err(e) => say_err!("error: {e}"),
                }
                continue;
            }
        } else {
            pending.push('\n');
        }
        pending.push_str(&line);
        if !strata_engine::sql::split::is_complete(&pending) {
            continue;
        }
        let text = std::mem::take(&mut pending);
        remember(&mut editor, text.trim());
        run_interactive(&session, &text, &mut printer).await;
        last = text.trim().to_string();
    }
    Ok(())
}

/// Runs the statements of a text typed or edited in the REPL; Ctrl-C cancels the one
/// running and skips the rest.
async fn run_interactive(session: &Session, text: &str, printer: &mut Printer) {
    for statement in split_statements(text) {
        tokio::select! {
            result = run_one(session, &statement.sql, printer) => {
                if let Err(e) = result {
                    report("", &statement.sql, &e);
                }
            }
            _ = tokio::signal::ctrl_c() => {
                say_err!("query cancelled");
                break;
            }
        }
    }
}

/// A statement of the REPL: SQL, or a backslash command in an edited text.
async fn run_one(session: &Session, sql: &str, printer: &mut Printer) -> anyhow::Result<()> {
    if !sql.starts_with('\\') {
        return run_statement(session, sql, printer).await;
    }
    match sql.parse::<Command>().map_err(|e| anyhow::anyhow!(e))? {
        Command::Quit | Command::Edit => {
            anyhow::bail!("{sql} works on a line of its own, not in an edited text")
        }
        command => Box::pin(run_command(session, command, printer)).await,
    }
}

/// Opens the editor (`$EDITOR`, else `$VISUAL`, else `vi`) on a text in a temporary
/// `.sql` file; returns the text as saved.
fn edit(draft: &str) -> anyhow::Result<String> {
    let editor = ["EDITOR", "VISUAL"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string());
    let mut file = tempfile::Builder::new()
        .prefix("strata-")
        .suffix(".sql")
        .tempfile()
        .context("cannot make a temporary file to edit")?;
    if !draft.is_empty() {
        writeln!(file, "{draft}").context("cannot write the temporary file to edit")?;
    }
    file.flush()?;
    // Through the shell, so that an editor given with its options (`code --wait`) works.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()
        .with_context(|| format!("cannot start the editor '{editor}'"))?;
    if !status.success() {
        anyhow::bail!("the editor '{editor}' ended with {status}; nothing was run");
    }
    std::fs::read_to_string(file.path())
        .with_context(|| format!("cannot read {} after editing", file.path().display()))
}

async fn run_command(
    session: &Session,
    command: Command,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    match command {
        Command::Help => say!("{}", help()),
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
            let mut out = printer.sink()?;
            printer
                .format
                .print_batches(&mut out, &schema, &[batch], &printer.style_now())?;
            out.flush()?;
        }
        Command::Describe(table) => {
            run_statement(session, &format!("DESCRIBE {table}"), printer).await?;
            let (zone, name) = match table.split_once('.') {
                Some((z, n)) => (z.to_string(), n.to_string()),
                None => (session.current_zone(), table.clone()),
            };
            if let Ok(entry) = session.catalog().snapshot().table(&zone, &name) {
                say!("format:      {}", entry.format);
                say!("location:    {}", entry.location);
                if !entry.partition_columns.is_empty() {
                    let parts: Vec<String> = entry
                        .partition_columns
                        .iter()
                        .map(|p| {
                            format!(
                                "{} {}",
                                p.name,
                                strata_engine::sql_type_name_of(&p.data_type)
                            )
                        })
                        .collect();
                    say!("partitioned: {}", parts.join(", "));
                }
                for (k, v) in &entry.options {
                    say!("option:      {k} = {v}");
                }
                say!(
                    "registered:  {}{}",
                    entry.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    if entry.discovered {
                        " (discovered)"
                    } else {
                        ""
                    }
                );
                if let Some(sql) = &entry.lineage {
                    say!("made by:     {sql}");
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
                    say!("reads:       {}", sources.join(", "));
                }
                if let Some(m) = &entry.materialized {
                    say!(
                        "refreshed:   {}",
                        m.refreshed_at.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                    let entry = entry.clone();
                    match strata_engine::lineage::changed_sources(session, &entry).await {
                        Ok(changed) if changed.is_empty() => {
                            say!("sources:     unchanged since the refresh")
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
                            say!(
                                "sources:     changed since the refresh: {}; REFRESH MATERIALIZED VIEW {} brings it up to date",
                                changed.join(", "),
                                entry.qualified_name()
                            );
                        }
                        Err(e) => say!("sources:     cannot tell whether they changed: {e}"),
                    }
                }
                if let Some(v) = entry.held_version {
                    say!(
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
            say!("timing is {}", if printer.timing { "on" } else { "off" });
        }
        Command::Format(format) => {
            printer.format = format;
            say!("format is {format}");
        }
        Command::MaxRows(max) => {
            printer.style.max_rows = max;
            if max == 0 {
                say!("tables show all rows");
            } else {
                say!("tables show at most {max} rows");
            }
        }
        Command::Null(text) => {
            say!("null is shown as '{text}'");
            printer.style.null = text;
        }
        Command::Expanded => {
            printer.style.expanded = !printer.style.expanded;
            say!(
                "expanded display is {}",
                if printer.style.expanded { "on" } else { "off" }
            );
        }
        Command::Include(file) => {
            let failed = run_file(session, &file, printer, false).await?;
            if failed > 0 {
                anyhow::bail!(
                    "{failed} statement{} of {} failed",
                    if failed == 1 { "" } else { "s" },
                    file.display()
                );
            }
        }
        Command::Pager(on) => {
            printer.pager = on.unwrap_or(!printer.pager);
            say!("pager is {}", if printer.pager { "on" } else { "off" });
        }
        // Handled by the REPL loop, which knows the statement to edit.
        Command::Edit => {}
        Command::Output(None) => {
            printer.output = None;
            say!("results go to stdout");
        }
        Command::Output(Some(file)) => {
            std::fs::File::create(&file)
                .with_context(|| format!("cannot write to {}", file.display()))?;
            say!("results go to {}", file.display());
            printer.output = Some(file);
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
            say_err!("error: {}:{e}", file.display());
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
            say!("[{step}/{steps}] line {line}: {shown}{more}");
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
            say!("  {summary} ({:.2}s)", elapsed.as_secs_f64());
        }
        strata_engine::pipeline::Event::Warning(w) => say_err!("warning: {w}"),
    })
    .await;
    drop(progress);
    match result {
        Ok(steps) => {
            say!(
                "pipeline {} finished: {steps} statement{} in {:.1}s",
                file.display(),
                if steps == 1 { "" } else { "s" },
                start.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        Err(e) => {
            say_err!("error: pipeline {} stopped at {e}", file.display());
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
    exit_if_closed(e);
    say_err!("error: {prefix}{}", describe(e));
    if let Some(pointer) = caret(sql, e) {
        say_err!("{pointer}");
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
