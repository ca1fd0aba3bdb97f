//! The engine's error type: one enum with structured fields, so a user sees which table,
//! file or line went wrong and what to do about it.

use datafusion::error::DataFusionError;

/// Errors raised by the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] strata_catalog::Error),

    /// A file that was listed but could not be read any more.
    #[error(
        "file '{path}' of table {table} vanished between listing and reading (it was deleted or replaced while the query ran); run the query again"
    )]
    FileVanished { table: String, path: String },

    /// A file whose content cannot be read.
    #[error("cannot read '{path}'{}: {reason}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    BadFile {
        path: String,
        line: Option<u64>,
        reason: String,
    },

    /// Two files disagree about a field's type in a way no type holds both.
    #[error(
        "field '{field}' is {left_type} in '{left_file}' but {right_type} in '{right_file}'; no type holds both. Move one of the files to its own table, or declare the column types in CREATE EXTERNAL TABLE"
    )]
    SchemaConflict {
        field: String,
        left_type: String,
        left_file: String,
        right_type: String,
        right_file: String,
    },

    /// A location with nothing to read.
    #[error("location '{location}' {reason}; check the path, or put the table's files there first")]
    EmptyLocation { location: String, reason: String },

    /// Files under one table partitioned in different ways.
    #[error(
        "'{left_file}' is partitioned by ({left}) but '{right_file}' by ({right}); files of one table must use the same key=value folders"
    )]
    PartitionMismatch {
        left: String,
        left_file: String,
        right: String,
        right_file: String,
    },

    /// A table format strata cannot read (yet).
    #[error(
        "unsupported format '{format}' for {table}; strata reads JSON (NDJSON), CSV and PARQUET here"
    )]
    UnsupportedFormat { table: String, format: String },

    /// A write to a zone that does not take writes.
    #[error(
        "{table} is in the raw zone, which is read-only to SQL writes ({statement}); write into processed or curated instead"
    )]
    ReadOnlyZone { table: String, statement: String },

    /// A statement that writes, on a session that only reads.
    #[error(
        "this session is read-only: {statement} is refused; only reads run here (queries, SHOW, DESCRIBE, EXPLAIN, CHECK)"
    )]
    ReadOnlySession { statement: String },

    /// A location outside the places a restricted session may name.
    #[error(
        "location '{location}' is outside the warehouse and the paths this server allows; to allow it, start the server with strata serve --allow-path PREFIX"
    )]
    LocationNotAllowed { location: String },

    /// A statement strata cannot run.
    #[error("{0}")]
    Unsupported(String),

    /// A SQL syntax error. The message names the line and column too, as sqlparser writes
    /// them; `line` and `column` say where (1-based, in the text that was parsed), for a
    /// front end to point at.
    #[error("SQL syntax error: {message}")]
    Syntax {
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },

    /// A data-quality check that did not hold.
    #[error("check '{name}' failed: expected {expectation}, saw {value}")]
    CheckFailed {
        name: String,
        expectation: String,
        value: String,
    },

    /// A query that was cancelled.
    #[error("query cancelled")]
    Cancelled,

    /// An error from DataFusion.
    #[error("{}", describe_datafusion(.0))]
    DataFusion(#[from] DataFusionError),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::DataFusion(e.into())
    }
}

/// A DataFusion error as a user should read it: strata's own errors come back out of
/// `External` with their message intact, and DataFusion's prefixes ("Error during planning:",
/// "External error:") are dropped where they only add noise.
fn describe_datafusion(e: &DataFusionError) -> String {
    if let Some(message) = crate::arithmetic::overflow_message(e) {
        return message;
    }
    match e {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(ctx, inner) => format!("{ctx}: {}", describe_datafusion(inner)),
        DataFusionError::Shared(inner) => describe_datafusion(inner),
        DataFusionError::ArrowError(inner, _) => describe_arrow(inner),
        DataFusionError::ObjectStore(inner) => match &**inner {
            object_store::Error::NotFound { path, .. } => format!(
                "'{path}' was not found: it vanished between listing and reading, or the location is wrong; run the query again or REFRESH the table"
            ),
            other => format!("storage error: {other}"),
        },
        DataFusionError::ParquetError(inner) => match &**inner {
            parquet::errors::ParquetError::External(ext) => ext.to_string(),
            other => format!("Parquet error: {other}"),
        },
        DataFusionError::Plan(msg) => msg.clone(),
        DataFusionError::SQL(inner, _) => format!("SQL syntax error: {inner}"),
        DataFusionError::Diagnostic(_, inner) => describe_datafusion(inner),
        DataFusionError::ResourcesExhausted(msg) => describe_memory(msg),
        other => other.to_string(),
    }
}

/// An Arrow error as a user should read it.
pub(crate) fn describe_arrow(e: &arrow::error::ArrowError) -> String {
    match e {
        arrow::error::ArrowError::ExternalError(ext) => ext.to_string(),
        other => other.to_string(),
    }
}

/// The error a task failed with on a remote, as the client shows it: strata's message for
/// the task's error (what one process would show), and, when a file could not be decoded,
/// DataFusion's own text of that error, so that the client can look for the damaged file as
/// it does for a query it runs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    message: String,
    undecodable: Option<String>,
}

impl RemoteError {
    /// The remote error for a task's error `e` (seen through any layers the remote adds).
    pub fn of(e: &DataFusionError) -> Self {
        Self {
            message: describe_datafusion(e),
            undecodable: is_decode_error(e).then(|| e.to_string()),
        }
    }

    /// The remote error for a task's error that Arrow reported, as DataFusion would have
    /// carried it.
    pub fn of_arrow(e: &arrow::error::ArrowError) -> Self {
        let text = format!("Arrow error: {e}");
        Self {
            message: describe_arrow(e),
            undecodable: is_decode_text(&text).then_some(text),
        }
    }

    /// The error as text that travels.
    pub fn to_text(&self) -> String {
        serde_json::json!({"message": self.message, "undecodable": self.undecodable}).to_string()
    }

    /// The error back from [`RemoteError::to_text`].
    pub fn from_text(text: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(Self {
            message: value["message"].as_str()?.to_string(),
            undecodable: value["undecodable"].as_str().map(str::to_string),
        })
    }

    /// DataFusion's text of a decoding error, if the task failed decoding a file.
    pub(crate) fn undecodable(&self) -> Option<&str> {
        self.undecodable.as_deref()
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {}

/// Whether `e` is an error decoding a file (here, or in a task on a cluster).
pub(crate) fn is_decode_error(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::External(inner) => inner
            .downcast_ref::<RemoteError>()
            .is_some_and(|r| r.undecodable().is_some()),
        DataFusionError::ParquetError(inner) => {
            !matches!(**inner, parquet::errors::ParquetError::External(_))
        }
        DataFusionError::ArrowError(_, _) => is_decode_text(&e.to_string()),
        DataFusionError::Context(_, inner) => is_decode_error(inner),
        DataFusionError::Shared(inner) => is_decode_error(inner),
        _ => false,
    }
}

/// Whether the text of an Arrow error tells of a file that could not be decoded.
pub(crate) fn is_decode_text(text: &str) -> bool {
    ["Parquet", "Csv error", "Parser error"]
        .iter()
        .any(|m| text.contains(m))
}

/// A query over the memory limit: which operator wanted more, the limit, and what to do.
/// DataFusion's message lists the biggest consumers first and ends with the allocation that
/// failed ("Failed to allocate additional 920 KB for TopK[0] with … pool_size: 200.0 MB)").
fn describe_memory(msg: &str) -> String {
    let failed = msg
        .rfind("Failed to allocate")
        .map_or(msg, |i| &msg[i..])
        .trim();
    let operator = failed
        .split_once(" for ")
        .and_then(|(_, rest)| rest.split_once(" with "))
        .map(|(op, _)| op.trim());
    let limit = failed
        .split_once("pool_size: ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(size, _)| size.trim());
    match (operator, limit) {
        (Some(operator), Some(limit)) => format!(
            "the query needs more memory than the memory limit ({limit}) allows: {operator} \
             could not get more, and it cannot spill to disk (sorts, aggregations and joins \
             spill what they can). Raise --memory-limit (memory_limit in the config file), or \
             make the query hold less at once: filter before joining, join on the smaller \
             table, group by fewer keys or lower a large LIMIT. ({failed})"
        ),
        _ => format!(
            "the query needs more memory than the memory limit allows; raise --memory-limit \
             (memory_limit in the config file). ({msg})"
        ),
    }
}
