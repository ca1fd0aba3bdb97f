//! End-to-end tests of the `strata` binary: `-c`, `-f`, output formats, exit codes, and
//! several processes sharing one warehouse.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod bench;
mod cluster;
mod crash;
mod faults;
mod limits;
mod output;
mod pipeline;
mod portable;
mod repl;
mod s3;
mod serve;

fn strata(warehouse: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--warehouse")
        .arg(warehouse)
        .args(args)
        .env_remove("STRATA_WAREHOUSE")
        .env_remove("COLUMNS")
        .output()
        .expect("strata runs")
}

/// Starts strata in the background, output captured, for tests of concurrent processes.
fn spawn_strata(warehouse: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--warehouse")
        .arg(warehouse)
        .args(args)
        .env_remove("STRATA_WAREHOUSE")
        .env_remove("COLUMNS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn strata")
}

fn testdata(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(relative)
        .canonicalize()
        .expect("testdata exists")
        .to_string_lossy()
        .to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The stdout of a run that must succeed.
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}\nstdout: {}",
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

/// Arguments that run a benchmark's query file (under `benches/`) in a zone, as CSV.
fn bench_query(zone: &str, file: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../benches")
        .join(file);
    ["--zone", zone, "--format", "csv", "-f"]
        .iter()
        .map(ToString::to_string)
        .chain([path.to_string_lossy().to_string()])
        .collect()
}

/// The per-query objects of a `strata bench --output` file.
fn bench_results(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("results");
    serde_json::from_str(&text).expect("a JSON array")
}

/// The rows each query of a benchmark returned.
fn rows_of(results: &[serde_json::Value]) -> Vec<i64> {
    results
        .iter()
        .map(|q| q["rows"].as_i64().unwrap_or(-1))
        .collect()
}

fn register_sales(warehouse: &Path) {
    let sql = format!(
        "CREATE EXTERNAL TABLE raw.sales STORED AS JSON LOCATION '{}'",
        testdata("retail/sales")
    );
    let o = strata(warehouse, &["-c", &sql]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// CSV output is the header and the rows only: DDL and USE print nothing.
#[test]
fn csv_output_is_only_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    register_sales(dir.path());
    let o = strata(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            "USE raw; SELECT month, count(*) AS n FROM sales WHERE month <= 2 GROUP BY month ORDER BY month",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "month,n\n1,20\n2,20\n");
}

/// Table output ends with a footer counting rows, files and bytes; a one-month query opens
/// only that month's file.
#[test]
fn table_footer_counts_files_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    register_sales(dir.path());
    let o = strata(
        dir.path(),
        &["-c", "SELECT count(*) FROM raw.sales WHERE month = 3"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(" 20 |"), "{out}");
    assert!(out.contains("1 row in "), "{out}");
    assert!(out.contains("; 1 file, "), "{out}");
    let o = strata(dir.path(), &["-c", "SELECT count(*) FROM raw.sales"]);
    assert!(stdout(&o).contains("; 6 files, "), "{}", stdout(&o));
}

/// json and ndjson print parseable results; tsv uses tabs.
#[test]
fn json_ndjson_and_tsv_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    register_sales(dir.path());
    let q = "SELECT sale_id, customer['segment'] AS segment FROM raw.sales WHERE sale_id <= 2 ORDER BY sale_id";
    let o = strata(dir.path(), &["--format", "json", "-c", q]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(v[0]["sale_id"], 1);
    let o = strata(dir.path(), &["--format", "ndjson", "-c", q]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let o = strata(dir.path(), &["--format", "tsv", "-c", q]);
    assert!(
        stdout(&o).starts_with("sale_id\tsegment\n1\t"),
        "{}",
        stdout(&o)
    );
    let o = strata(
        dir.path(),
        &["--format", "json", "-c", "SELECT 1 AS a WHERE false"],
    );
    assert_eq!(stdout(&o).trim(), "[]");
}

/// A failing statement in a script: the error names the file and line, the remaining
/// statements still run, and the exit code is non-zero.
#[test]
fn script_errors_name_the_line_and_fail_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("job.sql");
    std::fs::write(
        &script,
        "SELECT 1 AS a;\n\nSELECT * FROM raw.nope;\nSELECT 2 AS b;\n",
    )
    .expect("write script");
    let o = strata(
        &dir.path().join("wh"),
        &["--format", "csv", "-f", script.to_str().unwrap_or_default()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "a\n1\nb\n2\n");
    let err = stderr(&o);
    assert!(err.contains("job.sql line 3"), "{err}");
    assert!(err.contains("table 'raw.nope' not found"), "{err}");
    let o = strata(
        &dir.path().join("wh"),
        &[
            "--stop-on-error",
            "--format",
            "csv",
            "-f",
            script.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "a\n1\n");
}

/// A syntax error says where it is and exits non-zero; a good statement exits zero.
#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(dir.path(), &["-c", "SELEC 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Line: 1, Column: 1"), "{}", stderr(&o));
    let o = strata(dir.path(), &["-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(0));
    // A statement that starts with a comment is still a statement, not a flag.
    let o = strata(
        dir.path(),
        &["--format", "csv", "-c", "-- the answer\nSELECT 42 AS a"],
    );
    assert_eq!(stdout(&o), "a\n42\n", "{}", stderr(&o));
    let o = strata(dir.path(), &["--zone", "gold", "-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown zone 'gold'"), "{}", stderr(&o));
}

/// `--zone` sets where unqualified names resolve.
#[test]
fn zone_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    register_sales(dir.path());
    let o = strata(
        dir.path(),
        &[
            "--zone",
            "raw",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM sales",
        ],
    );
    assert_eq!(stdout(&o), "n\n120\n", "{}", stderr(&o));
}

/// Eight processes register tables in one warehouse at the same time: none is lost, and a
/// later process (a restart) sees all of them.
#[test]
fn eight_processes_lose_no_registration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = testdata("retail/products");
    // Create the warehouse first so the processes race on registrations only.
    let o = strata(dir.path(), &["-c", "SELECT 1"]);
    assert!(o.status.success());
    let children: Vec<_> = (0..8)
        .map(|p| {
            let sql: String = (0..5)
                .map(|i| {
                    format!(
                        "CREATE EXTERNAL TABLE raw.t_{p}_{i} STORED AS CSV LOCATION '{location}';"
                    )
                })
                .collect();
            spawn_strata(dir.path(), &["--format", "csv", "-c", &sql])
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().expect("wait");
        assert!(o.status.success());
    }
    let o = strata(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'raw' AND table_name LIKE 't\\_%'",
        ],
    );
    assert_eq!(stdout(&o), "n\n40\n", "{}", stderr(&o));
    let o = strata(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM raw.t_7_4",
        ],
    );
    assert_eq!(stdout(&o), "n\n8\n", "{}", stderr(&o));
}

/// The demo flag seeds a warehouse with the sample star schema.
#[test]
fn demo_warehouse_has_sample_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(
        dir.path(),
        &[
            "--demo",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM raw.sales s JOIN raw.products p ON s.product_id = p.product_id",
        ],
    );
    assert_eq!(stdout(&o), "n\n120\n", "{}", stderr(&o));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// The schema is kept with the table: a file with a new field is read under the recorded
/// schema until REFRESH TABLE infers it again.
#[test]
fn refresh_table_infers_the_schema_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("events");
    copy_dir(Path::new(&testdata("edge/widen")), &data);
    let wh = dir.path().join("wh");
    let create = format!(
        "CREATE EXTERNAL TABLE raw.events STORED AS JSON LOCATION '{}'",
        data.display()
    );
    let o = strata(&wh, &["-c", &create]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        data.join("c.ndjson"),
        "{\"id\": 3, \"code\": \"C\", \"score\": 3, \"region\": \"north\"}\n",
    )
    .expect("write");
    let o = strata(
        &wh,
        &[
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM raw.events",
        ],
    );
    assert_eq!(stdout(&o), "n\n3\n", "{}", stderr(&o));
    let o = strata(
        &wh,
        &["--format", "csv", "-c", "SELECT region FROM raw.events"],
    );
    assert!(stderr(&o).contains("region"), "{}", stderr(&o));
    let o = strata(
        &wh,
        &[
            "--format",
            "csv",
            "-c",
            "REFRESH TABLE raw.events; SELECT id, region FROM raw.events ORDER BY id",
        ],
    );
    assert_eq!(stdout(&o), "id,region\n1,\n2,\n3,north\n", "{}", stderr(&o));
}

/// With skip_malformed, bad lines are skipped and counted on stderr, naming the file.
#[test]
fn skipped_lines_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let create = format!(
        "CREATE EXTERNAL TABLE raw.bad STORED AS JSON LOCATION '{}' OPTIONS ('skip_malformed' 'true')",
        testdata("edge/malformed")
    );
    let o = strata(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            &create,
            "-c",
            "SELECT count(*) AS n FROM raw.bad",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n\n3\n");
    let err = stderr(&o);
    assert!(err.contains("skipped 1 malformed line in "), "{err}");
    assert!(err.contains("edge/malformed/part-0.ndjson"), "{err}");
}

/// DESCRIBE HISTORY lists every version of a Delta table, newest first, with the operation
/// and the SQL that made it.
#[test]
fn delta_history_records_the_sql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(
        dir.path(),
        &[
            "--demo",
            "--format",
            "csv",
            "-c",
            "CREATE TABLE curated.dim_store AS SELECT * FROM raw.stores",
            "-c",
            "UPDATE curated.dim_store SET region = 'centre' WHERE city = 'Porto'",
            "-c",
            "DELETE FROM curated.dim_store WHERE city = 'Faro'",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "count\n1\ncount\n1\n");
    let o = strata(
        dir.path(),
        &[
            "--format",
            "json",
            "-c",
            "DESCRIBE HISTORY curated.dim_store",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let rows = v.as_array().expect("rows");
    let summary: Vec<(i64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["version"].as_i64().unwrap_or(-1),
                r["operation"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(summary, vec![(2, "DELETE"), (1, "UPDATE"), (0, "WRITE")]);
    assert_eq!(
        rows[1]["sql"],
        "UPDATE curated.dim_store SET region = 'centre' WHERE city = 'Porto'"
    );
    let o = strata(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            "SELECT city, region FROM curated.dim_store ORDER BY city",
        ],
    );
    assert_eq!(
        stdout(&o),
        "city,region\nBraga,north\nLisbon,south\nPorto,centre\n",
        "{}",
        stderr(&o)
    );
}

/// A filter on a Delta table's partition column opens only that partition's files; one on
/// another column skips files by their statistics.
#[test]
fn delta_reads_skip_partitions_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(
        dir.path(),
        &[
            "--demo",
            "-c",
            "CREATE TABLE curated.fact PARTITIONED BY (month) AS SELECT sale_id, amount, month FROM raw.sales",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let parquet_files = |o: &Output| -> usize {
        // Footer: "; N files, X scanned" counts data and log files; count data files apart.
        let out = stdout(o);
        out.lines()
            .find_map(|l| {
                l.split("; ")
                    .nth(1)
                    .and_then(|f| f.split(' ').next()?.parse().ok())
            })
            .unwrap_or(usize::MAX)
    };
    let all = strata(dir.path(), &["-c", "SELECT sum(amount) FROM curated.fact"]);
    let one = strata(
        dir.path(),
        &["-c", "SELECT sum(amount) FROM curated.fact WHERE month = 4"],
    );
    let by_stats = strata(
        dir.path(),
        &[
            "-c",
            "SELECT sum(amount) FROM curated.fact WHERE sale_id > 115",
        ],
    );
    assert!(all.status.success() && one.status.success() && by_stats.status.success());
    let (all, one, by_stats) = (
        parquet_files(&all),
        parquet_files(&one),
        parquet_files(&by_stats),
    );
    // Six month files more in a full scan than in a one-month scan: exactly five skipped.
    assert_eq!(all - one, 5, "all={all} one={one}");
    // sale_id > 115 lies in June only: statistics skip the other five month files too.
    assert_eq!(all - by_stats, 5, "all={all} by_stats={by_stats}");
}

/// Four processes appending to one Delta table at the same time: every append lands.
#[test]
fn concurrent_delta_appends_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(
        dir.path(),
        &[
            "-c",
            "CREATE TABLE curated.events (id BIGINT, writer INT) STORED AS DELTA",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let children: Vec<_> = (0..4)
        .map(|w| {
            let sql: String = (0..3)
                .map(|i| format!("INSERT INTO curated.events VALUES ({}, {w});", w * 100 + i))
                .collect();
            spawn_strata(dir.path(), &["--format", "csv", "-c", &sql])
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = strata(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n, count(DISTINCT writer) AS w FROM curated.events",
        ],
    );
    assert_eq!(stdout(&o), "n,w\n12,4\n", "{}", stderr(&o));
}

/// EXPLAIN ANALYZE shows the skipping: a Delta scan for one month lists one file; a Parquet
/// scan skips files and row groups by their statistics.
#[test]
fn explain_analyze_shows_statistics_skipping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(
        dir.path(),
        &[
            "--demo",
            "-c",
            "SET datafusion.execution.parquet.max_row_group_size = 10",
            "-c",
            "CREATE TABLE curated.fact PARTITIONED BY (month) AS SELECT sale_id, amount, month FROM raw.sales",
            "-c",
            "CREATE TABLE processed.fact PARTITIONED BY (month) AS SELECT sale_id, amount, month FROM raw.sales",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(
        dir.path(),
        &[
            "-c",
            "EXPLAIN ANALYZE SELECT sum(amount) FROM curated.fact WHERE month = 4",
        ],
    );
    let out = stdout(&o);
    // One file of the six in the scan, the others left out by their partition values.
    assert!(out.contains("file_groups={1 group: [["), "{out}");
    assert!(
        out.contains("files_ranges_pruned_statistics=1 total → 1 matched"),
        "{out}"
    );
    let o = strata(
        dir.path(),
        &[
            "-c",
            "EXPLAIN ANALYZE SELECT sum(amount) FROM processed.fact WHERE sale_id > 115",
        ],
    );
    let out = stdout(&o);
    assert!(
        out.contains("files_ranges_pruned_statistics=6 total → 1 matched"),
        "{out}"
    );
    assert!(
        out.contains("row_groups_pruned_statistics=2 total → 1 matched"),
        "{out}"
    );
}

/// Two processes incrementing the same row at once: each UPDATE either lands or fails with
/// a conflict error, and the value counts exactly the ones that landed (no lost update).
#[test]
fn conflicting_updates_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(
        dir.path(),
        &[
            "-c",
            "CREATE TABLE curated.counter AS SELECT 1 AS id, 0 AS n",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let children: Vec<_> = (0..2)
        .map(|_| {
            spawn_strata(
                dir.path(),
                &[
                    "--format",
                    "csv",
                    "-c",
                    "UPDATE curated.counter SET n = n + 1 WHERE id = 1",
                ],
            )
        })
        .collect();
    let mut landed = 0;
    for child in children {
        let o = child.wait_with_output().expect("wait");
        if o.status.success() {
            landed += 1;
        } else {
            assert!(
                stderr(&o).contains("conflicts with a change another writer committed"),
                "{}",
                stderr(&o)
            );
        }
    }
    assert!(landed >= 1);
    let o = strata(
        dir.path(),
        &["--format", "csv", "-c", "SELECT n FROM curated.counter"],
    );
    assert_eq!(stdout(&o), format!("n\n{landed}\n"), "{}", stderr(&o));
}

/// `strata tpch gen` writes and registers the eight TPC-H tables; at SF 0.01 their row
/// counts are the standard ones.
#[test]
fn tpch_gen_registers_the_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = strata(dir.path(), &["tpch", "gen", "--sf", "0.01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("processed.lineitem: 60175 rows"),
        "{}",
        stdout(&o)
    );
    let o = strata(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            "SELECT (SELECT count(*) FROM processed.orders) AS orders, (SELECT count(*) FROM processed.customer) AS customers, \
             (SELECT count(*) FROM processed.lineitem WHERE l_returnflag = 'N' AND l_linestatus = 'F') AS nf",
        ],
    );
    assert_eq!(
        stdout(&o),
        "orders,customers,nf\n15000,1500,348\n",
        "{}",
        stderr(&o)
    );
    let results = dir.path().join("results.json");
    let o = strata(
        dir.path(),
        &[
            "bench",
            "tpch",
            "--queries",
            "1,6",
            "--iterations",
            "2",
            "--output",
            results.to_str().unwrap_or_default(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("| q01 |"), "{}", stdout(&o));
    assert_eq!(rows_of(&bench_results(&results)), vec![4, 1]);
}
