//! `strata serve` as a process: it prints the address it listens on (port 0 gives the real
//! one), serves there, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::{stderr, strata};

/// The printed address is where the server listens; SIGTERM stops it with exit code 0.
#[test]
fn serve_prints_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--warehouse")
        .arg(dir.path().join("wh"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("STRATA_WAREHOUSE")
        .env_remove("STRATA_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strata serve");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address line");
    let address: SocketAddr = line
        .trim()
        .strip_prefix("strata serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    assert!(address.ip().is_loopback());
    assert_ne!(address.port(), 0);
    std::net::TcpStream::connect(address).expect("the server listens where it says");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("wait");
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("shutting down"), "{err}");
}

/// The defaults: loopback, port 50051; a certificate needs its key.
#[test]
fn serve_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = strata(dir.path(), &["serve", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("127.0.0.1:50051"), "{text}");
    assert!(text.contains("--allow-path <PREFIX>"), "{text}");
    let o = strata(dir.path(), &["serve", "--tls-cert", "server.pem"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--tls-key"), "{}", stderr(&o));
}
