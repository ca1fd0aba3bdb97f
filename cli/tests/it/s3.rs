//! The `strata` binary on S3: a real S3 server on loopback (strata-testkit's, in this test
//! process), warehouses and zones in buckets, several processes at once, a fault-injecting
//! proxy in between, and the errors users see when storage is down or refuses them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use strata_testkit::{FaultProxy, Faults, S3Server, closed_endpoint};

use super::{ok, stderr, stdout};

const ACCESS_KEY: &str = "cli-access";
const SECRET_KEY: &str = "cli-Secret-Qx93-do-not-print";

/// A server with buckets, and a folder for config files.
struct Lake {
    server: S3Server,
    _root: tempfile::TempDir,
    dir: tempfile::TempDir,
}

impl Lake {
    fn start(buckets: &[&str]) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let server = S3Server::start(root.path(), ACCESS_KEY, SECRET_KEY).expect("S3 server");
        for b in buckets {
            server.create_bucket(b).expect("bucket");
        }
        Self {
            server,
            _root: root,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes a config file for `endpoint` with these extra lines, and returns its path.
    fn config(&self, name: &str, endpoint: &str, secret: &str, extra: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let text = format!(
            "[s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{secret}\"\n{extra}\n"
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// A config for the server itself, with the right credentials.
    fn direct(&self) -> PathBuf {
        self.config("direct.toml", &self.server.endpoint(), SECRET_KEY, "")
    }

    /// Copies a folder of `testdata/` into a bucket (landing files, as a loader would).
    fn land(&self, bucket: &str, relative: &str) {
        let from = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(relative);
        super::copy_dir(&from, &self.server.root().join(bucket).join(relative));
    }
}

fn command(config: &Path, warehouse: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.arg("--warehouse")
        .arg(warehouse)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("STRATA_WAREHOUSE")
        .env_remove("STRATA_CONFIG");
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            c.env_remove(key);
        }
    }
    c
}

fn run(config: &Path, warehouse: &str, args: &[&str]) -> Output {
    command(config, warehouse, args)
        .output()
        .expect("strata runs")
}

/// Requests named in a footer or EXPLAIN ANALYZE line: "12 GET, 3 LIST".
fn requests(line: &str, kind: &str) -> u64 {
    let at = line
        .find(&format!(" {kind}"))
        .unwrap_or_else(|| panic!("no {kind} count in {line}"));
    line[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {kind} count in {line}"))
}

/// A warehouse in one bucket with its raw zone in another, set in the config file and kept
/// in the catalog; the demo data, a Delta table built from it, DML, time travel and VACUUM
/// all on S3; the footer counts requests and the second run of a query lists less.
#[test]
fn warehouse_and_zones_in_buckets() {
    let lake = Lake::start(&["lake", "lake-raw"]);
    let zoned = lake.config(
        "zoned.toml",
        &lake.server.endpoint(),
        SECRET_KEY,
        "[zones]\nraw = \"s3://lake-raw/\"",
    );
    let wh = "s3://lake/warehouse";
    let out = ok(&run(
        &zoned,
        wh,
        &["--demo", "--format", "csv", "-c", "SHOW ZONES"],
    ));
    assert!(out.contains("raw,s3://lake-raw/,3"), "{out}");
    assert!(
        out.contains("curated,s3://lake/warehouse/curated/,0"),
        "{out}"
    );
    // The files landed in the raw bucket.
    assert!(
        lake.server
            .root()
            .join("lake-raw/sales/year=2024/month=03/part-0.ndjson")
            .is_file()
    );

    // Without the zones in the config, the catalog still knows them.
    let direct = lake.direct();
    let out = ok(&run(&direct, wh, &["--format", "csv", "-c", "SHOW ZONES"]));
    assert!(out.contains("raw,s3://lake-raw/,3"), "{out}");

    let expected = ok(&run(
        &direct,
        wh,
        &[
            "--format",
            "csv",
            "-c",
            "SELECT month, count(*) AS n, round(sum(amount), 2) AS total FROM raw.sales WHERE month >= 5 GROUP BY month ORDER BY month",
        ],
    ));
    assert!(expected.starts_with("month,n,total\n5,"), "{expected}");
    ok(&run(
        &direct,
        wh,
        &[
            "-c",
            "CREATE TABLE curated.fact PARTITIONED BY (month) AS SELECT sale_id, amount, month FROM raw.sales",
            "-c",
            "CREATE TABLE processed.fact PARTITIONED BY (month) AS SELECT sale_id, amount, month FROM raw.sales",
        ],
    ));
    for table in ["curated.fact", "processed.fact"] {
        let out = ok(&run(
            &direct,
            wh,
            &[
                "--format",
                "csv",
                "-c",
                &format!(
                    "SELECT month, count(*) AS n, round(sum(amount), 2) AS total FROM {table} WHERE month >= 5 GROUP BY month ORDER BY month"
                ),
            ],
        ));
        assert_eq!(out, expected, "{table}");
    }
    // DML, time travel, VACUUM.
    let out = ok(&run(
        &direct,
        wh,
        &[
            "--format",
            "csv",
            "-c",
            "DELETE FROM curated.fact WHERE month = 6",
            "-c",
            "UPDATE curated.fact SET amount = 0 WHERE month = 5",
            "-c",
            "SELECT count(*) AS n, sum(amount) AS s FROM curated.fact WHERE month >= 5",
            "-c",
            "SELECT count(*) AS n FROM curated.fact VERSION AS OF 0 WHERE month >= 5",
            "-c",
            "VACUUM curated.fact RETAIN 0 HOURS FORCE",
            "-c",
            "SELECT count(*) AS n FROM curated.fact",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    let n5: u64 = expected
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .and_then(|n| n.parse().ok())
        .expect("month 5 count");
    assert!(lines.contains(&format!("{n5},0.0").as_str()), "{out}");
    assert!(out.ends_with("n\n100\n"), "month 6 deleted: {out}");

    // The footer counts requests; the second run of a query reuses the listing.
    let q = "SELECT count(*) FROM raw.sales WHERE month = 2";
    let out = ok(&run(
        &direct,
        wh,
        &["-c", q, "-c", q, "-c", &format!("EXPLAIN ANALYZE {q}")],
    ));
    let footers: Vec<&str> = out.lines().filter(|l| l.contains(" GET, ")).collect();
    assert!(footers.len() >= 3, "{out}");
    let (first, second) = (footers[0], footers[1]);
    assert!(requests(first, "GET") >= 1, "{first}");
    assert!(requests(first, "LIST") >= 1, "{first}");
    assert!(
        requests(second, "LIST") < requests(first, "LIST"),
        "first: {first}\nsecond: {second}"
    );
    assert!(second.contains("cached listings"), "{second}");
    assert!(out.contains("Storage requests"), "{out}");
}

/// Eight processes registering tables in one S3 warehouse at once: every registration is
/// kept and the catalog's versions are contiguous.
#[test]
fn processes_register_concurrently_on_s3() {
    let lake = Lake::start(&["lake"]);
    lake.land("lake", "retail/products");
    let config = lake.direct();
    let wh = "s3://lake/warehouse";
    ok(&run(&config, wh, &["-c", "SHOW ZONES"]));
    let children: Vec<_> = (0..8)
        .map(|p| {
            let sql: Vec<String> = (0..4)
                .map(|i| {
                    format!(
                        "CREATE EXTERNAL TABLE raw.p{p}_t{i} STORED AS CSV LOCATION 's3://lake/retail/products/'"
                    )
                })
                .collect();
            command(&config, wh, &["--stop-on-error", "-c", &sql.join(";")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn strata")
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().expect("wait");
        ok(&o);
    }
    let out = ok(&run(
        &config,
        wh,
        &[
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'raw'",
        ],
    ));
    assert_eq!(out, "n\n32\n");
    let log = lake.server.root().join("lake/warehouse/_strata/log");
    let mut versions: Vec<u64> = std::fs::read_dir(&log)
        .expect("log folder")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_string_lossy()
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    versions.sort();
    assert_eq!(versions, (0..versions.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        versions.len(),
        33,
        "the warehouse commit and 32 registrations"
    );
}

/// With a proxy failing a share of requests (HTTP 500/503), dropping connections and
/// stalling responses past the request timeout, writes land exactly once and queries return
/// the same answers as without faults.
#[test]
fn faults_are_retried_and_lose_nothing() {
    let lake = Lake::start(&["lake"]);
    let proxy = FaultProxy::start(&lake.server.endpoint(), Faults::none()).expect("proxy");
    let config = lake.config(
        "faulty.toml",
        &proxy.endpoint(),
        SECRET_KEY,
        "max_retries = 10\nretry_timeout_secs = 60\nrequest_timeout_secs = 1\nconnect_timeout_secs = 1",
    );
    let wh = "s3://lake/warehouse";
    // Writes under server errors on every kind of request.
    proxy.set_faults(Faults {
        error_rate: 0.2,
        seed: 7,
        ..Faults::none()
    });
    ok(&run(
        &config,
        wh,
        &[
            "--demo",
            "--stop-on-error",
            "-c",
            "CREATE TABLE curated.fact PARTITIONED BY (month) AS SELECT sale_id, amount, month FROM raw.sales",
            "-c",
            "INSERT INTO curated.fact SELECT sale_id + 1000, amount, month FROM raw.sales WHERE month = 1",
            "-c",
            "CREATE EXTERNAL TABLE raw.products2 STORED AS CSV LOCATION 's3://lake/warehouse/raw/products/'",
        ],
    ));
    let during_writes = proxy.stats();
    assert!(during_writes.errors > 0, "{during_writes:?}");

    // Reads under errors, dropped connections and stalls.
    proxy.set_faults(Faults {
        error_rate: 0.15,
        drop_rate: 0.1,
        stall_rate: 0.05,
        stall: Duration::from_secs(3),
        seed: 11,
        methods: vec!["GET".into(), "HEAD".into()],
        ..Faults::none()
    });
    let q = "SELECT count(*) AS n, round(sum(amount), 2) AS s FROM curated.fact; SELECT count(*) AS n FROM raw.products2";
    let faulty = ok(&run(
        &config,
        wh,
        &["--format", "csv", "--stop-on-error", "-c", q],
    ));
    let stats = proxy.stats();
    assert!(stats.drops > 0 && stats.stalls > 0, "{stats:?}");
    proxy.set_faults(Faults::none());
    let clean = ok(&run(&lake.direct(), wh, &["--format", "csv", "-c", q]));
    assert_eq!(faulty, clean);
    // Exactly once: 120 demo rows and the 20 of month 1 again; 8 products.
    assert!(clean.starts_with("n,s\n140,"), "{clean}");
    assert!(clean.ends_with("n\n8\n"), "{clean}");
}

/// A server that is down, a bucket that does not exist and wrong credentials each end in a
/// clear error, naming the endpoint and bucket, soon; no secret is ever printed.
#[test]
fn storage_errors_are_clear_and_secrets_stay_hidden() {
    let lake = Lake::start(&["lake"]);
    let wh = "s3://lake/warehouse";

    let down = closed_endpoint();
    let config = lake.config(
        "down.toml",
        &down,
        SECRET_KEY,
        "max_retries = 3\nconnect_timeout_secs = 1\nretry_timeout_secs = 10",
    );
    let started = Instant::now();
    let o = run(&config, wh, &["-c", "SELECT 1"]);
    assert!(!o.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let err = stderr(&o);
    assert!(err.contains(down.trim_start_matches("http://")), "{err}");
    assert!(err.contains("'lake'"), "{err}");

    let direct = lake.direct();
    let o = run(
        &direct,
        "s3://no-such-bucket/warehouse",
        &["-c", "SELECT 1"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("bucket 'no-such-bucket' was not found"),
        "{err}"
    );
    assert!(err.contains(&lake.server.endpoint()), "{err}");

    let wrong = "Wrong-Secret-77-do-not-print";
    let config = lake.config("wrong.toml", &lake.server.endpoint(), wrong, "");
    let o = run(&config, wh, &["-c", "SELECT 1"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("refused access to bucket 'lake'"), "{err}");
    assert!(!err.contains(wrong) && !stdout(&o).contains(wrong), "{err}");

    // Nothing a user can print shows the secret: zones, settings, plans, errors, the
    // flag's own help.
    let o = run(
        &direct,
        wh,
        &[
            "--demo",
            "-c",
            "SHOW ZONES",
            "-c",
            "SHOW ALL",
            "-c",
            "DESCRIBE raw.sales",
            "-c",
            "SELECT * FROM information_schema.df_settings",
            "-c",
            "EXPLAIN ANALYZE SELECT count(*) FROM raw.sales",
            "-c",
            "SELECT * FROM raw.missing",
            "-c",
            "CREATE EXTERNAL TABLE raw.x STORED AS JSON LOCATION 's3://other-bucket/x/'",
        ],
    );
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(SECRET_KEY), "{text}");
    }
    assert!(stderr(&o).contains("other-bucket"), "{}", stderr(&o));
    let o = command(
        &direct,
        wh,
        &[
            "--s3-secret-access-key",
            SECRET_KEY,
            "-c",
            "SELECT nosuchcolumn",
        ],
    )
    .output()
    .expect("strata runs");
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(SECRET_KEY), "{text}");
    }
}

/// `tpch gen` and `ssb gen` write through the bucket's store (multipart uploads), in year
/// folders and as Delta, and the tables they register read back from S3.
#[test]
fn benchmark_data_is_generated_into_a_bucket() {
    let lake = Lake::start(&["lake"]);
    let config = lake.direct();
    let wh = "s3://lake/warehouse";
    let out = ok(&run(
        &config,
        wh,
        &["tpch", "gen", "--sf", "0.01", "--partitioned"],
    ));
    assert!(out.contains("processed.lineitem: 60175 rows"), "{out}");
    assert!(
        lake.server
            .root()
            .join("lake/warehouse/processed/lineitem/year=1995/part-0.parquet")
            .is_file()
    );
    let out = ok(&run(
        &config,
        wh,
        &[
            "--format",
            "csv",
            "-c",
            "SELECT (SELECT count(*) FROM processed.lineitem) AS n, \
             (SELECT count(*) FROM processed.orders WHERE year = 1995) AS o95",
        ],
    ));
    assert_eq!(out, "n,o95\n60175,2204\n");
    // SSB's part, supplier and customer are not TPC-H's: they go to a zone of their own.
    let out = ok(&run(
        &config,
        wh,
        &[
            "ssb", "gen", "--sf", "0.01", "--format", "delta", "--zone", "curated",
        ],
    ));
    assert!(out.contains("curated.lineorder: 60175 rows"), "{out}");
    let args = super::bench_query("curated", "ssb/q1.1.sql");
    let out = ok(&run(
        &config,
        wh,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(out, "revenue\n4199635969\n");
}

/// A warehouse prefix copied to another bucket is a warehouse of its own: writes there land
/// there, and the original's objects and answers stay as they were.
#[test]
fn a_warehouse_prefix_copied_to_another_bucket_is_independent() {
    let lake = Lake::start(&["lake", "copy"]);
    let config = lake.direct();
    ok(&run(
        &config,
        "s3://lake/warehouse",
        &[
            "--stop-on-error",
            "-c",
            "CREATE TABLE curated.p STORED AS PARQUET AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(id, name)",
            "-c",
            "CREATE TABLE curated.d STORED AS DELTA AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(id, name)",
        ],
    ));
    let original = lake.server.root().join("lake/warehouse");
    let objects = |dir: &Path| -> Vec<String> {
        let mut out = vec![];
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).expect("inside").display().to_string());
                }
            }
        }
        out.sort();
        out
    };
    let before = objects(&original);
    super::copy_dir(&original, &lake.server.root().join("copy/wh2"));
    ok(&run(
        &config,
        "s3://copy/wh2",
        &[
            "--stop-on-error",
            "-c",
            "INSERT INTO curated.p VALUES (3, 'c')",
            "-c",
            "INSERT INTO curated.d VALUES (3, 'c')",
            "-c",
            "CREATE TABLE curated.fresh STORED AS PARQUET AS SELECT id FROM curated.d",
        ],
    ));
    assert_eq!(
        objects(&original),
        before,
        "the copy wrote into the original"
    );
    let q = "SELECT (SELECT count(*) FROM curated.p) AS p, (SELECT count(*) FROM curated.d) AS d";
    // DuckDB over the same rows: 2 and 2 in the original, 3 and 3 in the copy.
    assert_eq!(
        ok(&run(
            &config,
            "s3://lake/warehouse",
            &["--format", "csv", "-c", q]
        )),
        "p,d\n2,2\n"
    );
    assert_eq!(
        ok(&run(
            &config,
            "s3://copy/wh2",
            &["--format", "csv", "-c", q]
        )),
        "p,d\n3,3\n"
    );
    assert!(lake.server.root().join("copy/wh2/curated/fresh").is_dir());
}

/// Credentials written into the endpoint URL are used, and never printed: an error shows
/// the URL with its password masked.
#[test]
fn credentials_in_the_endpoint_url_are_masked() {
    let lake = Lake::start(&["lake"]);
    let endpoint = lake.server.endpoint().replacen(
        "http://",
        &format!("http://{ACCESS_KEY}:{SECRET_KEY}@"),
        1,
    );
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--warehouse", "s3://nosuchbucket/wh", "-c", "SELECT 1"])
        .env_remove("STRATA_WAREHOUSE")
        .env_remove("STRATA_CONFIG")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .current_dir(lake.dir.path())
        .output()
        .expect("strata runs");
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("nosuchbucket"), "{err}");
    assert!(!err.contains(SECRET_KEY), "{err}");
    // The credentials from the URL were used: the warehouse in an existing bucket opens.
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "--warehouse",
            "s3://lake/wh",
            "--format",
            "csv",
            "-c",
            "SELECT 1 AS one",
        ])
        .env_remove("STRATA_WAREHOUSE")
        .env_remove("STRATA_CONFIG")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .current_dir(lake.dir.path())
        .output()
        .expect("strata runs");
    assert_eq!(ok(&o), "one\n1\n", "{}", stderr(&o));
}

/// A write whose commit was stored but whose response was lost (the proxy forwards the
/// commit's PUT and closes the connection instead of answering) finds its commit and
/// reports the write as done, and the write is there exactly once: for a catalog commit
/// (a Parquet INSERT) and a Delta commit (a Delta INSERT, UPDATE and CREATE TABLE).
#[test]
fn a_commit_whose_response_was_lost_is_found_landed() {
    let lake = Lake::start(&["lake"]);
    let proxy = FaultProxy::start(&lake.server.endpoint(), Faults::none()).expect("proxy");
    let config = lake.config(
        "lossy.toml",
        &proxy.endpoint(),
        SECRET_KEY,
        "max_retries = 5\nretry_timeout_secs = 30\nrequest_timeout_secs = 5\nconnect_timeout_secs = 2",
    );
    let wh = "s3://lake/warehouse";
    let sql = |s: &str| ok(&run(&config, wh, &["--format", "csv", "-c", s]));
    sql("CREATE TABLE processed.p AS SELECT value AS id FROM generate_series(1, 100)");
    sql(
        "CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id FROM generate_series(1, 100)",
    );

    // The catalog commit of a Parquet insert.
    proxy.lose_responses("PUT", "/_strata/log/", 1);
    let out = sql("INSERT INTO processed.p SELECT value AS id FROM generate_series(101, 150)");
    assert_eq!(
        proxy.responses_to_lose(),
        0,
        "the commit's response was lost"
    );
    assert!(out.contains("50"), "{out}");
    // A Delta insert's commit.
    proxy.lose_responses("PUT", "/_delta_log/0000", 1);
    let out = sql("INSERT INTO curated.d SELECT value AS id FROM generate_series(101, 150)");
    assert_eq!(proxy.responses_to_lose(), 0);
    assert!(out.contains("50"), "{out}");
    // A Delta update's commit.
    proxy.lose_responses("PUT", "/_delta_log/0000", 1);
    let out = sql("UPDATE curated.d SET id = id + 1000 WHERE id <= 10");
    assert_eq!(proxy.responses_to_lose(), 0);
    assert!(out.contains("10"), "{out}");
    // A new Delta table's first commit.
    proxy.lose_responses("PUT", "/curated/n/_delta_log/0000", 1);
    sql("CREATE TABLE curated.n STORED AS DELTA AS SELECT value AS id FROM generate_series(1, 70)");
    assert_eq!(proxy.responses_to_lose(), 0);

    // Each write is there exactly once.
    assert_eq!(
        sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM processed.p"),
        "n,d\n150,150\n"
    );
    assert_eq!(
        sql(
            "SELECT count(*) AS n, count(DISTINCT id) AS d, sum(CASE WHEN id > 1000 THEN 1 ELSE 0 END) AS moved FROM curated.d"
        ),
        "n,d,moved\n150,150,10\n"
    );
    assert_eq!(sql("SELECT count(*) AS n FROM curated.n"), "n\n70\n");
}

/// A cluster reads a warehouse in a bucket with each process's own S3 settings: the client
/// its config file (for the catalog and commits), the executors their AWS variables (for the
/// scans). JSON, CSV, Parquet and Delta (time travel too) answer as in one process. No
/// secret travels in a plan, either way between scheduler and client or executors, nor shows
/// in any line a process writes with STRATA_LOG=debug; and an executor with a wrong secret
/// fails the query rather than borrow the client's.
#[test]
fn a_cluster_reads_buckets_with_settings_of_its_own() {
    use super::cluster::{Recorder, start_with};

    let lake = Lake::start(&["lake"]);
    let config = lake.direct();
    let wh = "s3://lake/warehouse";
    ok(&run(
        &config,
        wh,
        &[
            "--demo",
            "-c",
            "CREATE TABLE processed.sales STORED AS PARQUET AS SELECT sale_id, store_id, product_id, quantity, amount, month FROM raw.sales",
        ],
    ));
    ok(&run(
        &config,
        wh,
        &[
            "-c",
            "CREATE TABLE curated.sales PARTITIONED BY (month) AS SELECT sale_id, store_id, amount, month FROM raw.sales WHERE month <= 3",
        ],
    ));
    ok(&run(
        &config,
        wh,
        &[
            "-c",
            "INSERT INTO curated.sales SELECT sale_id, store_id, amount, month FROM raw.sales WHERE month > 3",
        ],
    ));
    let queries = [
        // NDJSON in hive folders, joined to a CSV file.
        "SELECT s.region, count(*) AS n, round(sum(x.amount), 2) AS total FROM raw.sales x JOIN raw.stores s ON x.store_id = s.store_id WHERE x.month >= 2 GROUP BY s.region ORDER BY 1",
        // Parquet, joined to CSV.
        "SELECT p.category, sum(x.quantity) AS q FROM processed.sales x JOIN raw.products p ON x.product_id = p.product_id GROUP BY 1 ORDER BY 1",
        // Delta, at its latest version and at the first.
        "SELECT month, count(*) AS n, round(sum(amount), 2) AS total FROM curated.sales GROUP BY month ORDER BY month",
        "SELECT month, count(*) AS n FROM curated.sales VERSION AS OF 0 GROUP BY month ORDER BY month",
    ];
    let answers: Vec<String> = queries
        .iter()
        .map(|sql| ok(&run(&config, wh, &["--format", "csv", "-c", sql])))
        .collect();
    for (sql, answer) in queries.iter().zip(&answers) {
        assert!(answer.lines().count() > 1, "{sql} gave no rows:\n{answer}");
    }

    // Everything at debug, but for the plans DataFusion prints at each step of planning
    // (they are the plans the recorders see).
    const DEBUG: &str = "debug,datafusion::execution::session_state=info,datafusion::physical_planner=info,datafusion_optimizer=info";
    let debug = [("STRATA_LOG", DEBUG)];
    let (_scheduler, scheduler, scheduler_log) = start_with(
        "scheduler",
        &["scheduler", "--listen", "127.0.0.1:0"],
        &debug,
    );
    // Clients and executors reach the scheduler through recorders of what they send it and
    // what it sends them.
    let to_clients = Recorder::start(scheduler);
    let to_executors = Recorder::start(scheduler);
    let cluster = to_clients.address.to_string();
    let via = to_executors.address.to_string();
    let executor = ["executor", "--scheduler", &via, "--cores", "2"];
    let endpoint = lake.server.endpoint();
    let settings = |secret: &'static str| {
        vec![
            ("STRATA_LOG", DEBUG),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ]
    };
    let on_cluster = |sql: &str| {
        let mut c = command(
            &config,
            wh,
            &["--format", "csv", "--cluster", &cluster, "-c", sql],
        );
        c.env("STRATA_LOG", DEBUG).output().expect("strata runs")
    };
    let mut logs = vec![];

    // An executor whose own secret is wrong cannot read the bucket, whatever the client has.
    const WRONG: &str = "wrong-Secret-Zk27";
    let (mut wrong, _, wrong_log) = start_with("executor", &executor, &settings(WRONG));
    let out = on_cluster(queries[0]);
    assert!(
        !out.status.success(),
        "an executor with a wrong secret read the bucket:\n{}",
        stdout(&out)
    );
    logs.push(stderr(&out));
    let _ = wrong.0.kill();
    let _ = wrong.0.wait();
    logs.extend(wrong_log.try_iter());

    let (_one, _, one_log) = start_with("executor", &executor, &settings(SECRET_KEY));
    let (_two, _, two_log) = start_with("executor", &executor, &settings(SECRET_KEY));
    for (sql, answer) in queries.iter().zip(&answers) {
        let out = on_cluster(sql);
        assert_eq!(&ok(&out), answer, "{sql} on the cluster");
        logs.push(stderr(&out));
    }
    // Plans went through the recorders, and names of files and buckets with them.
    assert!(to_clients.saw("s3://lake"), "no plan went to the scheduler");
    assert!(
        to_executors.saw("lake/warehouse"),
        "no plan went to an executor"
    );
    for recorder in [&to_clients, &to_executors] {
        assert!(!recorder.saw(SECRET_KEY), "a plan carried the secret");
        assert!(!recorder.saw(WRONG), "a plan carried the executor's secret");
    }
    for log in [scheduler_log, one_log, two_log] {
        logs.extend(log.try_iter());
    }
    let lines: Vec<&str> = logs.iter().flat_map(|l| l.lines()).collect();
    assert!(
        lines.len() > 20,
        "the processes logged little at debug:\n{}",
        lines.join("\n")
    );
    for secret in [SECRET_KEY, WRONG] {
        let leaked: Vec<&&str> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaked.is_empty(), "a log line holds a secret: {leaked:?}");
    }
}
