//! strata's Arrow Flight SQL server: a warehouse session served over gRPC to ADBC, JDBC
//! and Flight clients, built on arrow-flight's `FlightSqlService`.
//!
//! - Queries stream: DoGet sends record batches as DataFusion produces them, so a result
//!   larger than memory is never held. Tickets carry their SQL, so any server on the same
//!   warehouse can answer them.
//! - Other statements (DDL, DML, the Delta statements) run once, when their FlightInfo or
//!   their DoPut update is asked for, and report the rows they changed.
//! - Prepared statements take `?` or `$n` parameters bound with DoPut, for queries and
//!   updates alike.
//! - All clients share one session; `USE` and `SET` are refused, since they would change
//!   it for everyone (tables are named `zone.table`).
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
mod metadata;
mod prepared;
mod running;
mod service;
mod statement;
mod ticket;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use strata_engine::Session;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, ServerTlsConfig};

pub use error::{Error, Result};
pub use running::RunningQueries;

/// The largest message a client may send (a batch of DoPut), against tonic's 4 MiB.
const MAX_DECODING_MESSAGE_SIZE: usize = 64 << 20;

/// How long a shutdown waits for cancelled queries and open calls to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the server answers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// With a token, every call must carry `authorization: Bearer <token>` (the handshake
    /// hands it out for basic credentials whose password is the token).
    pub auth_token: Option<String>,
    /// Refuse everything but queries, with PERMISSION_DENIED.
    pub read_only: bool,
    /// Serve over TLS with this certificate and key.
    pub tls: Option<Tls>,
}

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

/// A Flight SQL server on one session.
pub struct Server {
    service: service::StrataFlightSql,
    auth: auth::Auth,
    tls: Option<Tls>,
    running: RunningQueries,
}

impl Server {
    /// A server on a session.
    pub fn new(session: Arc<Session>, options: Options) -> Result<Self> {
        let auth = auth::Auth::new(options.auth_token);
        let running = RunningQueries::default();
        let service = service::StrataFlightSql::new(
            session,
            options.read_only,
            auth.clone(),
            running.clone(),
        )
        .map_err(|s| Error::Setup(s.message().to_string()))?;
        Ok(Self {
            service,
            auth,
            tls: options.tls,
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
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
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
                FlightServiceServer::new(self.service)
                    .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE),
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
