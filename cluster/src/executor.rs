//! `strata executor`: a Ballista executor, started from its library with strata's codec,
//! that registers with a scheduler and asks it for tasks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::error::BallistaError;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::create_grpc_server;
use ballista_executor::ArrowFlightServerProvider;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::health::ExecutorHealth;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use strata_engine::catalog::S3Options;
use strata_engine::providers::stores::StoreRegistry;

/// What `strata executor` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scheduler, `HOST:PORT`.
    pub scheduler: String,
    /// Where to serve shuffle data and results; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Tasks run at once [default: the machine's cores].
    pub cores: Option<usize>,
    /// Told of each task that succeeds ("task 3 of job … stage 2 done").
    pub tasks: Option<TaskDone>,
    /// How this executor reaches S3 buckets: its own settings (its environment and config
    /// file), never the client's. Plans name buckets, not credentials.
    pub s3: S3Options,
    /// Memory the executor's tasks may hold at once, shared out by cores; sorts, joins and
    /// aggregations past it spill to the work folder [default: a share of the machine's].
    pub memory_limit: Option<u64>,
}

/// What an executor calls with a line for each task that succeeds.
#[derive(Clone)]
pub struct TaskDone(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for TaskDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskDone")
    }
}

/// Checks the scheduler answers, listens, registers with the scheduler, calls `ready` with
/// the address it serves on, and runs the tasks the scheduler hands out until the process
/// ends.
pub async fn run(options: Options, ready: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let scheduler = &options.scheduler;
    let (scheduler_host, scheduler_port) = crate::host_port(scheduler, "the scheduler")?;
    tokio::net::TcpStream::connect((scheduler_host.as_str(), scheduler_port))
        .await
        .with_context(|| {
            format!("cannot reach the scheduler at {scheduler}; start one with `strata scheduler --listen {scheduler}`")
        })?;
    // Bound here, before Ballista starts, so that the address is known (port 0) and taken.
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    let work_dir = tempfile::Builder::new()
        .prefix("strata-executor-")
        .tempdir()
        .context("cannot create the executor's work folder")?;
    let health = ExecutorHealth::new();
    let listener = Arc::new(Mutex::new(Some(listener)));
    let flight: Arc<ArrowFlightServerProvider> =
        Arc::new(move |work_dir, _address, mut shutdown, grpc| {
            let listener = listener.lock().ok().and_then(|mut l| l.take());
            tokio::spawn(async move {
                let listener = listener.ok_or_else(|| {
                    BallistaError::General("the executor's listener was already taken".into())
                })?;
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                create_grpc_server(&grpc)
                    .add_service(
                        FlightServiceServer::new(BallistaFlightService::new(work_dir))
                            .max_decoding_message_size(crate::MAX_MESSAGE)
                            .max_encoding_message_size(crate::MAX_MESSAGE),
                    )
                    .serve_with_incoming_shutdown(incoming, shutdown.recv())
                    .await
                    .map_err(BallistaError::TonicError)
            })
        });
    // Tasks read through strata's stores, with this executor's S3 settings.
    let stores = StoreRegistry::for_plans_of_others(options.s3.clone());
    let spill = work_dir.path().to_path_buf();
    let runtime: ballista_core::RuntimeProducer = Arc::new(move |_| {
        RuntimeEnvBuilder::new()
            .with_object_store_registry(stores.clone())
            .with_temp_file_path(spill.clone())
            .build_arc()
    });
    let config = ExecutorProcessConfig {
        bind_host: address.ip().to_string(),
        external_host: Some(address.ip().to_string()),
        port: address.port(),
        scheduler_host,
        scheduler_port,
        vcores: options.cores.unwrap_or(0),
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: Some(work_dir.path().to_string_lossy().into_owned()),
        override_physical_codec: Some(crate::codec()),
        // Tasks fail with strata's messages (see `errors`). Ballista's pool of shuffle
        // clients is private to its default engine, so shuffle reads open their own.
        override_execution_engine: Some(Arc::new(crate::errors::StrataEngine::new(
            options.tasks.clone(),
        ))),
        // Every function a client's plan may name: DataFusion's, the nested ones included.
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(
            &SessionStateBuilder::new().with_default_features().build(),
        ))),
        override_arrow_flight_service: Some(flight),
        override_runtime_producer: Some(runtime),
        memory_pool_size: options.memory_limit,
        grpc_max_decoding_message_size: crate::MAX_MESSAGE as u32,
        grpc_max_encoding_message_size: crate::MAX_MESSAGE as u32,
        health: health.clone(),
        ..Default::default()
    };
    let stopped = |e: BallistaError| {
        anyhow::anyhow!("the executor on {address} (scheduler {scheduler}) stopped: {e}")
    };
    let mut process = tokio::spawn(start_executor_process(Arc::new(config)));
    // Ready once the scheduler has heard from it: a query sent after the address is printed
    // finds the executor registered. Ballista flips a flag; it is looked at every 10 ms.
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            ended = &mut process => {
                return match ended {
                    Ok(result) => result.map_err(stopped),
                    Err(e) => Err(anyhow::anyhow!("the executor on {address} failed: {e}")),
                };
            }
            _ = tick.tick() => {
                if health.is_ready() {
                    break;
                }
            }
        }
    }
    ready(address);
    match process.await {
        Ok(result) => result.map_err(stopped),
        Err(e) => Err(anyhow::anyhow!("the executor on {address} failed: {e}")),
    }
}
