//! `strata serve`: the Flight SQL server on the session, until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use strata_engine::Session;

/// Listens, prints the address (one line on stdout, which scripts read), and serves until
/// a signal asks to stop.
pub async fn serve(
    session: Arc<Session>,
    listen: SocketAddr,
    options: strata_server::Options,
) -> anyhow::Result<()> {
    let scheme = if options.tls.is_some() {
        "grpc+tls"
    } else {
        "grpc"
    };
    let notes = notes(&options);
    let server = strata_server::Server::new(session, options)?;
    // Signal handlers go in before the address is printed, so that a signal sent as soon
    // as it is read stops the server cleanly.
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "strata serve: listening on {address}")?;
    stdout.flush()?;
    say_err!("strata serve: Flight SQL at {scheme}://{address}{notes}");
    server.serve(listener, shutdown).await?;
    say_err!("strata serve: stopped");
    Ok(())
}

/// What a client must know besides the address.
fn notes(options: &strata_server::Options) -> String {
    let mut notes = vec![];
    if options.tls.is_some() {
        notes.push("TLS");
    }
    if options.auth_token.is_some() {
        notes.push("token required");
    }
    if options.read_only {
        notes.push("read-only");
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    }
}

/// Completes on SIGINT or SIGTERM (Ctrl-C elsewhere).
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        say_err!("strata serve: shutting down");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        say_err!("strata serve: shutting down");
    })
}
