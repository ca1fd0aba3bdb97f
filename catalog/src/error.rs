//! The catalog's error type: one enum with structured fields, so callers can say which
//! zone, table or file went wrong and what to do about it.

/// Errors raised by the catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The warehouse URL could not be understood.
    #[error("cannot open warehouse '{url}': {reason}")]
    InvalidWarehouse { url: String, reason: String },

    /// A zone name that the warehouse does not have.
    #[error("unknown zone '{zone}'; this warehouse has the zones: {}", known.join(", "))]
    UnknownZone { zone: String, known: Vec<String> },

    /// A table that is already registered.
    #[error("table '{zone}.{name}' already exists; drop it first, or use IF NOT EXISTS")]
    TableExists { zone: String, name: String },

    /// A table that is not registered.
    #[error("table '{zone}.{name}' not found; {}", list_tables(zone, available))]
    TableNotFound {
        zone: String,
        name: String,
        available: Vec<String>,
    },

    /// A table name that cannot be used.
    #[error("invalid table name '{name}': {reason}")]
    InvalidName { name: String, reason: String },

    /// A commit file that does not parse.
    #[error("catalog commit '{path}' is corrupt: {source}")]
    CorruptCommit {
        path: String,
        #[source]
        source: serde_json::Error,
    },

    /// A commit written by a newer strata.
    #[error(
        "catalog file '{path}' has format version {found}, but this strata reads versions up to {supported}; upgrade strata"
    )]
    UnsupportedFormatVersion {
        path: String,
        found: u32,
        supported: u32,
    },

    /// Too many concurrent writers won the race for the next commit.
    #[error(
        "gave up committing to the catalog after {attempts} attempts lost to concurrent writers; try again"
    )]
    Contention { attempts: usize },

    /// A config file or storage setting that cannot be used.
    #[error("invalid configuration in {source_name}: {reason}")]
    InvalidConfig { source_name: String, reason: String },

    /// The storage behind the warehouse cannot be used (down, missing bucket, refused).
    #[error("{message}")]
    StorageUnavailable { message: String },

    /// A zone whose root is inside another strata warehouse: a catalog copied or moved by an
    /// older strata, whose absolute roots still point at the original.
    #[error(
        "zone '{zone}' of warehouse {warehouse} has its root at {root}, inside another strata warehouse ({other}); writing there would add files that warehouse's catalog does not list. This warehouse was copied or moved from there by an older strata: open the original once with this strata (its catalog then stores paths relative to the warehouse) and copy it again, or drop the zone's tables and set its root in [zones]"
    )]
    ForeignZoneRoot {
        warehouse: String,
        zone: String,
        root: String,
        other: String,
    },

    /// A commit's put failed, and reading the commit back shows it did not land: nothing
    /// changed.
    #[error(
        "the catalog commit '{path}' did not land, so nothing was changed ({source}); run the statement again"
    )]
    CommitNotLanded {
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// A commit's put failed and the commit could not be read back: it may or may not have
    /// landed.
    #[error(
        "the outcome of the catalog commit '{path}' is unknown: its put failed ({put}) and reading it back failed too ({read}); SHOW TABLES tells whether it landed"
    )]
    CommitOutcomeUnknown {
        path: String,
        put: String,
        read: String,
    },

    /// The object store failed.
    #[error("storage error at '{path}': {source}")]
    Storage {
        path: String,
        #[source]
        source: object_store::Error,
    },
}

fn list_tables(zone: &str, available: &[String]) -> String {
    if available.is_empty() {
        format!("zone '{zone}' has no tables")
    } else {
        format!("tables in zone '{zone}': {}", available.join(", "))
    }
}

/// The catalog's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
