//! Test helpers for strata: talk to a **real** S3 HTTP server on loopback.
//!
//! - [`S3Server`] serves a local folder over the S3 API (s3s + s3s-fs), with SigV4
//!   authentication, path-style addressing and atomic conditional writes
//!   (`If-None-Match: *`, `If-Match`), on its own thread and tokio runtime.
//! - [`FaultProxy`] sits between a client and a server and injects HTTP 503/500 answers,
//!   dropped connections and stalls, deterministically from a seed ([`Faults`]).
//! - [`closed_endpoint`] gives an address where nothing listens.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use strata_testkit::{FaultProxy, Faults, S3Server};
//!
//! let dir = tempfile::tempdir()?;
//! let server = S3Server::start(dir.path(), "strata", "strata-secret")?;
//! server.create_bucket("warehouse")?;
//! let proxy = FaultProxy::start(&server.endpoint(), Faults { error_rate: 0.2, ..Faults::none() })?;
//! // Point an S3 client (path-style, region us-east-1, allow http) at proxy.endpoint().
//! # Ok(()) }
//! ```
//!
//! The `strata-s3-server` binary of this crate runs an [`S3Server`] standalone (benchmarks,
//! manual checks).

mod proxy;
mod s3;
mod server_thread;

pub use proxy::{FaultProxy, FaultStats, Faults, closed_endpoint};
pub use s3::S3Server;

#[cfg(test)]
mod tests;
