//! `strata scheduler`, `strata executor` and `--cluster`: a scheduler and two executors on
//! loopback, started as processes of the built binary, answer the TPC-H queries and reads
//! of Delta tables (time travel too) as a process on its own does; without them, a query
//! fails naming the scheduler. Faults: an executor killed while it runs a query's tasks
//! leaves a right answer or a clear error, never a wrong or partial one; a scheduler that
//! stops fails its clients at once, naming its address.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{ok, stderr, stdout, strata};

/// A child process killed when the test ends, pass or fail.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `strata ARGS` and waits for its first line, "strata WHAT: listening on ADDR".
fn start(what: &str, args: &[&str]) -> (Running, SocketAddr) {
    let (running, address, _) = start_in(what, args);
    (running, address)
}

/// [`start`], with the lines the process prints after its first (an executor's tasks
/// done, and what it writes to standard error), read as they come so that its output never
/// fills.
fn start_in(what: &str, args: &[&str]) -> (Running, SocketAddr, mpsc::Receiver<String>) {
    start_with(what, args, &[])
}

/// [`start_in`] with these environment variables set (and no AWS variable of the test's).
pub(crate) fn start_with(
    what: &str,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (Running, SocketAddr, mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .args(args)
        .env_remove("STRATA_CLUSTER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key == "STRATA_LOG" {
            command.env_remove(key);
        }
    }
    command.envs(vars.iter().copied());
    let mut child = command.spawn().expect("spawn strata");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let running = Running(child);
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read the address line");
    let prefix = format!("strata {what}: listening on ");
    let address = line
        .trim()
        .strip_prefix(prefix.as_str())
        .unwrap_or_else(|| panic!("unexpected first line of the {what}: {line:?}"))
        .parse()
        .expect("an address");
    let (lines, rest) = mpsc::channel();
    let errors = lines.clone();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            // Read on whether anyone listens.
            let _ = lines.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = errors.send(line);
        }
    });
    (running, address, rest)
}

/// A TCP proxy on loopback that keeps every byte sent either way: what travels between a
/// client and a scheduler, or an executor and its scheduler (plans, as protobuf, in the
/// clear).
pub(crate) struct Recorder {
    pub(crate) address: SocketAddr,
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Recorder {
    pub(crate) fn start(upstream: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        let address = listener.local_addr().expect("its address");
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = bytes.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (Ok(server), Ok(client)),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    let kept = kept.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buffer = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                            if let Ok(mut all) = kept.lock() {
                                all.extend_from_slice(&buffer[..n]);
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Self { address, bytes }
    }

    /// Whether `needle` went through, either way.
    pub(crate) fn saw(&self, needle: &str) -> bool {
        let all = self.bytes.lock().expect("the recorded bytes");
        all.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

fn query(warehouse: &Path, cluster: Option<&str>, file: &Path) -> std::process::Output {
    let mut args = vec!["--zone", "processed", "--format", "csv"];
    if let Some(cluster) = cluster {
        args.extend(["--cluster", cluster]);
    }
    let file = file.to_str().expect("a path");
    args.extend(["-f", file]);
    strata(warehouse, &args)
}

/// The 22 TPC-H queries and the 13 SSB queries give the same rows through a scheduler and
/// two executors as in one process (whose answers the benchmark tests check against DuckDB).
#[test]
fn tpch_on_a_cluster_answers_as_in_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = dir.path().join("wh");
    ok(&strata(&warehouse, &["tpch", "gen", "--sf", "0.01"]));

    let (_scheduler, address) = start("scheduler", &["scheduler", "--listen", "127.0.0.1:0"]);
    assert!(address.ip().is_loopback());
    assert_ne!(address.port(), 0);
    let cluster = address.to_string();

    // A scheduler without executors refuses the query, naming itself.
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/tpch");
    let q06 = queries.join("q06.sql");
    let out = query(&warehouse, Some(&cluster), &q06);
    assert!(!out.status.success(), "a query ran without executors");
    let err = stderr(&out);
    assert!(
        err.contains(&cluster) && err.contains("no executor"),
        "the error names the scheduler: {err}"
    );

    let executor = ["executor", "--scheduler", &cluster, "--cores", "2"];
    let (_one, first) = start("executor", &executor);
    let (_two, second) = start("executor", &executor);
    assert_ne!(first, second);

    let mut differ = vec![];
    for n in 1..=22 {
        let file = queries.join(format!("q{n:02}.sql"));
        let here = ok(&query(&warehouse, None, &file));
        let there = ok(&query(&warehouse, Some(&cluster), &file));
        assert!(here.lines().count() > 1, "q{n} gave no rows here:\n{here}");
        if here != there {
            differ.push(format!(
                "q{n:02}:\nin process:\n{here}\non the cluster:\n{there}"
            ));
        }
    }
    // The 13 SSB queries, on lineorder in year= folders.
    let ssb = dir.path().join("ssb");
    ok(&strata(&ssb, &["ssb", "gen", "--sf", "0.01"]));
    let mut files: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/ssb"))
            .expect("benches/ssb")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
    files.sort();
    assert_eq!(files.len(), 13, "{files:?}");
    for file in &files {
        let here = ok(&query(&ssb, None, file));
        let there = ok(&query(&ssb, Some(&cluster), file));
        if here != there {
            differ.push(format!(
                "{}:\nin process:\n{here}\non the cluster:\n{there}",
                file.display()
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));

    // Delta tables are read on the cluster as Parquet, at their latest version and at an
    // older one.
    ok(&strata(
        &warehouse,
        &[
            "-c",
            "CREATE TABLE curated.items PARTITIONED BY (l_returnflag) AS SELECT l_orderkey, l_quantity, l_returnflag, l_shipdate FROM processed.lineitem WHERE l_orderkey < 20000",
        ],
    ));
    ok(&strata(
        &warehouse,
        &[
            "-c",
            "INSERT INTO curated.items SELECT l_orderkey, l_quantity, l_returnflag, l_shipdate FROM processed.lineitem WHERE l_orderkey >= 20000",
        ],
    ));
    for sql in [
        "SELECT l_returnflag, count(*), sum(l_quantity) FROM curated.items GROUP BY 1 ORDER BY 1",
        "SELECT l_returnflag, count(*), sum(l_quantity) FROM curated.items VERSION AS OF 0 WHERE l_shipdate >= DATE '1995-01-01' GROUP BY 1 ORDER BY 1",
    ] {
        let here = ok(&strata(&warehouse, &["--format", "csv", "-c", sql]));
        let there = ok(&strata(
            &warehouse,
            &["--cluster", &cluster, "--format", "csv", "-c", sql],
        ));
        assert!(here.lines().count() > 2, "{sql} gave no rows here:\n{here}");
        assert_eq!(here, there, "{sql}");
    }
    let footer = ok(&strata(
        &warehouse,
        &[
            "--cluster",
            &cluster,
            "-c",
            "SELECT sum(l_quantity) FROM curated.items VERSION AS OF 0",
        ],
    ));
    assert!(footer.contains("ran on the cluster at"), "{footer}");

    // Rows travel in batches past gRPC's usual limits (16 MiB): 20 strings of 1 MiB.
    ok(&strata(
        &warehouse,
        &[
            "-c",
            "CREATE TABLE processed.wide STORED AS PARQUET AS SELECT v, repeat('x', 1048576) AS s FROM generate_series(1, 20) AS t(v)",
        ],
    ));
    let sql = "SELECT v, length(s) AS n, s FROM processed.wide";
    let there = ok(&strata(
        &warehouse,
        &["--cluster", &cluster, "--format", "csv", "-c", sql],
    ));
    assert_eq!(there.lines().count(), 21, "a header and 20 rows");
    assert!(there.len() > 20 << 20, "{} bytes", there.len());

    // The footer says where the query ran.
    let out = ok(&strata(
        &warehouse,
        &[
            "--zone",
            "processed",
            "--cluster",
            &cluster,
            "-c",
            "SELECT n_name FROM nation WHERE n_nationkey = 3",
        ],
    ));
    assert!(
        out.contains(&format!("ran on the cluster at {cluster} (2 executors)")),
        "{out}"
    );
}

/// With no scheduler at the address, a query fails at once, naming the address.
#[test]
fn a_query_without_a_scheduler_names_its_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = dir.path().join("wh");
    ok(&strata(
        &warehouse,
        &["tpch", "gen", "--sf", "0.01", "--zone", "processed"],
    ));
    // A port nothing listens on: bound, then released.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let out = strata(
        &warehouse,
        &[
            "--cluster",
            &free,
            "-c",
            "SELECT n_name FROM processed.nation WHERE n_nationkey = 3",
        ],
    );
    assert!(!out.status.success(), "the query ran without a scheduler");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the scheduler at {free}")),
        "{err}"
    );
}

/// Waits until the executor printing `lines` reports a task done (it has written the
/// shuffle files of one); false if none is within five minutes (tests run side by side on
/// few cores).
fn executor_got_work(lines: &mpsc::Receiver<String>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(300);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with("strata executor: task ") && line.ends_with(" done") => {
                return true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn spawn_query(warehouse: &Path, cluster: &str, file: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--warehouse")
        .arg(warehouse)
        .args([
            "--zone",
            "processed",
            "--format",
            "csv",
            "--cluster",
            cluster,
            "-f",
        ])
        .arg(file)
        .env_remove("STRATA_WAREHOUSE")
        .env_remove("STRATA_CLUSTER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a query")
}

/// An executor killed while it runs a query's tasks: Ballista runs them again on the
/// executor that joins after it, and the answer is the one a process on its own gives; or
/// the query fails with an error naming the cluster and prints no rows. Never a wrong or
/// partial answer.
#[test]
fn an_executor_killed_during_a_query_leaves_no_wrong_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = dir.path().join("wh");
    ok(&strata(&warehouse, &["tpch", "gen", "--sf", "0.1"]));
    let q09 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/tpch/q09.sql");
    let here = ok(&query(&warehouse, None, &q09));
    assert!(here.lines().count() > 100, "q09 gave few rows:\n{here}");

    let (_scheduler, address) = start("scheduler", &["scheduler", "--listen", "127.0.0.1:0"]);
    let cluster = address.to_string();
    let executor = ["executor", "--scheduler", &cluster, "--cores", "2"];
    let (mut victim, _, victim_tasks) = start_in("executor", &executor);

    // The only executor takes the query's first tasks; it is killed as soon as it has
    // written some, and another one joins.
    let running = spawn_query(&warehouse, &cluster, &q09);
    assert!(
        executor_got_work(&victim_tasks),
        "the executor got no task of the query"
    );
    victim.0.kill().expect("kill the executor");
    let _ = victim.0.wait();
    let (_other, _) = start("executor", &executor);

    let out = running.wait_with_output().expect("the query ends");
    if out.status.success() {
        assert_eq!(
            stdout(&out),
            here,
            "the cluster's answer after losing an executor"
        );
    } else {
        let err = stderr(&out);
        assert!(err.contains(&cluster), "the error names the cluster: {err}");
        assert!(
            stdout(&out).lines().count() <= 1,
            "a failed query printed rows:\n{}",
            stdout(&out)
        );
    }
}

/// A scheduler that stops while a query runs fails the query at once, with an error naming
/// it; the next query fails at once too.
#[test]
fn a_stopped_scheduler_fails_its_clients_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = dir.path().join("wh");
    ok(&strata(&warehouse, &["tpch", "gen", "--sf", "0.1"]));
    let q09 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/tpch/q09.sql");

    let (mut scheduler, address) = start("scheduler", &["scheduler", "--listen", "127.0.0.1:0"]);
    let cluster = address.to_string();
    let (_executor, _, tasks) = start_in(
        "executor",
        &["executor", "--scheduler", &cluster, "--cores", "2"],
    );

    let running = spawn_query(&warehouse, &cluster, &q09);
    assert!(
        executor_got_work(&tasks),
        "the executor got no task of the query"
    );
    scheduler.0.kill().expect("kill the scheduler");
    let stopped = Instant::now();
    let _ = scheduler.0.wait();
    let out = running.wait_with_output().expect("the query ends");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "the query took {:?} to fail",
        stopped.elapsed()
    );
    assert!(
        !out.status.success(),
        "the query succeeded without its scheduler"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "on the cluster at {cluster}: a connection broke while the query ran"
        )),
        "{err}"
    );
    assert!(!err.contains("Status {"), "a raw gRPC status: {err}");

    let started = Instant::now();
    let out = query(&warehouse, Some(&cluster), &q09);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the scheduler at {cluster}")),
        "{err}"
    );
}
