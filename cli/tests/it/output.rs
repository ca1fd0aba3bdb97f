//! How results print: the table's row cap, NULLs, widths; exports that stream in flat
//! memory; a closed pipe ending the run quietly.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{ok, stderr, strata};

/// The lines of a table's body, between its second and last rules.
fn body(out: &str) -> Vec<String> {
    let lines: Vec<&str> = out.lines().collect();
    let rules: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].starts_with('+'))
        .collect();
    lines[rules[1] + 1..rules[rules.len() - 1]]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// A table shows its first and last rows up to --maxrows (40 by default) and says so in
/// the footer; numbers align right; 0 shows every row; the exports are never cut.
#[test]
fn tables_show_head_and_tail_up_to_maxrows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = "SELECT value AS v FROM generate_series(1, 100) ORDER BY value";
    let out = ok(&strata(dir.path(), &["-c", q]));
    let rows = body(&out);
    assert_eq!(rows.len(), 41, "{out}");
    assert_eq!(rows[0], "|   1 |");
    assert_eq!(rows[19], "|  20 |");
    assert_eq!(rows[20], "|   … |");
    assert_eq!(rows[21], "|  81 |");
    assert_eq!(rows[40], "| 100 |");
    assert!(out.contains("\n100 rows (40 shown) in "), "{out}");

    let out = ok(&strata(dir.path(), &["--maxrows", "5", "-c", q]));
    let rows = body(&out);
    assert_eq!(
        rows,
        [
            "|   1 |",
            "|   2 |",
            "|   3 |",
            "|   … |",
            "|  99 |",
            "| 100 |"
        ]
    );
    assert!(out.contains("\n100 rows (5 shown) in "), "{out}");

    let out = ok(&strata(dir.path(), &["--maxrows", "0", "-c", q]));
    assert_eq!(body(&out).len(), 100, "{out}");
    assert!(out.contains("\n100 rows in "), "{out}");

    // A script can change it for its own statements.
    let out = ok(&strata(dir.path(), &["-c", &format!("\\maxrows 2; {q}")]));
    assert_eq!(body(&out), ["|   1 |", "|   … |", "| 100 |"]);

    // A result of exactly --maxrows rows is shown whole.
    let out = ok(&strata(
        dir.path(),
        &[
            "--maxrows",
            "3",
            "-c",
            "SELECT * FROM generate_series(1, 3)",
        ],
    ));
    assert_eq!(body(&out).len(), 3, "{out}");
    assert!(out.contains("\n3 rows in "), "{out}");

    let out = ok(&strata(
        dir.path(),
        &["--maxrows", "5", "--format", "csv", "-c", q],
    ));
    assert_eq!(out.lines().count(), 101, "{out}");
}

/// NULL shows as NULL (or the text `\null` sets), an empty string as nothing.
#[test]
fn null_differs_from_empty_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = "SELECT NULL AS n, '' AS e, CAST(NULL AS INT) AS i";
    let out = ok(&strata(dir.path(), &["-c", q]));
    assert_eq!(body(&out), ["| NULL |   | NULL |"], "{out}");
    let out = ok(&strata(dir.path(), &["-c", &format!("\\null (none); {q}")]));
    assert_eq!(body(&out), ["| (none) |   | (none) |"], "{out}");
    let out = ok(&strata(dir.path(), &["--format", "ndjson", "-c", q]));
    assert_eq!(out, "{\"n\":null,\"e\":\"\",\"i\":null}\n");
}

/// Columns narrow to the terminal's width (here $COLUMNS), long values cut with `…`.
#[test]
fn wide_values_fit_the_width() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--warehouse")
        .arg(dir.path())
        .args([
            "-c",
            "SELECT repeat('x', 200) AS long_text, 'short' AS s, 12345 AS n",
        ])
        .env_remove("STRATA_WAREHOUSE")
        .env("COLUMNS", "40")
        .output()
        .expect("strata runs");
    let out = ok(&o);
    let table: Vec<&str> = out.lines().filter(|l| l.starts_with(['+', '|'])).collect();
    assert_eq!(table.len(), 5, "{out}");
    for line in &table {
        assert_eq!(line.chars().count(), 40, "{out}");
    }
    assert!(table[3].contains("xxx… | short | 12345 |"), "{out}");
}

/// JSON keeps the keys of NULL values; so does NDJSON.
#[test]
fn json_keeps_null_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = "SELECT 1 AS a, NULL AS n";
    let out = ok(&strata(dir.path(), &["--format", "json", "-c", q]));
    assert_eq!(out, "[{\"a\":1,\"n\":null}]\n");
    let out = ok(&strata(dir.path(), &["--format", "ndjson", "-c", q]));
    assert_eq!(out, "{\"a\":1,\"n\":null}\n");
}

/// Runs `strata ARGS | HEAD` in a shell, with stderr into the pipe as well when asked;
/// returns strata's exit status, what head printed and the shell's stderr.
fn into_head(
    warehouse: &Path,
    args: &str,
    head: &str,
    stderr_too: bool,
) -> (String, String, String) {
    let status_file = warehouse.with_extension("status");
    let script = format!(
        "{{ '{}' --warehouse '{}' {args} {}; echo $? > '{}'; }} | {head}",
        env!("CARGO_BIN_EXE_strata"),
        warehouse.display(),
        if stderr_too { "2>&1" } else { "" },
        status_file.display()
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .env_remove("STRATA_WAREHOUSE")
        .output()
        .expect("sh runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let status = std::fs::read_to_string(&status_file).expect("status written");
    (status.trim().to_string(), super::stdout(&o), stderr(&o))
}

/// A reader that stops early (`| head`) ends strata quietly with success, in every format
/// and with stderr into the same pipe.
#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let q = "\"SELECT value, value * 2 AS twice FROM generate_series(1, 5000000)\"";
    for format in ["csv", "tsv", "json", "ndjson", "table"] {
        for stderr_too in [false, true] {
            // The table is cut at enough rows to fill the pipe; JSON is one line.
            let args = format!("--format {format} --maxrows 4000 -c {q}");
            let head = if format == "json" {
                "head -c 100"
            } else {
                "head -3"
            };
            let (status, out, err) = into_head(&wh, &args, head, stderr_too);
            assert_eq!(status, "0", "{format}: {err}");
            let (lines, bytes) = (out.lines().count(), out.len());
            assert!(
                (format == "json" && bytes == 100) || lines == 3,
                "{format}: {lines} lines, {bytes} bytes"
            );
            assert!(!out.contains("panicked"), "{format}");
            assert!(err.is_empty(), "{format}: {err}");
        }
    }
    // Rows come in no set order without ORDER BY; each is whole.
    let (_, out, _) = into_head(&wh, &format!("--format csv -c {q}"), "head -3", false);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("value,twice"), "{out}");
    for line in lines {
        let (value, twice) = line.split_once(',').expect("two fields");
        let (value, twice): (u64, u64) =
            (value.parse().expect("value"), twice.parse().expect("twice"));
        assert_eq!(twice, value * 2, "{out}");
    }
}

/// A CSV export of 20 million rows streams: the process's peak memory, as `time -v`
/// reports it, stays far below what holding the result would take (about 1.5 GB here).
#[test]
fn a_large_export_streams_in_flat_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg("--warehouse")
        .arg(dir.path().join("wh"))
        .args([
            "--format",
            "csv",
            "-c",
            "SELECT value, concat('row number ', value, ' of twenty million') AS label \
             FROM generate_series(1, 20000000)",
        ])
        .env_remove("STRATA_WAREHOUSE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/time runs strata");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let (mut lines, mut bytes) = (0usize, 0usize);
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            match stdout.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    bytes += n;
                    lines += buffer[..n].iter().filter(|b| **b == b'\n').count();
                }
            }
        }
        (lines, bytes)
    });
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    let status = child.wait().expect("wait");
    assert!(status.success(), "{err}");
    let (lines, bytes) = reader.join().expect("reader");
    assert_eq!(lines, 20_000_001);
    assert!(bytes > 900_000_000, "{bytes} bytes");
    let peak_kib: u64 = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in: {err}"));
    assert!(peak_kib < 512 * 1024, "peak RSS {} MiB", peak_kib / 1024);
}

/// The REPL on a terminal (`script` gives it one): an unfinished statement gets the `…>`
/// prompt, `\maxrows` and `\null` change the tables, `quit` leaves, and each statement is in
/// the history file as soon as it ran.
#[test]
fn the_repl_continues_statements_and_keeps_history() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let command = format!(
        "'{}' --warehouse '{}'",
        env!("CARGO_BIN_EXE_strata"),
        dir.path().join("wh").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("HOME", &home)
        .env("COLUMNS", "80")
        .env("PAGER", "")
        .env_remove("STRATA_WAREHOUSE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs strata on a terminal");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<u8> = vec![];
    // Reads the terminal until `text` shows after what was seen so far; bytes, not text,
    // are gathered, as a chunk may end inside a character.
    let mut wait_for = |text: &str| -> String {
        let from = seen.len();
        loop {
            let since = String::from_utf8_lossy(&seen[from..]).to_string();
            if since.contains(text) {
                return since;
            }
            let chunk = receiver
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no '{text}' in: {since}"));
            seen.extend_from_slice(&chunk);
        }
    };
    let history = home.join(".strata_history");
    wait_for("strata:curated> ");
    let mut say = |line: &str| {
        stdin
            .write_all(format!("{line}\r").as_bytes())
            .expect("write to the terminal");
    };
    say("SELECT value, NULL AS n");
    wait_for("…> ");
    say("FROM generate_series(1, 9);");
    let table = wait_for("strata:curated> ");
    assert!(table.contains("|     1 | NULL |"), "{table}");
    assert!(table.contains("9 rows in "), "{table}");
    let kept = std::fs::read_to_string(&history).expect("history written");
    assert!(kept.contains("FROM generate_series(1, 9);"), "{kept}");
    say("\\maxrows 2");
    wait_for("strata:curated> ");
    say("\\null ?");
    wait_for("strata:curated> ");
    say("SELECT value, NULL AS n FROM generate_series(1, 9);");
    let table = wait_for("strata:curated> ");
    assert!(table.contains("|     1 | ? |"), "{table}");
    assert!(table.contains("|     … | … |"), "{table}");
    assert!(table.contains("9 rows (2 shown) in "), "{table}");
    say("quit");
    let status = child.wait().expect("wait");
    assert!(status.success());
}
