//! Runs the SQL behaviour tests in `tests/slt/*.slt`, each file in several modes: on a fresh
//! warehouse in a temporary folder; on a fresh warehouse in a bucket of a real S3 server on
//! loopback (strata-testkit's), whose raw zone holds a copy of `testdata/retail/`; and on a
//! local warehouse with every strata optimizer rule switched off
//! (`strata.optimizer.<rule> = false`), whose answers must be the same; and through the
//! Flight SQL server (`strata serve`'s service, on 127.0.0.1:0) with arrow-flight's Flight SQL
//! client, whose result sets and errors must be the CLI's. Each client has its own session
//! on the server, so USE and SET go through Flight SQL like every other statement. Files
//! whose first line is `# cluster: queries` also run with their queries on a cluster: a
//! scheduler and two executors (strata-cluster's, on 127.0.0.1:0, in this process on a
//! runtime of their own) that the harness starts once, waiting for each to report its
//! address; their answers and errors must be the local ones.
//!
//! In statements, `$TESTDATA` is the repository's `testdata/` folder (or its copy in the
//! bucket) and `$WAREHOUSE` the warehouse's URL. `cargo test -p strata-engine --test sqllogic
//! -- --complete` rewrites the expected results from what strata returns on the local
//! warehouse; a file name given as an argument runs only the files whose names contain it,
//! and `--local`, `--s3`, `--rules-off`, `--flight` or `--cluster` runs one mode only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use strata_engine::{Output, Session};
use tonic::transport::{Channel, Endpoint};

struct StrataDb {
    session: Arc<Session>,
    testdata: String,
    warehouse: String,
    /// In the Flight SQL mode, the client statements go through.
    flight: Option<FlightSqlServiceClient<Channel>>,
}

/// Where a file's warehouse lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    Local,
    S3,
    /// Local, with every strata optimizer rule switched off.
    RulesOff,
    /// Local, through the Flight SQL server.
    Flight,
    /// Local, with queries run on a scheduler and two executors on loopback: the files
    /// whose first line is `# cluster: queries`.
    Cluster,
}

/// The first line of the files whose queries the cluster mode runs.
const CLUSTER_MARK: &str = "# cluster: queries";

const ACCESS_KEY: &str = "slt-access";
const SECRET_KEY: &str = "slt-secret-key";

#[derive(Debug)]
struct TestError(String);

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestError {}

#[async_trait::async_trait]
impl AsyncDB for StrataDb {
    type Error = TestError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, TestError> {
        let sql = sql
            .replace("$TESTDATA", &self.testdata)
            .replace("$WAREHOUSE", &self.warehouse);
        let (schema, batches) = match &mut self.flight {
            Some(client) => {
                let (schema, batches) = through_flight(client, &sql).await?;
                // A statement with no result set answers with an empty schema.
                if schema.fields().is_empty() {
                    return Ok(DBOutput::StatementComplete(0));
                }
                (schema, batches)
            }
            _ => {
                let output = self
                    .session
                    .execute(&sql)
                    .await
                    .map_err(|e| TestError(e.to_string()))?;
                match output {
                    Output::Done(_) => return Ok(DBOutput::StatementComplete(0)),
                    Output::Rows(stream) => {
                        let schema = stream.schema();
                        let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream)
                            .await
                            .map_err(|e| TestError(strata_engine::Error::from(e).to_string()))?;
                        (schema, batches)
                    }
                }
            }
        };
        let types = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t if t.is_integer() => DefaultColumnType::Integer,
                t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
                    DefaultColumnType::FloatingPoint
                }
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    DefaultColumnType::Text
                }
                _ => DefaultColumnType::Any,
            })
            .collect();
        // Paths differ per machine and run: print them as the variables tests use.
        let rows = rows_of(&batches)?
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|cell| {
                        cell.replace(&format!("file://{}", self.warehouse), "$WAREHOUSE")
                            .replace(&self.warehouse, "$WAREHOUSE")
                            .replace(&format!("file://{}", self.testdata), "$TESTDATA")
                            .replace(&self.testdata, "$TESTDATA")
                    })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "strata"
    }
}

/// Runs a statement through the Flight SQL server: GetFlightInfo, then DoGet of each
/// endpoint. Errors come back with the server's message.
async fn through_flight(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>), TestError> {
    let error = |e: FlightError| match e {
        FlightError::Tonic(status) => TestError(status.message().to_string()),
        other => TestError(other.to_string()),
    };
    let info = client.execute(sql.to_string(), None).await.map_err(error)?;
    // A statement that is not a query announces no schema: it is the stream's.
    let mut schema = if info.schema.is_empty() {
        None
    } else {
        Some(Arc::new(
            info.clone()
                .try_decode_schema()
                .map_err(|e| TestError(e.to_string()))?,
        ))
    };
    let mut batches = vec![];
    for endpoint in &info.endpoint {
        let Some(ticket) = endpoint.ticket.clone() else {
            continue;
        };
        let mut stream = client.do_get(ticket).await.map_err(error)?;
        while let Some(batch) = futures::TryStreamExt::try_next(&mut stream)
            .await
            .map_err(error)?
        {
            batches.push(batch);
        }
        if schema.is_none() {
            schema = stream.schema().cloned();
        }
    }
    let schema = schema.unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
    Ok((schema, batches))
}

fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, TestError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = vec![];
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TestError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| {
                        let s = f.value(row).to_string();
                        if s.is_empty() {
                            "(empty)".to_string()
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

async fn run_file(
    path: &Path,
    complete: bool,
    storage: Storage,
    server: Option<&strata_testkit::S3Server>,
    cluster: Option<&TestCluster>,
    n: usize,
) -> Result<(), String> {
    let testdata: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let testdata = testdata.canonicalize().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (session, testdata, warehouse) = match (storage, server) {
        (Storage::S3 | Storage::Cluster, Some(server)) => {
            // The bucket is a folder of the server's root: copying files in is landing them.
            let bucket = format!("slt-{n}");
            server.create_bucket(&bucket).map_err(|e| e.to_string())?;
            let bucket_dir = server.root().join(&bucket);
            copy_dir(&testdata, &bucket_dir.join("testdata")).map_err(|e| e.to_string())?;
            copy_dir(
                &testdata.join("retail"),
                &bucket_dir.join("warehouse").join("raw"),
            )
            .map_err(|e| e.to_string())?;
            let config = strata_engine::catalog::Config {
                s3: s3_options(server),
                ..Default::default()
            };
            let warehouse = format!("s3://{bucket}/warehouse");
            let mut session = Session::open_with(&warehouse, &config)
                .await
                .map_err(|e| e.to_string())?;
            // On the cluster, the executors read the bucket with S3 settings of their own.
            if let Some(cluster) = cluster.filter(|_| storage == Storage::Cluster) {
                let remote = strata_cluster::Cluster::new(&cluster.scheduler.to_string())
                    .map_err(|e| e.to_string())?;
                session = session
                    .with_remote(Arc::new(remote))
                    .map_err(|e| e.to_string())?;
            }
            (session, format!("s3://{bucket}/testdata"), warehouse)
        }
        _ => {
            let warehouse = dir.path().join("warehouse");
            copy_dir(&testdata.join("retail"), &warehouse.join("raw"))
                .map_err(|e| e.to_string())?;
            let session = Session::open(&warehouse.to_string_lossy())
                .await
                .map_err(|e| e.to_string())?;
            (
                session,
                testdata.to_string_lossy().to_string(),
                warehouse.to_string_lossy().to_string(),
            )
        }
    };
    if storage == Storage::RulesOff {
        for rule in strata_engine::optimizer::rule_names() {
            session
                .sql(&format!("SET strata.optimizer.{rule} = false"))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let session = Arc::new(session);
    let server = match storage {
        // Statements name `$TESTDATA`, outside the warehouse: the server allows it, as an
        // operator allows a landing folder.
        Storage::Flight => {
            Some(FlightServer::start(Arc::clone(&session), vec![testdata.clone()]).await?)
        }
        _ => None,
    };
    let endpoint = server.as_ref().map(|s| format!("http://{}", s.addr));
    let mut runner = Runner::new(move || {
        let session = Arc::clone(&session);
        let testdata = testdata.clone();
        let warehouse = warehouse.clone();
        let endpoint = endpoint.clone();
        async move {
            let flight = match endpoint {
                Some(endpoint) => {
                    let channel = Endpoint::from_shared(endpoint)
                        .map_err(|e| TestError(e.to_string()))?
                        .connect()
                        .await
                        .map_err(|e| TestError(e.to_string()))?;
                    Some(FlightSqlServiceClient::new(channel))
                }
                None => None,
            };
            Ok::<_, TestError>(StrataDb {
                session,
                testdata,
                warehouse,
                flight,
            })
        }
    });
    match storage {
        // Records that test what a rule adds say `skipif rules_off`.
        Storage::RulesOff => runner.add_label("rules_off"),
        // Records of what differs on a cluster say `skipif cluster` or `onlyif cluster`.
        Storage::Cluster => runner.add_label("cluster"),
        _ => {}
    }
    let outcome = if complete {
        runner
            .update_test_file(
                path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(path)
            .await
            .map_err(|e| e.display(true).to_string())
    };
    if let Some(server) = server {
        server.stop().await?;
    }
    outcome
}

/// The Flight SQL server on a session, listening on 127.0.0.1:0. The listener is bound
/// before the server starts, so clients connect at once.
struct FlightServer {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<strata_server::Result<()>>,
}

impl FlightServer {
    async fn start(session: Arc<Session>, allow_paths: Vec<String>) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let options = strata_server::Options {
            allow_paths,
            ..Default::default()
        };
        let server = strata_server::Server::new(session, options).map_err(|e| e.to_string())?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, task })
    }

    async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// Settings that reach the test S3 server.
fn s3_options(server: &strata_testkit::S3Server) -> strata_engine::catalog::S3Options {
    strata_engine::catalog::S3Options {
        endpoint: Some(server.endpoint()),
        allow_http: Some(true),
        region: Some("us-east-1".into()),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(strata_engine::catalog::Secret::new(SECRET_KEY)),
        ..Default::default()
    }
}

/// A scheduler and two executors on loopback, in this process on a runtime of their own,
/// for the cluster mode. Each is waited for through the address it reports once it
/// listens (the executors once the scheduler has registered them).
struct TestCluster {
    scheduler: std::net::SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl TestCluster {
    async fn start(s3: strata_engine::catalog::S3Options) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("test-cluster")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let listen: std::net::SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        let (ready, address) = tokio::sync::oneshot::channel();
        let scheduler = runtime.spawn(strata_cluster::scheduler::run(
            listen,
            s3.clone(),
            move |a| {
                let _ = ready.send(a);
            },
        ));
        let scheduler_address = match address.await {
            Ok(a) => a,
            Err(_) => {
                return Err(format!(
                    "the scheduler did not start: {:?}",
                    scheduler.await
                ));
            }
        };
        for _ in 0..2 {
            let options = strata_cluster::executor::Options {
                scheduler: scheduler_address.to_string(),
                listen,
                cores: Some(2),
                tasks: None,
                s3: s3.clone(),
                memory_limit: None,
            };
            let (ready, address) = tokio::sync::oneshot::channel();
            let executor = runtime.spawn(strata_cluster::executor::run(options, move |a| {
                let _ = ready.send(a);
            }));
            if address.await.is_err() {
                return Err(format!("an executor did not start: {:?}", executor.await));
            }
        }
        Ok(Self {
            scheduler: scheduler_address,
            runtime,
        })
    }

    /// Stops the scheduler and the executors, without waiting for their tasks.
    fn stop(self) {
        self.runtime.shutdown_background();
    }
}

/// One write of an audit case: the statement, its check, the count a second session must
/// see while the check runs and after it, and whether the check fails.
struct AuditStep {
    write: &'static str,
    check: &'static str,
    during: &'static str,
    after: &'static str,
    fails: bool,
}

/// Write-audit-publish, seen from a second session: while a pipeline's checks run, the other
/// session still reads the table as it was; once they pass it reads the new rows; after a
/// failed check it reads the old rows again, and no staged file is left behind.
async fn audit_hides_the_write_until_its_checks_pass(
    table: &str,
    setup: &str,
    steps: &[AuditStep],
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let location = dir.path().join("warehouse").to_string_lossy().to_string();
    let writer = Session::open(&location).await.map_err(|e| e.to_string())?;
    let reader = Arc::new(Session::open(&location).await.map_err(|e| e.to_string())?);
    writer.sql(setup).await.map_err(|e| e.to_string())?;
    let count = |session: Arc<Session>| async move {
        let batches = session
            .sql(&format!("SELECT count(*) AS n FROM {table}"))
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(rows_of(&batches).map_err(|e| e.0)?[0][0].clone())
    };
    for step in steps {
        let pipeline = format!(
            "{};\nCHECK 'rows' EXPECT (SELECT count(*) FROM {table}) {};",
            step.write, step.check
        );
        let mut seen_during_check = None;
        let result = strata_engine::pipeline::run(&writer, &pipeline, |event| {
            if let strata_engine::pipeline::Event::Started { sql, .. } = event
                && sql.starts_with("CHECK")
            {
                let reader = Arc::clone(&reader);
                seen_during_check = Some(tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(count(reader))
                }));
            }
        })
        .await;
        let label = format!("{} then CHECK {}", step.write, step.check);
        if seen_during_check != Some(Ok(step.during.to_string())) {
            return Err(format!(
                "{label}: while checking, the reader saw {seen_during_check:?}, not {}",
                step.during
            ));
        }
        let after = count(Arc::clone(&reader)).await?;
        if after != step.after {
            return Err(format!(
                "{label}: afterwards the reader saw {after}, not {}",
                step.after
            ));
        }
        if step.fails != result.is_err() {
            return Err(format!("{label}: the pipeline gave {result:?}"));
        }
    }
    let staged: Vec<String> = walk(dir.path())
        .into_iter()
        .filter(|p| p.contains("_strata_staging"))
        .collect();
    if !staged.is_empty() {
        return Err(format!("staged files were left behind: {staged:?}"));
    }
    Ok(())
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        out.push(path.to_string_lossy().to_string());
        if path.is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

/// The audit cases: a Delta table, and INSERT INTO and INSERT OVERWRITE … PARTITION into a
/// hive-partitioned Parquet table (staged until the checks pass).
async fn audit_cases() -> Vec<(&'static str, Result<(), String>)> {
    let delta = audit_hides_the_write_until_its_checks_pass(
        "curated.t",
        "CREATE TABLE curated.t AS SELECT * FROM (VALUES (1), (2)) AS v(k)",
        &[
            AuditStep {
                write: "INSERT INTO curated.t VALUES (3), (4), (5)",
                check: "= 5",
                during: "2",
                after: "5",
                fails: false,
            },
            AuditStep {
                write: "INSERT INTO curated.t VALUES (3), (4), (5)",
                check: "= 99",
                during: "5",
                after: "5",
                fails: true,
            },
        ],
    )
    .await;
    let parquet = audit_hides_the_write_until_its_checks_pass(
        "processed.p",
        "CREATE TABLE processed.p STORED AS PARQUET PARTITIONED BY (m) AS SELECT * FROM (VALUES (1, 1), (2, 2)) AS v(k, m)",
        &[
            AuditStep {
                write: "INSERT INTO processed.p VALUES (3, 1), (4, 3), (5, 3)",
                check: "= 5",
                during: "2",
                after: "5",
                fails: false,
            },
            AuditStep {
                write: "INSERT INTO processed.p VALUES (6, 1)",
                check: "= 99",
                during: "5",
                after: "5",
                fails: true,
            },
            // Replaces m = 1 (k 1 and 3) with one row: 4 rows, checked before readers see it.
            AuditStep {
                write: "INSERT OVERWRITE processed.p PARTITION (m) VALUES (9, 1)",
                check: "= 4",
                during: "5",
                after: "4",
                fails: false,
            },
            AuditStep {
                write: "INSERT OVERWRITE processed.p PARTITION (m) VALUES (10, 3)",
                check: "BETWEEN 100 AND 200",
                during: "4",
                after: "4",
                fails: true,
            },
            AuditStep {
                write: "INSERT OVERWRITE processed.p SELECT 7 AS a, 7 AS b",
                check: "= 1",
                during: "4",
                after: "1",
                fails: false,
            },
            // Replacing the table (and its schema) is staged the same way.
            AuditStep {
                write: "CREATE OR REPLACE TABLE processed.p STORED AS PARQUET PARTITIONED BY (m) AS SELECT * FROM (VALUES (1, 1), (2, 2), (3, 3)) AS v(k, m)",
                check: "= 3",
                during: "1",
                after: "3",
                fails: false,
            },
            AuditStep {
                write: "CREATE OR REPLACE TABLE processed.p AS SELECT 1 AS k, 'x' AS other",
                check: "= 99",
                during: "3",
                after: "3",
                fails: true,
            },
        ],
    )
    .await;
    vec![("delta", delta), ("parquet", parquet)]
}

/// Whether a file's queries run in the cluster mode: its first line says so.
fn runs_on_cluster(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .next()
            .is_some_and(|l| l.trim() == CLUSTER_MARK)
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|f| p.to_string_lossy().contains(f.as_str()))
        })
        .collect();
    files.sort();
    let storages: Vec<Storage> = if complete || args.iter().any(|a| a == "--local") {
        vec![Storage::Local]
    } else if args.iter().any(|a| a == "--s3") {
        vec![Storage::S3]
    } else if args.iter().any(|a| a == "--rules-off") {
        vec![Storage::RulesOff]
    } else if args.iter().any(|a| a == "--flight") {
        vec![Storage::Flight]
    } else if args.iter().any(|a| a == "--cluster") {
        vec![Storage::Cluster]
    } else {
        vec![
            Storage::Local,
            Storage::S3,
            Storage::RulesOff,
            Storage::Flight,
            Storage::Cluster,
        ]
    };
    let root = tempfile::tempdir().expect("temporary folder");
    let server = if storages.contains(&Storage::S3) || storages.contains(&Storage::Cluster) {
        Some(
            strata_testkit::S3Server::start(root.path(), ACCESS_KEY, SECRET_KEY)
                .expect("S3 server starts"),
        )
    } else {
        None
    };
    let cluster = if storages.contains(&Storage::Cluster) {
        Some(
            TestCluster::start(s3_options(server.as_ref().expect("the S3 server")))
                .await
                .expect("a scheduler and two executors start"),
        )
    } else {
        None
    };
    let (mut passed, mut failed) = (0, 0);
    let mut n = 0;
    for storage in storages {
        for file in &files {
            if storage == Storage::Cluster && !runs_on_cluster(file) {
                continue;
            }
            n += 1;
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let label = match storage {
                Storage::Local => "local",
                Storage::S3 => "s3",
                Storage::RulesOff => "rules off",
                Storage::Flight => "flight sql",
                Storage::Cluster => "cluster",
            };
            match run_file(
                file,
                complete,
                storage,
                server.as_ref(),
                cluster.as_ref(),
                n,
            )
            .await
            {
                Ok(()) => {
                    passed += 1;
                    println!("test {name} [{label}] ... ok");
                }
                Err(e) => {
                    failed += 1;
                    println!("test {name} [{label}] ... FAILED\n{e}");
                }
            }
        }
    }
    // Behaviour that needs two sessions at once, beside the SQL files.
    if filters.is_empty() && !complete {
        for (label, outcome) in audit_cases().await {
            let name = format!("audit_hides_the_write_until_its_checks_pass [{label}]");
            match outcome {
                Ok(()) => {
                    passed += 1;
                    println!("test {name} ... ok");
                }
                Err(e) => {
                    failed += 1;
                    println!("test {name} ... FAILED\n{e}");
                }
            }
        }
    }
    if let Some(cluster) = cluster {
        cluster.stop();
    }
    println!("\nsqllogictest: {passed} passed, {failed} failed");
    if failed > 0 || files.is_empty() {
        std::process::exit(1);
    }
}
