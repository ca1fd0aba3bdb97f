//! `strata-s3-server`: serve a folder over the S3 API on 127.0.0.1 (benchmarks, manual checks).
//!
//! ```text
//! strata-s3-server --root DIR [--port N] [--access-key K --secret-key S] [--bucket NAME ...]
//! ```
//!
//! Creates the listed buckets (folders under `DIR`), starts the server, prints exactly one line
//! `listening on http://127.0.0.1:PORT` to stdout and serves until interrupted (Ctrl-C) or
//! killed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use strata_testkit::S3Server;

/// Serve a folder over the S3 API on 127.0.0.1: every folder directly under the root is a
/// bucket. Requests must be signed (SigV4) and use path-style addressing.
#[derive(Debug, Parser)]
#[command(name = "strata-s3-server", version)]
struct Args {
    /// Folder to serve (created if missing).
    #[arg(long, value_name = "DIR")]
    root: PathBuf,

    /// Port to listen on; 0 lets the OS choose.
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Access key id clients must sign with.
    #[arg(long, default_value = "strata")]
    access_key: String,

    /// Secret access key clients must sign with.
    #[arg(long, default_value = "strata-secret")]
    secret_key: String,

    /// Bucket to create before serving (repeatable).
    #[arg(long = "bucket", value_name = "NAME")]
    buckets: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("strata-s3-server: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if !args.root.exists() {
        std::fs::create_dir_all(&args.root)
            .map_err(|e| format!("cannot create root {}: {e}", args.root.display()))?;
    }
    let server = S3Server::start_on_port(&args.root, &args.access_key, &args.secret_key, args.port)
        .map_err(|e| format!("cannot start server: {e}"))?;
    for bucket in &args.buckets {
        server
            .create_bucket(bucket)
            .map_err(|e| format!("cannot create bucket {bucket:?}: {e}"))?;
    }

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", server.endpoint())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start signal handler: {e}"))?;
    runtime
        .block_on(tokio::signal::ctrl_c())
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    drop(server);
    Ok(())
}
