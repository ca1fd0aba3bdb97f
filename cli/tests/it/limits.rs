//! Bounded resources: queries over `--memory-limit` spill and give the answers an unlimited
//! run gives, and statements too deeply nested to plan end in an error naming the limit,
//! never in a stack overflow that aborts the process.

use std::path::Path;
use std::process::Output;

use crate::{ok, stderr, strata};

/// A table whose ORDER BY and GROUP BY need more than the limits below: 300,000 rows with a
/// 32-character string each.
fn big_table(warehouse: &Path) {
    ok(&strata(
        warehouse,
        &[
            "-c",
            "CREATE TABLE processed.big AS \
             SELECT value AS id, md5(CAST(value AS VARCHAR)) AS s, value % 1000 AS g \
             FROM generate_series(1, 300000)",
        ],
    ));
}

/// Runs a query as CSV under a memory limit (or none).
fn csv(warehouse: &Path, limit: Option<&str>, sql: &str) -> Output {
    let mut args = vec![];
    if let Some(limit) = limit {
        args.extend(["--memory-limit", limit]);
    }
    args.extend(["--format", "csv", "-c", sql]);
    strata(warehouse, &args)
}

/// A sort and an aggregation that need more than 48 MiB finish under that limit, by
/// spilling, with the answers of the unlimited run; EXPLAIN ANALYZE counts the spills.
#[test]
fn sorts_and_aggregations_spill_under_the_memory_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spill = dir.path().join("spill");
    big_table(dir.path());
    let queries = [
        "SELECT s, id FROM processed.big ORDER BY s",
        "SELECT s, id FROM processed.big ORDER BY s DESC LIMIT 1000",
        "SELECT s, count(*) AS n, sum(g) AS total FROM processed.big GROUP BY s ORDER BY s",
    ];
    for sql in queries {
        let unlimited = ok(&csv(dir.path(), None, sql));
        assert_eq!(
            unlimited.lines().count(),
            if sql.contains("LIMIT") {
                1_001
            } else {
                300_001
            },
            "{sql}"
        );
        let limited = ok(&strata(
            dir.path(),
            &[
                "--memory-limit",
                "48MiB",
                "--spill-dir",
                &spill.to_string_lossy(),
                "--format",
                "csv",
                "-c",
                sql,
            ],
        ));
        assert!(
            limited == unlimited,
            "{sql}: answers differ under the limit"
        );
    }
    // The full sort did spill, to the folder asked for.
    let analyzed = ok(&strata(
        dir.path(),
        &[
            "--memory-limit",
            "48MiB",
            "--spill-dir",
            &spill.to_string_lossy(),
            "--format",
            "csv",
            "-c",
            "EXPLAIN ANALYZE SELECT s, id FROM processed.big ORDER BY s",
        ],
    ));
    let spills: u64 = analyzed
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum();
    assert!(spills > 0, "no spills:\n{analyzed}");
    // The merge above the sorts counts the strings it holds, not the runs they point into
    // (see `optimizer::compact_merge_inputs`).
    assert!(analyzed.contains("CompactViewsExec"), "{analyzed}");
    assert!(spill.is_dir(), "the spill folder was created");
}

/// A query that needs more memory than the limit in an operator that cannot spill fails
/// with an error that names the limit and says what to do, and the process carries on.
#[test]
fn over_the_limit_without_spilling_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = csv(
        dir.path(),
        Some("4MiB"),
        "SELECT count(*) FROM generate_series(1, 2000000) a \
         JOIN generate_series(1, 2000000) b ON a.value = b.value; SELECT 42 AS answer",
    );
    let err = stderr(&o);
    assert!(err.contains("--memory-limit"), "{err}");
    assert!(
        err.contains("answer") || crate::stdout(&o).contains("42"),
        "{err}"
    );
}

/// `n` terms joined by `op`.
fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

/// The process ended by itself (no signal, so no stack overflow or abort) and either
/// answered or named the depth limit.
fn ended_cleanly(o: &Output, what: &str) {
    assert!(
        o.status.code().is_some(),
        "{what}: killed by a signal: {:?}\n{}",
        o.status,
        stderr(o)
    );
    if !o.status.success() {
        let err = stderr(o);
        assert!(
            err.contains("1000 levels") || err.contains("nests too deeply"),
            "{what}: {err}"
        );
    }
}

/// Long chains of `+`, `OR` and `||`, and deeply nested parentheses and calls, are refused
/// with an error naming the limit; chains below it are answered.
#[test]
fn deep_expressions_are_refused_not_crashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("+", format!("SELECT {} AS x", chain("1", "+", 20_000))),
        (
            "OR",
            format!(
                "SELECT count(*) FROM generate_series(1, 3) WHERE {}",
                chain("value = 2", " OR ", 20_000)
            ),
        ),
        (
            "||",
            format!("SELECT {} AS x", chain("'a'", " || ", 20_000)),
        ),
        (
            "(",
            format!("SELECT {}1{} AS x", "(".repeat(2_000), ")".repeat(2_000)),
        ),
        (
            "abs(",
            format!("SELECT {}1{} AS x", "abs(".repeat(2_000), ")".repeat(2_000)),
        ),
    ];
    for (what, sql) in &cases {
        // Longer than one command-line argument may be: from a file.
        let file = dir.path().join("deep.sql");
        std::fs::write(&file, sql).expect("write the statement");
        let o = strata(
            dir.path(),
            &["--format", "csv", "-f", &file.to_string_lossy()],
        );
        ended_cleanly(&o, what);
        assert!(
            !o.status.success(),
            "{what}: a statement past the limit was run"
        );
    }
    // Below the limit: answered.
    let o = csv(
        dir.path(),
        None,
        &format!("SELECT {} AS x", chain("1", "+", 300)),
    );
    assert_eq!(ok(&o), "x\n300\n");
    let o = csv(
        dir.path(),
        None,
        &format!(
            "SELECT count(*) AS n FROM generate_series(1, 5) WHERE {}",
            {
                let terms: Vec<String> = (0..300).map(|i| format!("value = {}", i % 7)).collect();
                terms.join(" OR ")
            }
        ),
    );
    assert_eq!(ok(&o), "n\n5\n");
}
