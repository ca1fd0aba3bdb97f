//! Generated benchmark tables (TPC-H, the Star Schema Benchmark) written into a zone and
//! registered: the part the generators share. A generator hands over its tables as
//! [`Source`]s (a schema and a deterministic batch iterator); this module streams the batches
//! through the session's object store, so a warehouse on S3 works as a local one does and
//! memory stays flat whatever the scale factor:
//!
//! - Parquet: one `ParquetWriter` over an object-store `BufWriter` (a multipart upload)
//!   per file, with each column's distinct count in its statistics, hive `year=YYYY/`
//!   folders when partitioned, then `CREATE OR REPLACE EXTERNAL TABLE`;
//! - JSON: NDJSON files the same way, registered as raw files are (schema inferred on read);
//! - Delta: the batches as a streaming table, written by `CREATE OR REPLACE TABLE … STORED AS
//!   DELTA [PARTITIONED BY (year)] AS SELECT`, the engine's own Delta write path.
//!
//! Each table records how it was made (suite, scale factor, format, partitioning) in its
//! catalog options under [`GENERATED_BY`], so a benchmark can tell whether the tables a zone
//! holds are the ones it asks for.

pub mod ssb;
pub mod tpch;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::TableReference;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use strata_catalog::{Action, RAW_ZONE};
use url::Url;

use crate::error::{Error, Result};
use crate::formats::distinct_counts::ParquetWriter;
use crate::session::Session;

/// Catalog option that records how a generated table was made, e.g.
/// `tpch sf=1 format=parquet partitioned=false`.
pub const GENERATED_BY: &str = "generated_by";

/// The partition column of tables partitioned by year.
pub const YEAR_COLUMN: &str = "year";

/// Smallest and largest scale factors accepted.
pub const SCALE_FACTORS: (f64, f64) = (0.01, 100.0);

/// A file is closed and the next one started after this many rows, so that no single
/// object grows without bound at large scale factors.
const ROWS_PER_FILE: u64 = 10_000_000;

/// Rows per Parquet row group: small enough that a writer per open partition holds little.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Batches generated ahead of the writer.
const BATCHES_AHEAD: usize = 4;

/// Called with a table's name and the rows generated so far.
pub type Progress = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// A generator's batches.
pub type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>;

/// How generated tables are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    Parquet,
    Delta,
    Json,
}

impl FromStr for GenFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" => Ok(Self::Parquet),
            "delta" => Ok(Self::Delta),
            "json" | "ndjson" => Ok(Self::Json),
            other => Err(Error::Unsupported(format!(
                "unknown format '{other}'; generated tables are parquet, delta or json"
            ))),
        }
    }
}

impl fmt::Display for GenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Parquet => "parquet",
            Self::Delta => "delta",
            Self::Json => "json",
        })
    }
}

/// One table a generator makes.
#[derive(Clone)]
pub struct Source {
    pub name: &'static str,
    pub schema: SchemaRef,
    /// Makes the table's batches from the first row (generation is deterministic).
    pub batches: Arc<dyn Fn() -> Batches + Send + Sync>,
    /// The date column whose year partitions the table when partitioning is asked for:
    /// a `Date32`, or an integer `yyyymmdd`.
    pub year_of: Option<&'static str>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("year_of", &self.year_of)
            .finish()
    }
}

/// What to generate, and where.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The benchmark: `tpch` or `ssb`.
    pub suite: &'static str,
    pub sf: f64,
    pub zone: String,
    pub format: GenFormat,
    /// Partition the tables that have a [`Source::year_of`] by year.
    pub partitioned: bool,
}

impl Generation {
    /// The [`GENERATED_BY`] text of the tables this makes.
    pub fn marker(&self) -> String {
        format!(
            "{} sf={} format={} partitioned={}",
            self.suite, self.sf, self.format, self.partitioned
        )
    }
}

/// What [`GENERATED_BY`] says about a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub suite: String,
    pub sf: f64,
    pub format: GenFormat,
    pub partitioned: bool,
}

impl Generated {
    /// Parses a [`GENERATED_BY`] text.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let suite = words.next()?.to_string();
        let mut fields = BTreeMap::new();
        for word in words {
            let (k, v) = word.split_once('=')?;
            fields.insert(k, v);
        }
        Some(Self {
            suite,
            sf: fields.get("sf")?.parse().ok()?,
            format: fields.get("format")?.parse().ok()?,
            partitioned: fields.get("partitioned")?.parse().ok()?,
        })
    }
}

/// How the tables of a suite in a zone were generated: `None` unless every one of them is
/// there and they were all made together.
pub fn generated(session: &Session, zone: &str, tables: &[&str]) -> Option<Generated> {
    let snapshot = session.catalog().snapshot();
    let mut found: Option<Generated> = None;
    for table in tables {
        let entry = snapshot.table(zone, table).ok()?;
        let this = Generated::parse(entry.options.get(GENERATED_BY)?)?;
        match &found {
            Some(first) if *first != this => return None,
            _ => found = Some(this),
        }
    }
    found
}

/// Refuses scale factors outside [`SCALE_FACTORS`].
pub fn check_scale_factor(sf: f64) -> Result<()> {
    let (low, high) = SCALE_FACTORS;
    if !(sf.is_finite() && (low..=high).contains(&sf)) {
        return Err(Error::Unsupported(format!(
            "scale factor {sf} is out of range; use {low} to {high}"
        )));
    }
    Ok(())
}

impl Generation {
    /// Generates `sources` into the zone and registers them, replacing tables of the same
    /// names (and whatever their folders held). `progress` is called with the table and the
    /// rows generated so far. Returns the rows of each table.
    pub async fn run(
        &self,
        session: &Session,
        sources: Vec<Source>,
        progress: Progress,
    ) -> Result<Vec<(String, u64)>> {
        generate(session, self, sources, progress).await
    }
}

async fn generate(
    session: &Session,
    generation: &Generation,
    sources: Vec<Source>,
    progress: Progress,
) -> Result<Vec<(String, u64)>> {
    check_scale_factor(generation.sf)?;
    let zone = generation.zone.as_str();
    if zone == RAW_ZONE && generation.format == GenFormat::Delta {
        return Err(Error::ReadOnlyZone {
            table: format!("{zone}.{}", sources.first().map_or("", |s| s.name)),
            statement: format!("{} gen --format delta", generation.suite),
        });
    }
    refuse_foreign_tables(session, generation, &sources)?;
    let root = session.catalog().snapshot().zone(zone)?.root.clone();
    let mut written = vec![];
    for source in &sources {
        let location = format!("{root}{}/", source.name);
        let url = Url::parse(&location)
            .map_err(|e| Error::Unsupported(format!("bad location {location}: {e}")))?;
        let store = session.store_for(&url)?;
        let prefix = crate::providers::stores::url_path(&url)?;
        // The old entry goes first: once its files are gone it could not even be read to
        // be replaced.
        session
            .sql(&format!("DROP TABLE IF EXISTS {zone}.\"{}\"", source.name))
            .await?;
        clear(&store, &prefix).await?;
        let partitioned = generation.partitioned && source.year_of.is_some();
        let rows = match generation.format {
            GenFormat::Delta => {
                write_delta(session, generation, source, partitioned, &progress).await?
            }
            format => {
                let rows =
                    write_files(&store, &prefix, source, format, partitioned, &progress).await?;
                let stored_as = if format == GenFormat::Json {
                    "JSON"
                } else {
                    "PARQUET"
                };
                session
                    .sql(&format!(
                        "CREATE OR REPLACE EXTERNAL TABLE {zone}.\"{}\" STORED AS {stored_as} LOCATION '{location}'",
                        source.name
                    ))
                    .await?;
                rows
            }
        };
        written.push((source.name.to_string(), rows));
    }
    record_generation(session, generation, &sources).await?;
    Ok(written)
}

/// Refuses to replace tables this suite's generator did not make: a table of the user's own,
/// or another suite's (TPC-H and SSB both have `part`, `supplier` and `customer`, with other
/// columns), whose data would be lost. Tables the same suite made are regenerated in place.
fn refuse_foreign_tables(
    session: &Session,
    generation: &Generation,
    sources: &[Source],
) -> Result<()> {
    let zone = generation.zone.as_str();
    let snapshot = session.catalog().snapshot();
    let mut foreign = vec![];
    for source in sources {
        let Ok(entry) = snapshot.table(zone, source.name) else {
            continue;
        };
        match entry
            .options
            .get(GENERATED_BY)
            .and_then(|text| Generated::parse(text))
        {
            Some(made) if made.suite == generation.suite => {}
            Some(made) => foreign.push(format!(
                "{zone}.{} (made by `{} gen`)",
                source.name, made.suite
            )),
            None => foreign.push(format!("{zone}.{} (not generated)", source.name)),
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "`{suite} gen` would replace {tables}; generate into another zone with --zone, or drop \
         {them} first",
        suite = generation.suite,
        tables = foreign.join(", "),
        them = if foreign.len() == 1 { "it" } else { "them" },
    )))
}

/// Notes in each table's catalog entry how it was made.
async fn record_generation(
    session: &Session,
    generation: &Generation,
    sources: &[Source],
) -> Result<()> {
    let marker = generation.marker();
    let zone = generation.zone.clone();
    let names: Vec<&str> = sources.iter().map(|s| s.name).collect();
    session
        .catalog()
        .commit(
            &format!("{} GEN {zone}", generation.suite.to_uppercase()),
            |state| {
                let mut actions = vec![];
                for name in &names {
                    let mut entry = state.table(&zone, name)?.clone();
                    entry
                        .options
                        .insert(GENERATED_BY.to_string(), marker.clone());
                    // The statement that wrote it read a stream that is gone; the generator
                    // is its source.
                    entry.lineage = None;
                    entry.sources = vec![];
                    actions.push(Action::PutTable(Box::new(entry)));
                }
                Ok(actions)
            },
        )
        .await?;
    Ok(())
}

/// Deletes every object under a table's folder.
async fn clear(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<()> {
    let existing = store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .boxed();
    store
        .delete_stream(existing)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::DataFusion(e.into()))?;
    Ok(())
}

/// The batches of a source, generated on a blocking thread a few batches ahead of the
/// consumer. With `add_year`, each batch gets a [`YEAR_COLUMN`] from the source's date.
fn stream(source: &Source, add_year: bool, progress: &Progress) -> SendableRecordBatchStream {
    let schema = if add_year {
        with_year_field(&source.schema)
    } else {
        Arc::clone(&source.schema)
    };
    let mut builder = RecordBatchReceiverStream::builder(Arc::clone(&schema), BATCHES_AHEAD);
    let tx = builder.tx();
    let make = Arc::clone(&source.batches);
    let year_of = source.year_of.filter(|_| add_year);
    let name = source.name;
    let progress = Arc::clone(progress);
    builder.spawn_blocking(move || {
        let mut rows = 0u64;
        for batch in make() {
            let batch = match (batch, year_of) {
                (Ok(b), Some(column)) => append_year(&b, column, &schema),
                (Ok(b), None) => Ok(b),
                (Err(e), _) => Err(Error::from(e)),
            };
            if let Ok(b) = &batch {
                rows += b.num_rows() as u64;
                progress(name, rows);
            }
            let failed = batch.is_err();
            // The receiver is gone when the write failed or was cancelled: stop generating.
            if tx.blocking_send(batch.map_err(Into::into)).is_err() || failed {
                break;
            }
        }
        Ok(())
    });
    builder.build()
}

fn with_year_field(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(YEAR_COLUMN, DataType::Int32, false)));
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The year of each row of a date column (`Date32` or integer `yyyymmdd`).
fn years(batch: &RecordBatch, column: &str) -> Result<Int32Array> {
    let dates = batch
        .column_by_name(column)
        .ok_or_else(|| Error::Unsupported(format!("generated data has no column {column}")))?;
    match dates.data_type() {
        DataType::Int32 => Ok(dates.as_primitive::<Int32Type>().unary(|d| d / 10_000)),
        _ => {
            let years = arrow::compute::kernels::temporal::date_part(
                dates.as_ref(),
                arrow::compute::kernels::temporal::DatePart::Year,
            )?;
            Ok(years.as_primitive::<Int32Type>().clone())
        }
    }
}

fn append_year(batch: &RecordBatch, column: &str, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(years(batch, column)?));
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// Splits a batch by the year of a date column.
fn split_by_year(batch: &RecordBatch, column: &str) -> Result<Vec<(i32, RecordBatch)>> {
    use arrow::compute::kernels::cmp::eq;
    let years = years(batch, column)?;
    let mut distinct: Vec<i32> = years.iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if let [only] = distinct.as_slice() {
        return Ok(vec![(*only, batch.clone())]);
    }
    let mut out = vec![];
    for year in distinct {
        let mask = eq(&years, &Int32Array::new_scalar(year))?;
        out.push((year, arrow::compute::filter_record_batch(batch, &mask)?));
    }
    Ok(out)
}

/// Writes a source as Parquet or NDJSON files under `prefix`; returns the rows written.
async fn write_files(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    source: &Source,
    format: GenFormat,
    partitioned: bool,
    progress: &Progress,
) -> Result<u64> {
    let mut batches = stream(source, false, progress);
    let mut files = Files {
        store: Arc::clone(store),
        prefix: prefix.clone(),
        format,
        schema: Arc::clone(&source.schema),
        open: BTreeMap::new(),
    };
    let mut rows = 0u64;
    let result: Result<()> = async {
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            match source.year_of.filter(|_| partitioned) {
                Some(column) => {
                    for (year, part) in split_by_year(&batch, column)? {
                        files.write(Some(year), &part).await?;
                    }
                }
                None => files.write(None, &batch).await?,
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            files.close().await?;
            Ok(rows)
        }
        Err(e) => {
            files.abort().await;
            Err(e)
        }
    }
}

/// The open file of each partition folder (or the one of an unpartitioned table).
struct Files {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    format: GenFormat,
    schema: SchemaRef,
    open: BTreeMap<Option<i32>, OpenFile>,
}

struct OpenFile {
    writer: FileWriter,
    rows: u64,
    /// The number of this file in its folder.
    index: u32,
}

enum FileWriter {
    Parquet(Box<ParquetWriter>),
    Json(Box<BufWriter>),
}

impl FileWriter {
    async fn close(self) -> Result<()> {
        match self {
            FileWriter::Parquet(w) => {
                w.close().await.map_err(parquet_error)?;
            }
            FileWriter::Json(mut w) => {
                tokio::io::AsyncWriteExt::shutdown(w.as_mut())
                    .await
                    .map_err(|e| Error::Unsupported(format!("writing NDJSON: {e}")))?;
            }
        }
        Ok(())
    }

    async fn abort(self) {
        match self {
            FileWriter::Parquet(w) => w.abort().await,
            FileWriter::Json(mut w) => {
                let _ = w.abort().await;
            }
        }
    }
}

impl Files {
    fn open_file(&self, year: Option<i32>, index: u32) -> Result<FileWriter> {
        let extension = match self.format {
            GenFormat::Json => "ndjson",
            _ => "parquet",
        };
        let file = format!("part-{index}.{extension}");
        let path = match year {
            Some(y) => self
                .prefix
                .clone()
                .join(format!("{YEAR_COLUMN}={y}"))
                .join(file),
            None => self.prefix.clone().join(file),
        };
        let out = BufWriter::new(Arc::clone(&self.store), path);
        Ok(match self.format {
            GenFormat::Json => FileWriter::Json(Box::new(out)),
            _ => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                let writer =
                    ParquetWriter::try_new(out, Arc::clone(&self.schema), props, ROW_GROUP_ROWS)
                        .map_err(parquet_error)?;
                FileWriter::Parquet(Box::new(writer))
            }
        })
    }

    async fn write(&mut self, year: Option<i32>, batch: &RecordBatch) -> Result<()> {
        let full = self
            .open
            .get(&year)
            .is_some_and(|f| f.rows >= ROWS_PER_FILE);
        if full && let Some(done) = self.open.remove(&year) {
            let index = done.index + 1;
            done.writer.close().await?;
            let writer = self.open_file(year, index)?;
            self.open.insert(
                year,
                OpenFile {
                    writer,
                    rows: 0,
                    index,
                },
            );
        }
        if !self.open.contains_key(&year) {
            let writer = self.open_file(year, 0)?;
            self.open.insert(
                year,
                OpenFile {
                    writer,
                    rows: 0,
                    index: 0,
                },
            );
        }
        let Some(file) = self.open.get_mut(&year) else {
            return Ok(());
        };
        file.rows += batch.num_rows() as u64;
        match &mut file.writer {
            FileWriter::Parquet(w) => w.write(batch).await.map_err(parquet_error)?,
            FileWriter::Json(w) => {
                let mut lines = arrow_json::LineDelimitedWriter::new(Vec::new());
                lines.write(batch)?;
                lines.finish()?;
                w.put(lines.into_inner().into())
                    .await
                    .map_err(|e| Error::DataFusion(e.into()))?;
            }
        }
        Ok(())
    }

    async fn close(self) -> Result<()> {
        for (_, file) in self.open {
            file.writer.close().await?;
        }
        Ok(())
    }

    async fn abort(self) {
        for (_, file) in self.open {
            file.writer.abort().await;
        }
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> Error {
    Error::Unsupported(format!("writing Parquet: {e}"))
}

/// A source as a one-partition streaming table, for a `CREATE TABLE … AS SELECT`.
struct SourceStream {
    source: Source,
    schema: SchemaRef,
    add_year: bool,
    progress: Progress,
    rows: Arc<AtomicU64>,
}

impl fmt::Debug for SourceStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceStream({})", self.source.name)
    }
}

impl PartitionStream for SourceStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rows = Arc::clone(&self.rows);
        let report = Arc::clone(&self.progress);
        let progress: Progress = Arc::new(move |table: &str, n: u64| {
            rows.store(n, Ordering::Relaxed);
            report(table, n);
        });
        stream(&self.source, self.add_year, &progress)
    }
}

/// Writes a source as a Delta table through `CREATE OR REPLACE TABLE … STORED AS DELTA AS
/// SELECT` over a session-local streaming table; returns the rows written.
async fn write_delta(
    session: &Session,
    generation: &Generation,
    source: &Source,
    partitioned: bool,
    progress: &Progress,
) -> Result<u64> {
    let zone = generation.zone.as_str();
    let rows = Arc::new(AtomicU64::new(0));
    let schema = if partitioned {
        with_year_field(&source.schema)
    } else {
        Arc::clone(&source.schema)
    };
    let partition = SourceStream {
        source: source.clone(),
        schema: Arc::clone(&schema),
        add_year: partitioned,
        progress: Arc::clone(progress),
        rows: Arc::clone(&rows),
    };
    let table = StreamingTable::try_new(schema, vec![Arc::new(partition)])?;
    let staging = format!("{}gen_{}", generation.suite, source.name);
    let reference = TableReference::partial(zone, staging.as_str());
    session
        .context()
        .register_table(reference.clone(), Arc::new(table))?;
    let partition_by = if partitioned {
        format!(" PARTITIONED BY ({YEAR_COLUMN})")
    } else {
        String::new()
    };
    let written = session
        .sql(&format!(
            "CREATE OR REPLACE TABLE {zone}.\"{}\" STORED AS DELTA{partition_by} AS SELECT * FROM {zone}.\"{staging}\"",
            source.name
        ))
        .await;
    session.context().deregister_table(reference)?;
    written?;
    Ok(rows.load(Ordering::Relaxed))
}

/// The data files of a registered table (Parquet and NDJSON files, Delta's included, its
/// log left out) and the object-store prefix they are under.
pub async fn table_files(session: &Session, zone: &str, name: &str) -> Result<(Path, u64)> {
    let entry = session.catalog().snapshot().table(zone, name)?.clone();
    let url = Url::parse(&entry.location).map_err(|e| {
        Error::Unsupported(format!(
            "{} has an invalid location '{}': {e}",
            entry.qualified_name(),
            entry.location
        ))
    })?;
    let store = session.store_for(&url)?;
    let prefix = crate::providers::stores::url_path(&url)?;
    let files = store
        .list(Some(&prefix))
        .try_filter(|meta| futures::future::ready(is_data_file(&prefix, &meta.location)))
        .try_fold(0u64, |n, _| futures::future::ready(Ok(n + 1)))
        .await
        .map_err(|e| Error::DataFusion(e.into()))?;
    Ok((prefix, files))
}

/// Whether an object under a table's folder is one of its data files (not a log, checkpoint
/// or hidden file).
pub fn is_data_file(table: &Path, path: &Path) -> bool {
    let Some(parts) = path.prefix_match(table) else {
        return false;
    };
    let parts: Vec<_> = parts.collect();
    let hidden = parts
        .iter()
        .any(|p| p.as_ref().starts_with('_') || p.as_ref().starts_with('.'));
    !parts.is_empty()
        && !hidden
        && crate::formats::infer::format_of(path.filename().unwrap_or_default()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        let generation = Generation {
            suite: "ssb",
            sf: 0.01,
            zone: "processed".into(),
            format: GenFormat::Delta,
            partitioned: true,
        };
        let parsed = Generated::parse(&generation.marker()).expect("marker");
        assert_eq!(
            parsed,
            Generated {
                suite: "ssb".into(),
                sf: 0.01,
                format: GenFormat::Delta,
                partitioned: true
            }
        );
        assert!(check_scale_factor(0.01).is_ok());
        assert!(check_scale_factor(100.0).is_ok());
        assert!(check_scale_factor(0.001).is_err());
        assert!(check_scale_factor(1000.0).is_err());
        assert!(check_scale_factor(f64::NAN).is_err());
    }

    #[tokio::test]
    async fn tables_the_generator_did_not_make_are_not_replaced() {
        let (_dir, session) = crate::test_support::scratch_session().await;
        let generation = |suite, zone: &str| Generation {
            suite,
            sf: 0.01,
            zone: zone.into(),
            format: GenFormat::Parquet,
            partitioned: false,
        };
        let nothing = || Arc::new(|_: &str, _: u64| {}) as Progress;
        // A table of the user's own, named as one of TPC-H's.
        session
            .sql("CREATE TABLE processed.nation AS SELECT 7 AS mine")
            .await
            .expect("own table");
        let refused = generation("tpch", "processed")
            .run(&session, crate::datagen::tpch::sources(0.01), nothing())
            .await
            .expect_err("replaces the user's table");
        let message = refused.to_string();
        assert!(
            message.contains("processed.nation (not generated)"),
            "{message}"
        );
        assert!(message.contains("--zone"), "{message}");
        // Nothing was touched: the user's table reads as before, and no TPC-H table exists.
        let batches = session
            .sql("SELECT mine FROM processed.nation")
            .await
            .expect("still there");
        let values = arrow::util::pretty::pretty_format_batches(&batches).expect("format");
        assert!(values.to_string().contains('7'), "{values}");
        assert!(
            session
                .catalog()
                .snapshot()
                .table("processed", "region")
                .is_err()
        );
        // TPC-H in another zone, then SSB there: SSB's part, supplier and customer would
        // replace TPC-H's.
        generation("tpch", "curated")
            .run(&session, crate::datagen::tpch::sources(0.01), nothing())
            .await
            .expect("tpch gen");
        let refused = generation("ssb", "curated")
            .run(&session, crate::datagen::ssb::sources(0.01), nothing())
            .await
            .expect_err("replaces TPC-H's tables");
        let message = refused.to_string();
        for table in ["customer", "supplier", "part"] {
            assert!(
                message.contains(&format!("curated.{table} (made by `tpch gen`)")),
                "{message}"
            );
        }
        assert!(!message.contains("lineorder"), "{message}");
    }

    #[test]
    fn data_files_leave_logs_out() {
        let table = Path::from(".tmp/w/t");
        let file = |f: &str| is_data_file(&table, &Path::from(format!(".tmp/w/t/{f}")));
        assert!(file("year=1992/part-0.parquet"));
        assert!(file("part-0.ndjson"));
        assert!(!file("_delta_log/00000000000000000000.json"));
        assert!(!file(".part-0.parquet.crc"));
        assert!(!is_data_file(
            &table,
            &Path::from(".tmp/w/t2/part-0.parquet")
        ));
    }
}
