//! [`Cluster`]: runs a session's queries on a Ballista cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ballista_core::config::BallistaConfig;
use ballista_core::execution_plans::execute_physical_plan;
use datafusion::config::ExtensionOptions;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, SessionState};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the scheduler has to say how many executors it has before a query fails.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A scheduler to send queries to (`strata --cluster HOST:PORT`).
#[derive(Debug)]
pub struct Cluster {
    scheduler: String,
    session_id: String,
    codec: Arc<dyn PhysicalExtensionCodec>,
    last_run: Mutex<Option<String>>,
}

impl Cluster {
    /// The cluster whose scheduler is at `scheduler` (`HOST:PORT`). Nothing is contacted
    /// until a query runs.
    pub fn new(scheduler: &str) -> anyhow::Result<Self> {
        crate::host_port(scheduler, "--cluster")?;
        Ok(Self {
            scheduler: scheduler.to_string(),
            session_id: uuid::Uuid::new_v4().to_string(),
            codec: crate::codec(),
            last_run: Mutex::new(None),
        })
    }

    /// The scheduler's address.
    pub fn scheduler(&self) -> &str {
        &self.scheduler
    }

    /// How many executors the scheduler has; an error naming the scheduler when it cannot
    /// be reached or has none.
    pub async fn executors(&self) -> Result<usize, String> {
        let scheduler = &self.scheduler;
        match tokio::time::timeout(READY_TIMEOUT, readyz(scheduler)).await {
            Err(_) => Err(format!(
                "the scheduler at {scheduler} did not answer within {}s",
                READY_TIMEOUT.as_secs()
            )),
            Ok(Err(e)) => Err(format!(
                "cannot reach the scheduler at {scheduler}: {e}; start one with `strata scheduler --listen {scheduler}`, or run without --cluster"
            )),
            Ok(Ok((true, n))) => Ok(n),
            Ok(Ok((false, _))) => Err(format!(
                "the scheduler at {scheduler} has no executor; start one with `strata executor --scheduler {scheduler}`"
            )),
        }
    }
}

/// Asks the scheduler's `/readyz`: whether it has executors, and how many.
async fn readyz(scheduler: &str) -> std::io::Result<(bool, usize)> {
    let mut stream = tokio::net::TcpStream::connect(scheduler).await?;
    stream
        .write_all(
            format!("GET /readyz HTTP/1.1\r\nHost: {scheduler}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let bad = || std::io::Error::other(format!("not a scheduler's answer: {response:?}"));
    let status = response.split_whitespace().nth(1).ok_or_else(bad)?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    // "ready: 2 executors registered" or "not ready: 0/1 executors registered".
    let count = body
        .split_whitespace()
        .find_map(|word| word.split('/').next().and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0);
    match status {
        "200" => Ok((true, count)),
        "503" => Ok((false, count)),
        _ => Err(bad()),
    }
}

/// An error of a query on the cluster as strata shows errors: a task's as it would have
/// been in one process, any other naming the scheduler.
fn cluster_error(scheduler: &str, e: &DataFusionError) -> DataFusionError {
    let text = e.to_string();
    match crate::errors::task_error(&text) {
        Some(remote) => DataFusionError::External(Box::new(remote)),
        None => {
            let detail = crate::errors::status_message(
                text.strip_prefix("Execution error: ").unwrap_or(&text),
            );
            let broke = ["transport error", "h2 protocol error", "connection"]
                .iter()
                .any(|m| detail.to_lowercase().contains(m));
            DataFusionError::External(Box::new(ClusterError(if broke {
                format!(
                    "on the cluster at {scheduler}: a connection broke while the query ran ({detail}); check that the scheduler and its executors are running"
                )
            } else {
                format!("on the cluster at {scheduler}: {detail}")
            })))
        }
    }
}

/// An error of the cluster itself (its scheduler cannot be reached, a connection broke),
/// shown as its message alone.
#[derive(Debug)]
struct ClusterError(String);

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

#[async_trait]
impl strata_engine::remote::Remote for Cluster {
    async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        state: &SessionState,
    ) -> DFResult<SendableRecordBatchStream> {
        let executors = self
            .executors()
            .await
            .map_err(|e| DataFusionError::External(Box::new(ClusterError(e))))?;
        if let Ok(mut last) = self.last_run.lock() {
            *last = Some(format!(
                "on the cluster at {} ({executors} executor{})",
                self.scheduler,
                if executors == 1 { "" } else { "s" }
            ));
        }
        let scheduler = self.scheduler.clone();
        // Ballista's settings for this query, here and on the executors that read the rows of
        // other stages: messages up to strata's limit.
        let mut ballista = BallistaConfig::default();
        ExtensionOptions::set(
            &mut ballista,
            "client.grpc_max_message_size",
            &crate::MAX_MESSAGE.to_string(),
        )?;
        let mut config = state.config().clone();
        config.options_mut().extensions.insert(ballista.clone());
        let stream = execute_physical_plan::<PhysicalPlanNode>(
            format!("http://{scheduler}"),
            &ballista,
            plan,
            self.codec.as_ref(),
            self.session_id.clone(),
            config,
        )
        .await
        .map_err(|e| cluster_error(&scheduler, &e))?;
        let schema = stream.schema();
        let rows = stream.map(move |batch| batch.map_err(|e| cluster_error(&scheduler, &e)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
    }

    fn last_run(&self) -> Option<String> {
        self.last_run.lock().ok().and_then(|l| l.clone())
    }
}
