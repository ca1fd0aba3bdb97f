//! The REPL on a real pseudo-terminal: completion (an alias's columns, a file path, a
//! function name), Ctrl-C cancelling a query, continuation lines, `\x`, `\e` and the pager.
//! Every step waits for the text it expects (the prompt, a result), with a timeout.

use std::path::Path;
use std::process::Command;

use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_with_options};

use super::{ok, strata};

/// The prompt on a new line (the line editor starts it with a carriage return): the same
/// prompt redrawn while a line is edited follows a carriage return only.
const PROMPT: &str = "\n\rstrata:curated> ";

/// Ctrl-A, Ctrl-F and Tab as the terminal sends them.
const HOME: &str = "\x01";
const RIGHT: &str = "\x06";
const TAB: &str = "\t";

/// A REPL on a terminal 100 columns wide and 20 lines high, in `dir` (the warehouse is
/// `dir/wh`), with the given environment; it has shown its first prompt.
fn repl(dir: &Path, env: &[(&str, &str)]) -> PtySession {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .arg("--warehouse")
        .arg(dir.join("wh"))
        .current_dir(dir)
        .env("HOME", &home)
        .env("COLUMNS", "100")
        .env("LINES", "20")
        .env("PAGER", "")
        .env("TERM", "xterm")
        .env_remove("STRATA_WAREHOUSE");
    for (name, value) in env {
        command.env(name, value);
    }
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(60_000))
        .strip_ansi_escape_codes(true);
    let mut session = spawn_with_options(command, options).expect("strata on a terminal");
    wait_for(&mut session, PROMPT);
    session
}

/// Sends keys to the terminal.
fn keys(session: &mut PtySession, keys: &str) {
    session.send(keys).expect("type");
    session.flush().expect("flush");
}

/// Reads the terminal until `text` shows; returns what showed before it. The reader
/// takes each byte for a character: the text is matched, and returned, as UTF-8.
fn wait_for(session: &mut PtySession, text: &str) -> String {
    let needle: String = text.bytes().map(char::from).collect();
    let before = session
        .exp_string(&needle)
        .unwrap_or_else(|e| panic!("no '{text}' on the terminal: {e}"));
    let bytes: Vec<u8> = before.chars().map(|c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Types a line and presses Enter; returns what showed until the next prompt.
fn run(session: &mut PtySession, line: &str) -> String {
    keys(session, &format!("{line}\r"));
    wait_for(session, PROMPT)
}

/// Leaves the REPL and checks that it ended well.
fn quit(mut session: PtySession) {
    keys(&mut session, "\\q\r");
    session.exp_eof().expect("the REPL ends");
    let status = session.process().wait().expect("wait");
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

/// Tab completes a table's columns after its alias (the alias set later on the line), a
/// quoted file path folder by folder, and a function name with its parenthesis.
#[test]
fn tab_completes_alias_columns_paths_and_functions() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(&strata(
        &dir.path().join("wh"),
        &[
            "-c",
            "CREATE TABLE curated.sales AS SELECT 1 AS sale_id, 250 AS amount",
        ],
    ));
    let data = dir.path().join("testdata");
    std::fs::create_dir_all(&data).expect("testdata");
    std::fs::write(data.join("region.csv"), "id,name\n1,north\n2,south\n").expect("csv");
    std::fs::write(data.join("out.txt"), "").expect("out.txt");
    let mut session = repl(dir.path(), &[]);

    // `s.amo` becomes `s.amount`, `s` being curated.sales further on.
    let line = "SELECT s.amo FROM curated.sales s;";
    keys(&mut session, line);
    keys(&mut session, HOME);
    keys(&mut session, &RIGHT.repeat("SELECT s.amo".len()));
    let out = run(&mut session, TAB);
    assert!(out.contains("| amount |"), "{out}");
    assert!(out.contains("|    250 |"), "{out}");

    // `'testd` becomes `'testdata/`, then `reg` becomes `region.csv`.
    keys(
        &mut session,
        "CREATE EXTERNAL TABLE raw.region STORED AS CSV LOCATION 'testd",
    );
    keys(&mut session, TAB);
    wait_for(&mut session, "testdata/");
    keys(&mut session, "reg");
    let out = run(&mut session, &format!("{TAB}';"));
    assert!(
        out.contains("registered raw.region: CSV, 1 file"),
        "{out:?}"
    );
    let out = run(&mut session, "SELECT count(*) AS n FROM raw.region;");
    assert!(out.contains("| 2 |"), "{out}");
    // `\i` and `\o` take a path without quotes.
    keys(&mut session, "\\o testdata/ou");
    let out = run(&mut session, TAB);
    assert!(out.contains("results go to testdata/out.txt"), "{out}");
    run(&mut session, "\\o");

    // `approx_disti` becomes `approx_distinct(`.
    keys(&mut session, "SELECT approx_disti");
    let out = run(
        &mut session,
        &format!("{TAB}value) AS d FROM generate_series(1, 100);"),
    );
    assert!(out.contains("| 100 |"), "{out}");
    quit(session);
}

/// Ctrl-C while a query runs cancels it and brings the prompt back; the REPL goes on.
#[test]
fn ctrl_c_cancels_the_running_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = repl(dir.path(), &[]);
    // The filter keeps the row count from being known without counting.
    keys(
        &mut session,
        "SELECT count(*) FROM generate_series(1, 10000000000) WHERE value % 7 = 3;\r",
    );
    // The progress line shows once the query has run for a second.
    wait_for(&mut session, " rows, ");
    session.send_control('c').expect("Ctrl-C");
    wait_for(&mut session, "query cancelled");
    wait_for(&mut session, PROMPT);
    let out = run(&mut session, "SELECT 40 + 2 AS answer;");
    assert!(out.contains("|     42 |"), "{out}");
    quit(session);
}

/// A statement spread over lines gets the `…>` prompt until its `;`; `\x` shows a block
/// per row and turns back.
#[test]
fn continuation_lines_and_expanded_display() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = repl(dir.path(), &[]);
    keys(&mut session, "SELECT 1 AS a,\r");
    wait_for(&mut session, "…> ");
    keys(&mut session, "'x' AS b\r");
    wait_for(&mut session, "…> ");
    let out = run(&mut session, ";");
    assert!(out.contains("| 1 | x |"), "{out}");

    let out = run(&mut session, "\\x");
    assert!(out.contains("expanded display is on"), "{out}");
    let out = run(&mut session, "SELECT 1 AS a, 'x' AS b;");
    assert!(!out.contains("| 1 | x |"), "{out}");
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let record = lines
        .iter()
        .position(|l| l.starts_with("-[ RECORD 1 ]"))
        .unwrap_or_else(|| panic!("no record in: {out}"));
    assert_eq!(lines[record + 1..record + 3], ["a | 1", "b | x"], "{out}");
    let out = run(&mut session, "\\x");
    assert!(out.contains("expanded display is off"), "{out}");
    quit(session);
}

/// `\e` opens $EDITOR on the last statement and runs what it saved.
#[test]
fn backslash_e_edits_the_last_statement() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An editor that changes 41 into 42 in the file it is given.
    let mut session = repl(
        dir.path(),
        &[("EDITOR", "sed -i s/41/42/"), ("VISUAL", "false")],
    );
    let out = run(&mut session, "SELECT 41 AS answer;");
    assert!(out.contains("|     41 |"), "{out}");
    let out = run(&mut session, "\\e");
    assert!(out.contains("SELECT 42 AS answer;"), "{out}");
    assert!(out.contains("|     42 |"), "{out}");
    // The edited statement is the last one now.
    let out = run(&mut session, "\\e");
    assert!(out.contains("|     42 |"), "{out}");
    quit(session);

    // An editor that fails runs nothing.
    let mut session = repl(dir.path(), &[("EDITOR", "false")]);
    let out = run(&mut session, "\\e");
    assert!(out.contains("nothing was run"), "{out}");
    quit(session);
}

/// A table taller than the terminal goes through $PAGER; a short one does not; a pager
/// that stops reading early ends the output quietly; `\pager off` prints tables directly.
#[test]
fn tall_tables_go_through_the_pager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = repl(dir.path(), &[("PAGER", "sed s/^/paged:/")]);
    let out = run(&mut session, "SELECT value FROM generate_series(1, 30);");
    assert!(out.contains("paged:|    30 |"), "{out}");
    assert!(out.contains("paged:30 rows"), "{out}");
    let out = run(&mut session, "SELECT value FROM generate_series(1, 3);");
    assert!(
        out.contains("|     3 |") && !out.contains("paged:"),
        "{out}"
    );
    let out = run(&mut session, "\\pager off");
    assert!(out.contains("pager is off"), "{out}");
    let out = run(&mut session, "SELECT value FROM generate_series(1, 30);");
    assert!(
        out.contains("|    30 |") && !out.contains("paged:"),
        "{out}"
    );
    quit(session);

    // A pager quit after two lines (as `q` in less does) of a long table.
    let mut session = repl(dir.path(), &[("PAGER", "head -n 2")]);
    let out = run(&mut session, "\\maxrows 0");
    assert!(out.contains("all rows"), "{out}");
    let out = run(
        &mut session,
        "SELECT value FROM generate_series(1, 100000);",
    );
    assert!(!out.contains("error") && !out.contains("panicked"), "{out}");
    assert!(!out.contains("100000 rows"), "{out}");
    let out = run(&mut session, "SELECT 7 AS seven;");
    assert!(out.contains("|     7 |"), "{out}");
    quit(session);
}
