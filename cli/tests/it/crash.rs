//! Crash safety: the `strata` binary is made to die at each failpoint of a write
//! (`STRATA_FAILPOINT`, see `strata_engine::failpoint`), and every table must then read as
//! before the write or as after it, never between, with no row twice; running the statement
//! again must work. Four processes creating one table at once: exactly one wins, with its
//! rows only, and nothing of the others stays in the table's folder or its Delta log.

use std::path::Path;
use std::process::{Command, Output};

use super::{stderr, stdout, strata};

/// What a table holds: rows, distinct ids, sum of ids (`None`: the table does not exist).
type State = Option<(i64, i64, i64)>;

fn state(wh: &Path, table: &str) -> State {
    let o = strata(
        wh,
        &[
            "--format",
            "csv",
            "-c",
            &format!(
                "SELECT count(*) AS n, count(DISTINCT id) AS d, coalesce(sum(id), 0) AS s FROM {table}"
            ),
        ],
    );
    if !o.status.success() {
        let err = stderr(&o);
        assert!(
            err.contains("not found") || err.contains("does not exist") || err.contains("no table"),
            "{table} cannot be read: {err}"
        );
        return None;
    }
    let out = stdout(&o);
    let line = out
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no row: {out}"));
    let v: Vec<i64> = line
        .split(',')
        .map(|x| x.trim().parse().unwrap_or_else(|_| panic!("{out}")))
        .collect();
    Some((v[0], v[1], v[2]))
}

fn run(wh: &Path, sql: &str) {
    let o = strata(wh, &["-c", sql]);
    assert!(o.status.success(), "{sql}: {}", stderr(&o));
}

fn with_failpoint(wh: &Path, sql: &str, failpoint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--warehouse")
        .arg(wh)
        .args(["-c", sql])
        .env_remove("STRATA_WAREHOUSE")
        .env("STRATA_FAILPOINT", failpoint)
        .output()
        .expect("strata runs")
}

/// Folders whose name starts with `_strata_staging_` anywhere under `dir`.
fn staging_folders(dir: &Path) -> Vec<String> {
    let mut found = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("_strata_staging_")
            {
                found.push(path.display().to_string());
            } else {
                found.extend(staging_folders(&path));
            }
        }
    }
    found
}

struct Case {
    name: &'static str,
    table: &'static str,
    setup: &'static [&'static str],
    statement: &'static str,
    failpoints: &'static [&'static str],
    /// The state after the statement, given the state before it.
    apply: fn(State) -> State,
}

const PARQUET_POINTS: &[&str] = &[
    "after_data_files",
    "during_swap",
    "before_catalog_commit",
    "after_catalog_commit",
];
const DELTA_CTAS_POINTS: &[&str] = &[
    "before_delta_commit",
    "after_delta_commit",
    "before_catalog_commit",
];
const DELTA_POINTS: &[&str] = &["before_delta_commit", "after_delta_commit"];

/// Sum of `lo..=hi`.
fn span(lo: i64, hi: i64) -> i64 {
    (lo + hi) * (hi - lo + 1) / 2
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "CTAS Parquet",
            table: "processed.c",
            setup: &[],
            statement: "CREATE TABLE processed.c PARTITIONED BY (g) AS SELECT value AS id, value % 3 AS g FROM generate_series(1, 6000)",
            failpoints: PARQUET_POINTS,
            apply: |_| Some((6000, 6000, span(1, 6000))),
        },
        Case {
            name: "CTAS Delta",
            table: "curated.c",
            setup: &[],
            statement: "CREATE TABLE curated.c STORED AS DELTA AS SELECT value AS id FROM generate_series(1, 6000)",
            failpoints: DELTA_CTAS_POINTS,
            apply: |_| Some((6000, 6000, span(1, 6000))),
        },
        Case {
            name: "INSERT Parquet",
            table: "processed.t",
            setup: &[
                "CREATE TABLE processed.t AS SELECT value AS id FROM generate_series(1, 3000)",
            ],
            statement: "INSERT INTO processed.t SELECT value AS id FROM generate_series(3001, 5000)",
            failpoints: PARQUET_POINTS,
            // Run twice, an insert adds its rows twice; they are new ids only the first time.
            apply: |s| {
                s.map(|(n, d, sum)| {
                    (
                        n + 2000,
                        if n == 3000 { d + 2000 } else { d },
                        sum + span(3001, 5000),
                    )
                })
            },
        },
        Case {
            name: "INSERT OVERWRITE Parquet",
            table: "processed.t",
            setup: &[
                "CREATE TABLE processed.t AS SELECT value AS id FROM generate_series(1, 3000)",
            ],
            statement: "INSERT OVERWRITE processed.t SELECT value AS id FROM generate_series(10001, 14000)",
            failpoints: PARQUET_POINTS,
            apply: |_| Some((4000, 4000, span(10001, 14000))),
        },
        Case {
            name: "INSERT OVERWRITE PARTITION Parquet",
            table: "processed.p",
            setup: &[
                "CREATE TABLE processed.p PARTITIONED BY (g) AS SELECT value AS id, value % 4 AS g FROM generate_series(1, 4000)",
            ],
            // Replaces partitions 0 and 1 (2,000 rows) with 1,000 new rows; 2 and 3 stay.
            statement: "INSERT OVERWRITE processed.p PARTITION (g) SELECT value + 100000 AS id, value % 2 AS g FROM generate_series(1, 1000)",
            failpoints: PARQUET_POINTS,
            apply: |_| {
                let kept: i64 = (1..=4000).filter(|v| v % 4 >= 2).sum();
                Some((3000, 3000, kept + span(100001, 101000)))
            },
        },
        Case {
            name: "INSERT Delta",
            table: "curated.d",
            setup: &[
                "CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id FROM generate_series(1, 3000)",
            ],
            statement: "INSERT INTO curated.d SELECT value AS id FROM generate_series(3001, 5000)",
            failpoints: DELTA_POINTS,
            // Run twice, an insert adds its rows twice; they are new ids only the first time.
            apply: |s| {
                s.map(|(n, d, sum)| {
                    (
                        n + 2000,
                        if n == 3000 { d + 2000 } else { d },
                        sum + span(3001, 5000),
                    )
                })
            },
        },
        Case {
            name: "UPDATE Delta",
            table: "curated.d",
            setup: &[
                "CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id FROM generate_series(1, 3000)",
            ],
            statement: "UPDATE curated.d SET id = id + 1000000 WHERE id <= 1000",
            failpoints: DELTA_POINTS,
            apply: |s| {
                s.map(|(n, d, sum)| {
                    let moved = if sum == span(1, 3000) {
                        1000 * 1_000_000
                    } else {
                        0
                    };
                    (n, d, sum + moved)
                })
            },
        },
        Case {
            name: "DELETE Delta",
            table: "curated.d",
            setup: &[
                "CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id FROM generate_series(1, 3000)",
            ],
            statement: "DELETE FROM curated.d WHERE id <= 1000",
            failpoints: DELTA_POINTS,
            apply: |_| Some((2000, 2000, span(1001, 3000))),
        },
        Case {
            name: "MERGE Delta",
            table: "curated.d",
            setup: &[
                "CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id, 0 AS v FROM generate_series(1, 3000)",
                "CREATE TABLE curated.src STORED AS DELTA AS SELECT value AS id, 1 AS v FROM generate_series(2001, 4000)",
            ],
            statement: "MERGE INTO curated.d t USING curated.src s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)",
            failpoints: DELTA_POINTS,
            apply: |_| Some((4000, 4000, span(1, 4000))),
        },
    ]
}

/// Every write, killed at each of its failpoints, leaves its table as before or after, and
/// running it again gives the table as after.
#[test]
fn a_kill_at_any_failpoint_leaves_every_table_before_or_after() {
    let mut killed = 0;
    for case in cases() {
        for failpoint in case.failpoints {
            let dir = tempfile::tempdir().expect("tempdir");
            let wh = dir.path();
            for sql in case.setup {
                run(wh, sql);
            }
            let before = state(wh, case.table);
            let after = (case.apply)(before);
            let o = with_failpoint(wh, case.statement, failpoint);
            let what = format!("{} at {failpoint}", case.name);
            assert!(
                !o.status.success() && o.status.code().is_none(),
                "{what}: the process was not killed: {} {}",
                stdout(&o),
                stderr(&o)
            );
            killed += 1;
            let now = state(wh, case.table);
            assert!(
                now == before || now == after,
                "{what}: {now:?} is neither before ({before:?}) nor after ({after:?})"
            );
            if let Some((n, d, _)) = now {
                assert_eq!(n, d, "{what}: rows twice");
            }
            // Again, without the failpoint.
            let o = strata(wh, &["-c", case.statement]);
            let again = state(wh, case.table);
            if o.status.success() {
                assert_eq!(again, (case.apply)(now), "{what}: the retry");
            } else {
                // Only a table creation that had landed may refuse to run again.
                assert!(
                    case.name.starts_with("CTAS") && now == after,
                    "{what}: the retry failed: {}",
                    stderr(&o)
                );
                assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
            }
            // A retry that wrote removed the dead writer's staging folders.
            if o.status.success() {
                let left = staging_folders(wh);
                assert!(left.is_empty(), "{what}: staging folders left: {left:?}");
            }
            // VACUUM removes the files the dead writer left that no entry lists: the folder,
            // read whole, is the table.
            if case.table.starts_with("processed.") {
                run(wh, &format!("VACUUM {} RETAIN 0 HOURS", case.table));
                let (_, name) = case.table.split_once('.').expect("zone.table");
                let location =
                    url::Url::from_directory_path(wh.join("processed").join(name)).expect("url");
                run(
                    wh,
                    &format!(
                        "CREATE EXTERNAL TABLE processed.whole STORED AS PARQUET LOCATION '{location}'"
                    ),
                );
                assert_eq!(
                    state(wh, "processed.whole"),
                    again,
                    "{what}: the folder holds files the table does not"
                );
            }
            let left = staging_folders(wh);
            assert!(left.is_empty(), "{what}: staging folders left: {left:?}");
        }
    }
    assert_eq!(
        killed,
        cases().iter().map(|c| c.failpoints.len()).sum::<usize>()
    );
}

/// Data files (`.parquet`) anywhere under `dir`, but in folders starting with `_`.
fn data_files(dir: &Path) -> Vec<String> {
    let mut found = vec![];
    for e in std::fs::read_dir(dir).expect("folder").flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let path = e.path();
        if path.is_dir() {
            if !name.starts_with('_') {
                found.extend(data_files(&path));
            }
        } else if name.ends_with(".parquet") {
            found.push(name);
        }
    }
    found.sort();
    found
}

fn race(format: &str, zone: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path();
    run(wh, "SHOW ZONES");
    let writers: Vec<_> = (1..=4)
        .map(|k| {
            let sql = format!(
                "CREATE TABLE {zone}.same STORED AS {format} AS SELECT value AS id, {k} AS writer FROM generate_series(1, 20000)"
            );
            super::spawn_strata(wh, &["-c", &sql])
        })
        .collect();
    let outputs: Vec<Output> = writers
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let winners: Vec<usize> = outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status.success())
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(winners.len(), 1, "{format}: winners {winners:?}");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        assert!(
            stderr(o).contains("already exists"),
            "{format}: {}",
            stderr(o)
        );
    }
    let winner = winners[0];
    let o = strata(
        wh,
        &[
            "--format",
            "csv",
            "-c",
            &format!("SELECT count(*) AS n, min(writer) AS lo, max(writer) AS hi FROM {zone}.same"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().nth(1),
        Some(format!("20000,{winner},{winner}").as_str()),
        "{format}"
    );
    // The folder holds the winner's files and nothing else: read whole, it has 20,000 rows.
    let folder = wh.join(zone).join("same");
    let files = data_files(&folder);
    if format == "DELTA" {
        let log: Vec<_> = std::fs::read_dir(folder.join("_delta_log"))
            .expect("log")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert_eq!(log, ["00000000000000000000.json"], "{format}: {log:?}");
        let commit = std::fs::read_to_string(folder.join("_delta_log/00000000000000000000.json"))
            .expect("commit");
        let added = commit.lines().filter(|l| l.contains("\"add\"")).count();
        assert_eq!(files.len(), added, "{format}: {files:?}");
    } else {
        let location = url::Url::from_directory_path(&folder).expect("url");
        run(
            wh,
            &format!(
                "CREATE EXTERNAL TABLE processed.whole STORED AS PARQUET LOCATION '{location}'"
            ),
        );
        assert_eq!(
            state(wh, "processed.whole").map(|s| s.0),
            Some(20000),
            "{format}: {files:?}"
        );
    }
    assert!(staging_folders(wh).is_empty());
}

#[test]
fn of_four_processes_creating_one_delta_table_exactly_one_wins() {
    race("DELTA", "curated");
}

#[test]
fn of_four_processes_creating_one_parquet_table_exactly_one_wins() {
    race("PARQUET", "processed");
}
