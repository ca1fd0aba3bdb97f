//! strata's Arrow Flight SQL server: a warehouse session served over gRPC to ADBC, JDBC
//! and Flight clients, built on arrow-flight's `FlightSqlService`.
//!
//! - Each client has its own session, forked from the server's: its own `USE` zone, `SET`
//!   settings (but not `datafusion.runtime.*`, which every client shares) and storage
//!   counters. A client is known by the session token its handshake got, else by the
//!   `strata_session` cookie the server sets, else by its connection. Sessions idle for
//!   [`Options::session_idle`] are dropped; `CloseSession` ends one at once.
//! - Tickets are handles: GetFlightInfo plans a query once and keeps the plan in the
//!   client's session under a random id, which is all the ticket holds. DoGet runs only
//!   tickets issued to the same client within [`Options::ticket_expiry`]; any other is
//!   NOT_FOUND. A query's ticket may be fetched again until it expires (each fetch runs the
//!   plan); nothing in a ticket is read as SQL or data.
//! - Queries stream: DoGet sends record batches as DataFusion produces them, so a result
//!   larger than memory is never held.
//! - Other statements (DDL, DML, the Delta statements, USE, SET) run when their ticket is
//!   first fetched, or by their DoPut update, and CancelFlightInfo stops them there; their
//!   result (the rows they changed, a listing) is kept under the ticket for later fetches.
//! - Prepared statements take `?` or `$n` parameters bound with DoPut, for queries and
//!   updates alike; they belong to the client that prepared them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! let session = Arc::new(strata_engine::Session::open("my-warehouse").await?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("listening on {}", listener.local_addr()?);
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! strata_server::Server::new(session, strata_server::Options::default())?
//!     .serve(listener, shutdown)
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod auth;
mod encode;
mod error;
mod guard;
mod ipc;
mod metadata;
mod prepared;
mod running;
mod service;
mod sessions;
mod statement;
mod ticket;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::TryStreamExt;
use strata_engine::Session;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpIncoming};
use tonic::transport::{Identity, ServerTlsConfig};

use crate::sessions::{ConnectionId, Sessions};

pub use error::{Error, Result};
pub use running::RunningQueries;

/// How long a shutdown waits for cancelled queries and open calls to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a ticket can be fetched, unless [`Options`] say otherwise.
pub const DEFAULT_TICKET_EXPIRY: Duration = Duration::from_secs(10 * 60);

/// How long an unused session lives, unless [`Options`] say otherwise.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// How the server answers.
#[derive(Debug, Clone)]
pub struct Options {
    /// With a token, every call must carry `authorization: Bearer <token>`, or the session
    /// token a handshake handed out for basic credentials whose password is the token.
    pub auth_token: Option<String>,
    /// Refuse everything but queries (and USE and SET), with PERMISSION_DENIED.
    pub read_only: bool,
    /// Folders and URL prefixes outside the warehouse that statements may name (CREATE
    /// EXTERNAL TABLE … LOCATION, COPY … TO); any other location outside the warehouse and
    /// its zones' roots is refused with PERMISSION_DENIED.
    pub allow_paths: Vec<String>,
    /// Serve over TLS with this certificate and key.
    pub tls: Option<Tls>,
    /// The largest request message taken, in bytes (`DEFAULT_MAX_MESSAGE_SIZE` if unset);
    /// larger ones are refused with OUT_OF_RANGE before they are read into memory.
    pub max_message_size: Option<usize>,
    /// How long after GetFlightInfo its ticket can be fetched.
    pub ticket_expiry: Duration,
    /// How long a client's session lives unused; its tickets and prepared statements go
    /// with it.
    pub session_idle: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auth_token: None,
            read_only: false,
            allow_paths: vec![],
            tls: None,
            max_message_size: None,
            ticket_expiry: DEFAULT_TICKET_EXPIRY,
            session_idle: DEFAULT_SESSION_IDLE,
        }
    }
}

/// The largest request message taken unless `Options::max_message_size` says otherwise.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

/// A PEM certificate (chain) and private key.
#[derive(Clone)]
pub struct Tls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }")
    }
}

impl Tls {
    /// A certificate and key from PEM text.
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    /// A certificate and key from PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| Error::ReadFile {
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(Self::from_pem(
            read("certificate", cert)?,
            read("private key", key)?,
        ))
    }
}

/// A Flight SQL server on a session, which each client's session is forked from.
pub struct Server {
    service: service::StrataFlightSql,
    auth: auth::Auth,
    sessions: Arc<Sessions>,
    tls: Option<Tls>,
    max_message_size: usize,
    running: RunningQueries,
}

impl Server {
    /// A server on a session. The session is put under the server's policy: locations
    /// restricted to the warehouse and `allow_paths`, and no writes when read-only. The
    /// engine enforces it where statements run, however a client sends them.
    pub fn new(session: Arc<Session>, options: Options) -> Result<Self> {
        let paths = strata_engine::PathPolicy::restricted(&options.allow_paths)
            .map_err(|e| Error::Setup(e.to_string()))?;
        session.set_policy(strata_engine::Policy {
            read_only: options.read_only,
            paths,
        });
        let sessions = Arc::new(Sessions::new(
            session,
            options.session_idle,
            options.ticket_expiry,
        ));
        let auth = auth::Auth::new(options.auth_token, Arc::clone(&sessions));
        let running = RunningQueries::default();
        let service = service::StrataFlightSql::new(
            Arc::clone(&sessions),
            options.read_only,
            auth.clone(),
            running.clone(),
        )
        .map_err(|s| Error::Setup(s.message().to_string()))?;
        Ok(Self {
            service,
            auth,
            sessions,
            tls: options.tls,
            max_message_size: options.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
            running,
        })
    }

    /// The queries being streamed (to watch them, or wait for them to end).
    pub fn running(&self) -> RunningQueries {
        self.running.clone()
    }

    /// Serves calls on an already bound listener until `shutdown` completes; then running
    /// queries are cancelled, and open calls get a short while to end.
    ///
    /// Calls are handled on the tokio runtime's worker threads. Give them large stacks
    /// (`Builder::thread_stack_size`, 64 MiB in `strata serve`): DataFusion walks and formats
    /// expression trees recursively, and a statement up to the engine's depth limit
    /// (`strata_engine::sql::MAX_EXPRESSION_DEPTH`) can need more than the default 2 MiB.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &self.tls {
            // rustls needs one crypto provider for the process; other crates may have
            // installed one already, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
            builder = builder
                .tls_config(ServerTlsConfig::new().identity(identity))
                .map_err(|e| Error::Tls(e.to_string()))?;
        }
        let sessions = Arc::clone(&self.sessions);
        let incoming = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .map_ok(move |stream| Connection::new(stream, Arc::clone(&sessions)));
        let running = self.running.clone();
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: cancelling running queries");
            running.shut_down();
            let _ = stopping_tx.send(());
        };
        let serve = builder
            .layer(self.auth.layer())
            .add_service(
                FlightServiceServer::new(guard::Guarded::new(self.service))
                    .max_decoding_message_size(self.max_message_size),
            )
            .serve_with_incoming_shutdown(incoming, signal);
        let deadline = async {
            match stopping_rx.await {
                Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            result = serve => result?,
            () = deadline => {
                tracing::warn!("calls still open {SHUTDOWN_GRACE:?} after shutdown; closing anyway");
            }
        }
        Ok(())
    }
}

/// A client's connection, numbered: calls made on it carry its [`ConnectionId`], which
/// names the client's session when nothing else does. Its session is forgotten under that
/// name when it closes.
struct Connection {
    stream: TcpStream,
    id: ConnectionId,
    sessions: Arc<Sessions>,
}

impl Connection {
    fn new(stream: TcpStream, sessions: Arc<Sessions>) -> Self {
        Self {
            stream,
            id: ConnectionId::next(),
            sessions,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.sessions.connection_closed(self.id);
    }
}

impl Connected for Connection {
    type ConnectInfo = ConnectionId;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.id
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
