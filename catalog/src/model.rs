//! What the catalog records: zones, table entries, and the actions a commit applies.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The zones every warehouse has, in the order data moves through them.
pub const DEFAULT_ZONES: [&str; 3] = ["raw", "processed", "curated"];

/// The zone unqualified table names resolve to unless told otherwise: analysts query curated
/// tables.
pub const DEFAULT_ZONE: &str = "curated";

/// The zone whose tables are files as they landed, read-only to SQL writes.
pub const RAW_ZONE: &str = "raw";

/// One zone: a SQL schema with its own root URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneEntry {
    pub name: String,
    /// Root URL of the zone, ending in `/`; discovered tables are folders under it.
    pub root: String,
}

/// How a table's files are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Json,
    Csv,
    Parquet,
    Delta,
}

impl TableFormat {
    /// Every format, for error messages.
    pub const ALL: [TableFormat; 4] = [Self::Json, Self::Csv, Self::Parquet, Self::Delta];

    /// The keyword used in `STORED AS`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::Csv => "CSV",
            Self::Parquet => "PARQUET",
            Self::Delta => "DELTA",
        }
    }
}

impl fmt::Display for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

impl FromStr for TableFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "JSON" | "NDJSON" | "JSONL" => Ok(Self::Json),
            "CSV" => Ok(Self::Csv),
            "PARQUET" => Ok(Self::Parquet),
            "DELTA" | "DELTATABLE" => Ok(Self::Delta),
            other => Err(format!(
                "unsupported format '{other}'; strata reads {}",
                Self::ALL.map(|f| f.keyword()).join(", ")
            )),
        }
    }
}

/// A partition column taken from `key=value/` folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionColumn {
    pub name: String,
    /// Arrow type name, as the engine writes it (`Int32`, `Utf8`, ...).
    pub data_type: String,
}

/// One registered table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    pub zone: String,
    pub name: String,
    pub format: TableFormat,
    /// URL of the table's folder (ending in `/`) or of a single file.
    pub location: String,
    #[serde(default)]
    pub partition_columns: Vec<PartitionColumn>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The file schema (without partition columns) as the engine serialized it; `None`
    /// until inferred.
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    /// The SQL that made the table, for tables strata wrote.
    #[serde(default)]
    pub lineage: Option<String>,
    /// True when the table was found by zone discovery rather than declared.
    #[serde(default)]
    pub discovered: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The tables this one was made from, with the version each had when last read for a
    /// write (Delta tables have versions; files do not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceTable>,
    /// Set for a materialized view: its definition is `lineage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materialized: Option<Materialized>,
    /// A write under audit (write-audit-publish): readers keep reading this Delta version
    /// until the write's checks pass; `-1` hides a table that is not published yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_version: Option<i64>,
    /// The data files of a table strata writes itself (Parquet), relative to `location`:
    /// each write commits the table's new file set here, so readers read exactly the
    /// committed files and never a half-written or half-replaced folder. `None`: the table
    /// is whatever files its folder holds (tables registered over folders, and tables older
    /// strata versions wrote, until strata next writes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<DataFile>>,
}

/// One data file of a table whose entry lists its files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DataFile {
    /// The path relative to the table's location, `/`-separated (`year=2026/part.parquet`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A table another was made from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceTable {
    /// `zone.name`.
    pub table: String,
    /// Its Delta version when it was read, if it has versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// What a materialized view remembers besides its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Materialized {
    pub refreshed_at: DateTime<Utc>,
}

impl TableEntry {
    /// A new entry with no schema, options or lineage yet.
    pub fn new(zone: &str, name: &str, format: TableFormat, location: &str) -> Self {
        let now = Utc::now();
        Self {
            zone: zone.to_string(),
            name: name.to_string(),
            format,
            location: location.to_string(),
            partition_columns: vec![],
            options: BTreeMap::new(),
            schema: None,
            lineage: None,
            discovered: false,
            created_at: now,
            updated_at: now,
            sources: vec![],
            materialized: None,
            held_version: None,
            files: None,
        }
    }

    /// `zone.name`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.zone, self.name)
    }
}

/// One change a commit makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Adds a zone or moves its root.
    SetZone(ZoneEntry),
    /// Registers a table, or replaces its entry.
    PutTable(Box<TableEntry>),
    /// Removes a table's entry (its files are left alone).
    DropTable { zone: String, name: String },
}

impl Action {
    /// Rewrites every location the action holds (a zone root, a table location) through `f`:
    /// how the catalog turns URLs into the form it stores, and back.
    pub fn map_locations(&mut self, f: &dyn Fn(&str) -> String) {
        match self {
            Action::SetZone(zone) => zone.root = f(&zone.root),
            Action::PutTable(entry) => entry.location = f(&entry.location),
            Action::DropTable { .. } => {}
        }
    }
}

/// The catalog as of one version: every zone and table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogState {
    /// The last commit applied; `None` before the first.
    pub version: Option<u64>,
    pub zones: BTreeMap<String, ZoneEntry>,
    /// Tables by zone, then by name.
    pub tables: BTreeMap<String, BTreeMap<String, TableEntry>>,
}

impl CatalogState {
    /// Applies one commit's actions.
    pub fn apply(&mut self, version: u64, actions: &[Action]) {
        for action in actions {
            match action {
                Action::SetZone(zone) => {
                    self.tables.entry(zone.name.clone()).or_default();
                    self.zones.insert(zone.name.clone(), zone.clone());
                }
                Action::PutTable(entry) => {
                    self.tables
                        .entry(entry.zone.clone())
                        .or_default()
                        .insert(entry.name.clone(), (**entry).clone());
                }
                Action::DropTable { zone, name } => {
                    if let Some(tables) = self.tables.get_mut(zone) {
                        tables.remove(name);
                    }
                }
            }
        }
        self.version = Some(version);
    }

    /// Rewrites every zone root and table location through `f` (see
    /// [`Action::map_locations`]).
    pub fn map_locations(&mut self, f: &dyn Fn(&str) -> String) {
        for zone in self.zones.values_mut() {
            zone.root = f(&zone.root);
        }
        for entry in self.tables.values_mut().flat_map(BTreeMap::values_mut) {
            entry.location = f(&entry.location);
        }
    }

    /// The zone, or an error listing the zones there are.
    pub fn zone(&self, name: &str) -> Result<&ZoneEntry> {
        self.zones.get(name).ok_or_else(|| Error::UnknownZone {
            zone: name.to_string(),
            known: self.zone_names(),
        })
    }

    /// Zone names in the order data moves through them, then any others.
    pub fn zone_names(&self) -> Vec<String> {
        let mut names: Vec<String> = DEFAULT_ZONES
            .iter()
            .filter(|z| self.zones.contains_key(**z))
            .map(|z| z.to_string())
            .collect();
        names.extend(
            self.zones
                .keys()
                .filter(|z| !DEFAULT_ZONES.contains(&z.as_str()))
                .cloned(),
        );
        names
    }

    /// The table, or an error naming what the zone does have.
    pub fn table(&self, zone: &str, name: &str) -> Result<&TableEntry> {
        self.zone(zone)?;
        self.tables
            .get(zone)
            .and_then(|t| t.get(name))
            .ok_or_else(|| Error::TableNotFound {
                zone: zone.to_string(),
                name: name.to_string(),
                available: self.table_names(zone),
            })
    }

    /// Table names of a zone, sorted.
    pub fn table_names(&self, zone: &str) -> Vec<String> {
        self.tables
            .get(zone)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of tables in all zones.
    pub fn table_count(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }
}

/// Checks a table or zone name: lower-case letters, digits and `_`, not starting with a digit.
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty")
    } else if name.len() > 128 {
        Some("the name is longer than 128 characters")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("a name must not start with a digit")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Some("use letters, digits, '_' and '-' only")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}
