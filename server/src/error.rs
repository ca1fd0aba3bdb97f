//! The server's own errors (listening, TLS), and strata's errors as gRPC statuses: SQL
//! errors are INVALID_ARGUMENT with strata's message, a query over the memory limit is
//! RESOURCE_EXHAUSTED, and so on.

use std::path::PathBuf;

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use tonic::{Code, Status};

/// Errors of starting and running the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A certificate or key file that cannot be read.
    #[error("cannot read {what} '{}': {source}", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// TLS settings that cannot be used.
    #[error("cannot use the TLS certificate and key: {0}")]
    Tls(String),

    /// The service could not be set up.
    #[error("cannot start the server: {0}")]
    Setup(String),

    /// The gRPC server failed.
    #[error("the Flight SQL server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The server's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A strata error as a gRPC status whose message is strata's.
pub(crate) fn status(e: strata_engine::Error) -> Status {
    Status::new(code(&e), strata_catalog::mask_credentials(&e.to_string()))
}

/// A DataFusion error (from a running query's stream) as a gRPC status.
pub(crate) fn datafusion_status(e: DataFusionError) -> Status {
    status(strata_engine::Error::DataFusion(e))
}

fn code(e: &strata_engine::Error) -> Code {
    let mut code = Code::InvalidArgument;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(e) = err.downcast_ref::<strata_engine::Error>() {
            match e {
                strata_engine::Error::Cancelled => return Code::Cancelled,
                // Transparent: its source is the catalog error's source, not itself.
                strata_engine::Error::Catalog(c) => return catalog_code(c),
                strata_engine::Error::FileVanished { .. } => return Code::NotFound,
                strata_engine::Error::ReadOnlySession { .. }
                | strata_engine::Error::LocationNotAllowed { .. } => {
                    return Code::PermissionDenied;
                }
                _ => {}
            }
        } else if let Some(c) = err.downcast_ref::<strata_catalog::Error>() {
            return catalog_code(c);
        } else if let Some(e) = err.downcast_ref::<DataFusionError>() {
            match e {
                DataFusionError::ResourcesExhausted(_) => return Code::ResourceExhausted,
                DataFusionError::Internal(_) | DataFusionError::ExecutionJoin(_) => {
                    code = Code::Internal;
                }
                DataFusionError::IoError(_) => code = Code::Unavailable,
                _ => {}
            }
        } else if let Some(e) = err.downcast_ref::<ArrowError>() {
            if matches!(e, ArrowError::MemoryError(_)) {
                return Code::ResourceExhausted;
            }
        } else if let Some(e) = err.downcast_ref::<object_store::Error>() {
            return match e {
                object_store::Error::NotFound { .. } => Code::NotFound,
                _ => Code::Unavailable,
            };
        }
        current = err.source();
    }
    code
}

fn catalog_code(e: &strata_catalog::Error) -> Code {
    use strata_catalog::Error as C;
    match e {
        C::Contention { .. } => Code::Aborted,
        C::StorageUnavailable { .. } | C::Storage { .. } => Code::Unavailable,
        C::CorruptCommit { .. } | C::UnsupportedFormatVersion { .. } => Code::FailedPrecondition,
        // Unknown zones and tables are SQL errors: the statement names them.
        _ => Code::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_errors_are_resource_exhausted_however_wrapped() {
        let inner = DataFusionError::ResourcesExhausted("Failed to allocate".into());
        let wrapped = DataFusionError::Context(
            "while joining".into(),
            Box::new(DataFusionError::ArrowError(
                Box::new(ArrowError::ExternalError(Box::new(inner))),
                None,
            )),
        );
        let s = datafusion_status(wrapped);
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    }

    #[test]
    fn missing_tables_are_invalid_argument_and_named() {
        let e = strata_engine::Error::Catalog(strata_catalog::Error::TableNotFound {
            zone: "raw".into(),
            name: "nope".into(),
            available: vec!["sales".into()],
        });
        let s = status(e);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("raw.nope"), "{}", s.message());
    }
}
