//! `strata scheduler`, `strata executor` and `--cluster`: a scheduler and two executors on
//! loopback, started as processes of the built binary, answer the TPC-H queries as a
//! process on its own does; without them, a query fails naming the scheduler.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::{ok, stderr, strata};

/// A child process killed when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `strata ARGS` and waits for its first line, "strata WHAT: listening on ADDR".
fn start(what: &str, args: &[&str]) -> (Running, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_CLUSTER")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn strata");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address line");
    let prefix = format!("strata {what}: listening on ");
    let address = line
        .trim()
        .strip_prefix(prefix.as_str())
        .unwrap_or_else(|| panic!("unexpected first line of the {what}: {line:?}"))
        .parse()
        .expect("an address");
    (running, address)
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

/// The 22 TPC-H queries give the same rows through a scheduler and two executors as in
/// one process (whose answers the TPC-H tests check against DuckDB).
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
    assert!(differ.is_empty(), "{}", differ.join("\n"));

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
