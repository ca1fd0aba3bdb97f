//! `strata scheduler`: Ballista's scheduler, started from its library with strata's codec.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::utils::default_session_builder;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use strata_engine::catalog::S3Options;
use strata_engine::providers::stores::StoreRegistry;

/// Listens on `listen` (port 0 picks a free port), calls `ready` with the address once it
/// listens, and schedules queries until the process ends. `s3` are the scheduler's own S3
/// settings: it reads no data, but its plans name buckets whose stores it must know.
pub async fn run(
    listen: SocketAddr,
    s3: S3Options,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut config = SchedulerConfig::default()
        .with_hostname(address.ip().to_string())
        .with_port(address.port())
        // Executors ask for work: they need no port of their own for it, only the one
        // they serve shuffle data on.
        .with_scheduler_policy(TaskSchedulingPolicy::PullStaged);
    config.override_physical_codec = Some(crate::codec());
    config.grpc_server_max_decoding_message_size = crate::MAX_MESSAGE as u32;
    config.grpc_server_max_encoding_message_size = crate::MAX_MESSAGE as u32;
    config.grpc_client_max_message_size = crate::MAX_MESSAGE as u32;
    // Ballista's sessions, over strata's stores.
    let stores = StoreRegistry::for_plans_of_others(s3);
    config.override_session_builder = Some(Arc::new(move |session| {
        let state = default_session_builder(session)?;
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_object_store_registry(stores.clone())
            .build_arc()?;
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build())
    }));
    // An executor that stops asking for work is given up after 30 seconds, not 3 minutes.
    config.executor_timeout_seconds = 30;
    config.expire_dead_executor_interval_seconds = 5;
    config.no_executors_grace_period_seconds = 30;
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the scheduler: {e}"))?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the scheduler: {e}"))?;
    ready(address);
    start_grpc_service_with_listener(listener, scheduler)
        .await
        .map_err(|e| anyhow::anyhow!("the scheduler on {address} stopped: {e}"))
}
