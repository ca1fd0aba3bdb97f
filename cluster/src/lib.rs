//! strata on a cluster of executors, on Apache DataFusion Ballista.
//!
//! - [`scheduler`]: `strata scheduler`, Ballista's scheduler with strata's codec;
//! - [`executor`]: `strata executor`, a Ballista executor that registers with a scheduler;
//! - [`client`]: [`Cluster`], the engine's [`strata_engine::remote::Remote`] that sends a
//!   session's physical plans to a scheduler and streams their rows back.
//!
//! The client plans every query itself, with strata's catalog and rules, and ships the
//! physical plan (Ballista's `ExecuteQueryParams::PhysicalPlan`): the scheduler cuts it into
//! stages at its repartitions and the executors run the tasks. Scheduler, executors and
//! clients decode plans with the same codec ([`codec`]): strata's nodes over Ballista's.

pub mod client;
mod errors;
pub mod executor;
pub mod scheduler;

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;

pub use client::Cluster;

/// The largest gRPC message a client, scheduler or executor sends or takes: a batch of rows
/// between stages, a task's plan over many files. Ballista's default (16 MiB) failed TPC-H
/// Q10 at SF 10 with a 67 MiB batch.
pub(crate) const MAX_MESSAGE: usize = 1 << 30;

/// The physical codec scheduler, executors and clients share: strata's nodes, expressions
/// and functions, then Ballista's shuffle nodes, then DataFusion's.
pub fn codec() -> Arc<dyn PhysicalExtensionCodec> {
    Arc::new(strata_engine::remote::StrataCodec::new(Arc::new(
        BallistaPhysicalExtensionCodec::default(),
    )))
}

/// Splits `HOST:PORT`, naming what is wrong with it.
pub(crate) fn host_port(address: &str, what: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = address.rsplit_once(':').ok_or_else(|| {
        anyhow::anyhow!("{what} '{address}' is not HOST:PORT, e.g. 127.0.0.1:50050")
    })?;
    let port: u16 = port.parse().map_err(|_| {
        anyhow::anyhow!("{what} '{address}' has no port number after its ':', e.g. 127.0.0.1:50050")
    })?;
    if host.is_empty() {
        anyhow::bail!("{what} '{address}' has no host before its ':', e.g. 127.0.0.1:50050");
    }
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    ))
}
