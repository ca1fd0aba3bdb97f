//! Integration tests of the Flight SQL server: a server on 127.0.0.1:0 in this process, on a
//! warehouse holding the sample retail data, talked to with arrow-flight's
//! `FlightSqlServiceClient`. The listener is bound before the server starts, so clients
//! connect at once: nothing sleeps waiting for start-up.

mod auth;
mod cancel;
mod encoding;
mod errors;
mod malformed;
mod metadata;
mod policy;
mod prepared;
mod queries;
mod sessions;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::FlightInfo;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use strata_engine::Session;
use strata_server::{Options, RunningQueries, Server};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// A server on a fresh warehouse whose raw zone holds the retail sample.
pub struct TestServer {
    pub addr: SocketAddr,
    pub session: Arc<Session>,
    pub running: RunningQueries,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<strata_server::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default(), strata_catalog::Config::default()).await
    }

    pub async fn start_with(options: Options, config: strata_catalog::Config) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let warehouse = dir.path().join("warehouse");
        copy_dir(&testdata("retail"), &warehouse.join("raw")).expect("copy the sample");
        let session = Session::open_with(&warehouse.to_string_lossy(), &config)
            .await
            .expect("session");
        session.sql("REFRESH ZONE raw").await.expect("refresh");
        let session = Arc::new(session);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = Server::new(Arc::clone(&session), options).expect("server");
        let running = server.running();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            session,
            running,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn client(&self) -> FlightSqlServiceClient<Channel> {
        FlightSqlServiceClient::new(self.channel().await)
    }

    /// Stops the server and waits for it to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the server stops")
                .expect("the server task ends");
            result.expect("the server ends cleanly");
        }
    }
}

/// Runs a query through GetFlightInfo and DoGet; returns its FlightInfo and batches.
pub async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<(FlightInfo, Vec<RecordBatch>), FlightError> {
    let info = client.execute(sql.to_string(), None).await?;
    let batches = fetch(client, &info).await?;
    Ok((info, batches))
}

/// The batches of every endpoint of a FlightInfo.
pub async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: &FlightInfo,
) -> Result<Vec<RecordBatch>, FlightError> {
    let mut batches = vec![];
    for endpoint in &info.endpoint {
        let ticket = endpoint.ticket.clone().expect("a ticket");
        let stream = client.do_get(ticket).await?;
        batches.extend(stream.try_collect::<Vec<_>>().await?);
    }
    Ok(batches)
}

/// Batches as a table, for comparing.
pub fn pretty(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .expect("format")
        .to_string()
}

/// The gRPC code of a failed call.
pub fn code(e: &FlightError) -> tonic::Code {
    match e {
        FlightError::Tonic(status) => status.code(),
        other => panic!("not a gRPC status: {other:?}"),
    }
}

/// The message of a failed call.
pub fn message(e: &FlightError) -> String {
    match e {
        FlightError::Tonic(status) => status.message().to_string(),
        other => other.to_string(),
    }
}

/// Waits, within a bound, until no query is running.
pub async fn wait_idle(running: &RunningQueries) {
    tokio::time::timeout(Duration::from_secs(30), running.idle())
        .await
        .expect("the running queries end");
}

pub fn testdata(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(relative)
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
