//! The catalog side of table statements: CREATE EXTERNAL TABLE (find the files, their format,
//! partitions and schema, then commit the entry), DROP TABLE, REFRESH TABLE and REFRESH ZONE
//! (every folder under a zone root becomes a table). Files are only read here; the catalog
//! commit comes last, so a failure leaves the catalog as it was.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{Field, Schema};
use datafusion::logical_expr::{CreateExternalTable, Expr, SortExpr};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use strata_catalog::{Action, PartitionColumn, TableEntry, TableFormat, validate_name};
use url::Url;

use crate::error::{Error, Result};
use crate::formats::infer::{self, DEFAULT_INFER_RECORDS};
use crate::providers::stores::url_path;
use crate::providers::table::{
    OPT_FILE_EXTENSION, OPT_INFER_RECORDS, OPT_SKIP_MALFORMED, OPT_SORT_ORDER, SortColumn,
    StrataTable, entry_schema, file_format, option_flag,
};
use crate::session::{Output, Session, table_output};

/// `CREATE EXTERNAL TABLE zone.name STORED AS … LOCATION '…' [PARTITIONED BY (…)] [OPTIONS (…)]`.
pub(crate) async fn create_external_table(
    session: &Session,
    cmd: &CreateExternalTable,
) -> Result<Output> {
    let (zone, name) = session.resolve(&cmd.name)?;
    validate_name(&name)?;
    session.catalog().snapshot().zone(&zone)?;
    let qualified = format!("{zone}.{name}");
    let format: TableFormat = cmd
        .file_type
        .parse()
        .map_err(|_| Error::UnsupportedFormat {
            table: qualified.clone(),
            format: cmd.file_type.clone(),
        })?;
    let location = match cmd.locations.as_slice() {
        [one] if !one.trim().is_empty() => one.trim().to_string(),
        [] | [_] => {
            return Err(Error::EmptyLocation {
                location: String::new(),
                reason: "is empty".into(),
            });
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "{qualified}: give one LOCATION (a folder holds many files)"
            )));
        }
    };
    session.admit_location(&location)?;
    let exists = session.catalog().snapshot().table(&zone, &name).is_ok();
    if exists && cmd.if_not_exists && !cmd.or_replace {
        return Ok(Output::Done(format!(
            "{qualified} already exists; left as it is"
        )));
    }
    let mut options: BTreeMap<String, String> = cmd
        .options
        .iter()
        .map(|(k, v)| {
            // DataFusion files unknown keys under `format.`; strata's keys are plain.
            let k = k.to_ascii_lowercase();
            let k = k.strip_prefix("format.").map(str::to_string).unwrap_or(k);
            (k, v.clone())
        })
        .collect();
    let url = location_url(session, &location).await?;
    let mut entry = TableEntry::new(&zone, &name, format, url.as_str());
    let declared: Vec<Field> = cmd
        .schema
        .fields()
        .iter()
        .filter(|f| !cmd.table_partition_cols.contains(f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    let inferred = inspect(
        session,
        &mut entry,
        &mut options,
        (!declared.is_empty()).then(|| Schema::new(declared)),
    )
    .await?;
    if !cmd.table_partition_cols.is_empty() {
        let discovered: Vec<&str> = entry
            .partition_columns
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let declared: Vec<&str> = cmd
            .table_partition_cols
            .iter()
            .map(String::as_str)
            .collect();
        if discovered != declared {
            return Err(Error::Unsupported(format!(
                "{qualified} is declared PARTITIONED BY ({}) but its folders are partitioned by ({}); partition columns are found from key=value folders, so PARTITIONED BY may be left out",
                declared.join(", "),
                if discovered.is_empty() {
                    "nothing".to_string()
                } else {
                    discovered.join(", ")
                }
            )));
        }
    }
    entry.options = options;
    if let Some(order) = declared_order(&entry, &cmd.order_exprs)? {
        entry.options.insert(OPT_SORT_ORDER.to_string(), order);
    }
    let summary = inferred.summary(&entry);
    let or_replace = cmd.or_replace;
    let new_entry = entry.clone();
    session
        .catalog()
        .commit(&format!("CREATE EXTERNAL TABLE {qualified}"), |state| {
            if state.table(&zone, &name).is_ok() && !or_replace {
                return Err(strata_catalog::Error::TableExists {
                    zone: zone.clone(),
                    name: name.clone(),
                });
            }
            Ok(vec![Action::PutTable(Box::new(new_entry.clone()))])
        })
        .await?;
    Ok(Output::Done(format!("registered {qualified}: {summary}")))
}

/// The `WITH ORDER (…)` of a CREATE EXTERNAL TABLE as the [`OPT_SORT_ORDER`] option: plain
/// columns of the table, each with its direction. `None` when no order is declared.
fn declared_order(entry: &TableEntry, orders: &[Vec<SortExpr>]) -> Result<Option<String>> {
    let qualified = entry.qualified_name();
    let order = match orders {
        [] => return Ok(None),
        [one] => one,
        _ => {
            return Err(Error::Unsupported(format!(
                "{qualified}: give one WITH ORDER (…) clause"
            )));
        }
    };
    if entry.format == TableFormat::Delta {
        return Err(Error::Unsupported(format!(
            "{qualified} is a Delta table; WITH ORDER declares the order of a table of files"
        )));
    }
    let mut columns: Vec<String> = entry_schema(entry)?
        .map(|s| s.fields().iter().map(|f| f.name().clone()).collect())
        .unwrap_or_default();
    columns.extend(entry.partition_columns.iter().map(|p| p.name.clone()));
    let mut parts = vec![];
    for sort in order {
        let name = match &sort.expr {
            Expr::Column(c) => c.name.clone(),
            other => {
                return Err(Error::Unsupported(format!(
                    "{qualified}: WITH ORDER takes column names, not {other}"
                )));
            }
        };
        if !columns.contains(&name) {
            return Err(Error::Unsupported(format!(
                "{qualified} has no column {name} to order by; its columns are {}",
                columns.join(", ")
            )));
        }
        if name.contains(|c: char| c.is_whitespace() || c == ',') {
            return Err(Error::Unsupported(format!(
                "{qualified}: WITH ORDER takes plain column names; \"{name}\" holds a space or a comma"
            )));
        }
        parts.push(
            SortColumn {
                name,
                asc: sort.asc,
                nulls_first: sort.nulls_first,
            }
            .to_string(),
        );
    }
    Ok(Some(parts.join(", ")))
}

/// `DROP TABLE [IF EXISTS] zone.name`: removes the entry; the files stay where they are.
pub(crate) async fn drop_table(
    session: &Session,
    zone: &str,
    name: &str,
    if_exists: bool,
) -> Result<Output> {
    let mut missing = false;
    session
        .catalog()
        .commit(&format!("DROP TABLE {zone}.{name}"), |state| {
            match state.table(zone, name) {
                Ok(_) => Ok(vec![Action::DropTable {
                    zone: zone.to_string(),
                    name: name.to_string(),
                }]),
                Err(_) if if_exists => {
                    missing = true;
                    Ok(vec![])
                }
                Err(e) => Err(e),
            }
        })
        .await?;
    Ok(Output::Done(if missing {
        format!("{zone}.{name} does not exist; nothing dropped")
    } else {
        format!("dropped {zone}.{name} (its files are left in place)")
    }))
}

/// `REFRESH TABLE zone.name`: lists the files again and infers the schema and partitions anew.
pub(crate) async fn refresh_table(session: &Session, zone: &str, name: &str) -> Result<Output> {
    let snapshot = session.catalog().snapshot();
    let old = snapshot.table(zone, name)?.clone();
    let mut entry = old.clone();
    let mut options = entry.options.clone();
    let inferred = inspect(session, &mut entry, &mut options, None).await?;
    entry.options = options;
    entry.updated_at = chrono::Utc::now();
    let summary = inferred.summary(&entry);
    let created_at = old.created_at;
    // A table that lists its files keeps them, and takes in the files other programs put in
    // its folder since (not those of strata writes that never committed).
    let foreign = match &old.files {
        Some(_) => {
            let url = Url::parse(&old.location).map_err(|e| Error::EmptyLocation {
                location: old.location.clone(),
                reason: format!("is not a valid URL ({e})"),
            })?;
            let store = session.store_for(&url)?;
            crate::providers::staging::listed_files(&store, &url_path(&url)?, false).await?
        }
        None => vec![],
    };
    session
        .catalog()
        .commit(&format!("REFRESH TABLE {zone}.{name}"), |state| {
            let current = state.table(zone, name)?;
            let mut e = entry.clone();
            e.created_at = created_at;
            e.lineage = current.lineage.clone();
            e.files = current.files.clone().map(|mut files| {
                files.extend(foreign.iter().cloned());
                files.sort();
                files.dedup_by(|a, b| a.path == b.path);
                files
            });
            Ok(vec![Action::PutTable(Box::new(e))])
        })
        .await?;
    Ok(Output::Done(format!("refreshed {zone}.{name}: {summary}")))
}

/// `REFRESH ZONE z`: every folder under the zone root that is not registered yet becomes a
/// table, its format taken from its files. Returns one row per folder.
pub(crate) async fn refresh_zone(session: &Session, zone: &str) -> Result<Output> {
    let snapshot = session.catalog().snapshot();
    let root = snapshot.zone(zone)?.root.clone();
    let root_url = Url::parse(&root).map_err(|e| {
        Error::Unsupported(format!("zone {zone} has an invalid root '{root}': {e}"))
    })?;
    let store = session.store_for(&root_url)?;
    let prefix = url_path(&root_url)?;
    let listing = store
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|e| Error::DataFusion(e.into()))?;
    let mut names = vec![];
    let mut statuses = vec![];
    let mut formats = vec![];
    let mut new_entries = vec![];
    for folder in listing.common_prefixes {
        let Some(dir) = folder.filename().map(str::to_string) else {
            continue;
        };
        if dir.starts_with('_') || dir.starts_with('.') {
            continue;
        }
        let name = dir.to_ascii_lowercase().replace('-', "_");
        if validate_name(&name).is_err() {
            names.push(dir.clone());
            formats.push(String::new());
            statuses.push("skipped: not a usable table name".to_string());
            continue;
        }
        if snapshot.table(zone, &name).is_ok() {
            names.push(name);
            formats.push(
                snapshot
                    .table(zone, &names[names.len() - 1])
                    .map(|e| e.format.to_string())
                    .unwrap_or_default(),
            );
            statuses.push("already registered".to_string());
            continue;
        }
        let location = format!("{root}{dir}/");
        let format = if is_delta(&store, &folder).await {
            TableFormat::Delta
        } else {
            let files = infer::list_data_files(&store, &folder).await?;
            match infer::detect_format(&location, &files) {
                Ok(f) => f,
                Err(e) => {
                    names.push(name);
                    formats.push(String::new());
                    statuses.push(format!("skipped: {e}"));
                    continue;
                }
            }
        };
        let mut entry = TableEntry::new(zone, &name, format, &location);
        entry.discovered = true;
        let mut options = BTreeMap::new();
        match inspect(session, &mut entry, &mut options, None).await {
            Ok(inferred) => {
                entry.options = options;
                names.push(name);
                formats.push(format.to_string());
                statuses.push(format!("registered: {}", inferred.summary(&entry)));
                new_entries.push(entry);
            }
            Err(e) => {
                names.push(name);
                formats.push(format.to_string());
                statuses.push(format!("skipped: {e}"));
            }
        }
    }
    if !new_entries.is_empty() {
        session
            .catalog()
            .commit(&format!("REFRESH ZONE {zone}"), |state| {
                // Another writer may have registered some of these meanwhile: theirs stand.
                Ok(new_entries
                    .iter()
                    .filter(|e| state.table(&e.zone, &e.name).is_err())
                    .map(|e| Action::PutTable(Box::new(e.clone())))
                    .collect())
            })
            .await?;
    }
    Ok(table_output(vec![
        ("table", Arc::new(StringArray::from(names))),
        ("format", Arc::new(StringArray::from(formats))),
        ("status", Arc::new(StringArray::from(statuses))),
    ]))
}

/// Fills in a written table's partitions, schema and file extension from what is there,
/// and returns a one-line summary.
pub(crate) async fn inspect_table(session: &Session, entry: &mut TableEntry) -> Result<String> {
    let mut options = entry.options.clone();
    let inspected = inspect(session, entry, &mut options, None).await?;
    entry.options = options;
    Ok(inspected.summary(entry))
}

/// What [`inspect`] found.
struct Inspected {
    files: usize,
}

impl Inspected {
    fn summary(&self, entry: &TableEntry) -> String {
        let columns = entry
            .schema
            .as_ref()
            .and_then(|s| s.get("fields"))
            .and_then(|f| f.as_array())
            .map_or(0, Vec::len);
        let mut s = format!(
            "{}, {} file{}, {} column{}",
            entry.format,
            self.files,
            plural(self.files),
            columns,
            plural(columns)
        );
        if !entry.partition_columns.is_empty() {
            let parts: Vec<&str> = entry
                .partition_columns
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            s.push_str(&format!(", partitioned by {}", parts.join(", ")));
        }
        s
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Lists a table's files and fills in its partition columns, file extension and schema
/// (the declared one, or one inferred from the files), then checks the table can be built.
async fn inspect(
    session: &Session,
    entry: &mut TableEntry,
    options: &mut BTreeMap<String, String>,
    declared: Option<Schema>,
) -> Result<Inspected> {
    let url = Url::parse(&entry.location).map_err(|e| Error::EmptyLocation {
        location: entry.location.clone(),
        reason: format!("is not a valid URL ({e})"),
    })?;
    if entry.format == TableFormat::Delta {
        return inspect_delta(session, entry).await;
    }
    let store = session.store_for(&url)?;
    let prefix = url_path(&url)?;
    let files = if entry.location.ends_with('/') {
        infer::list_data_files(&store, &prefix).await?
    } else {
        // A single file.
        match store.head(&prefix).await {
            Ok(meta) => vec![meta],
            Err(_) => vec![],
        }
    };
    if files.is_empty() {
        let exists = any_object(store.list(Some(&prefix))).await;
        return Err(Error::EmptyLocation {
            location: entry.location.clone(),
            reason: if exists {
                "holds no data files".into()
            } else {
                "does not exist".into()
            },
        });
    }
    let wanted: Vec<&ObjectMeta> = files
        .iter()
        .filter(|f| {
            infer::format_of(f.location.filename().unwrap_or_default())
                .is_none_or(|fmt| fmt == entry.format)
        })
        .collect();
    let files: Vec<ObjectMeta> = wanted.into_iter().cloned().collect();
    if !options.contains_key(OPT_FILE_EXTENSION) {
        options.insert(OPT_FILE_EXTENSION.into(), infer::common_extension(&files));
    }
    let partitions = infer::discover_partitions(&entry.location, &prefix, &files)?;
    entry.partition_columns = partitions
        .iter()
        .map(|(name, t)| PartitionColumn {
            name: name.clone(),
            data_type: t.to_string(),
        })
        .collect();
    entry.options = options.clone();
    let file_schema = match declared {
        Some(schema) => schema,
        None => infer_schema(session, entry, &store, &files).await?,
    };
    let file_schema = infer::file_columns(&file_schema, &partitions);
    entry.schema = Some(
        serde_json::to_value(&file_schema)
            .map_err(|e| Error::Unsupported(format!("cannot record the schema: {e}")))?,
    );
    StrataTable::try_new(entry.clone(), session.counters())?;
    Ok(Inspected { files: files.len() })
}

/// A Delta table's schema and partition columns come from its log, latest version.
async fn inspect_delta(session: &Session, entry: &mut TableEntry) -> Result<Inspected> {
    let table = crate::providers::delta::load_latest(session.stores(), entry).await?;
    let snapshot = table
        .snapshot()
        .map_err(crate::providers::delta::delta_error)?;
    let partitions: Vec<String> = snapshot.metadata().partition_columns().to_vec();
    let files = snapshot.log_data().num_files();
    let provider = crate::providers::delta::provider(&table, &entry.qualified_name()).await?;
    let schema = provider.schema();
    entry.partition_columns = partitions
        .iter()
        .map(|p| PartitionColumn {
            name: p.clone(),
            data_type: schema
                .field_with_name(p)
                .map(|f| f.data_type().to_string())
                .unwrap_or_else(|_| "Utf8".into()),
        })
        .collect();
    let file_schema = Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !partitions.contains(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    entry.schema = Some(
        serde_json::to_value(&file_schema)
            .map_err(|e| Error::Unsupported(format!("cannot record the schema: {e}")))?,
    );
    Ok(Inspected { files })
}

async fn infer_schema(
    session: &Session,
    entry: &TableEntry,
    store: &Arc<dyn ObjectStore>,
    files: &[ObjectMeta],
) -> Result<Schema> {
    match entry.format {
        TableFormat::Json => {
            let max = entry
                .options
                .get(OPT_INFER_RECORDS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_INFER_RECORDS);
            infer::infer_json_schema(
                &entry.location,
                store,
                files,
                max,
                option_flag(entry, OPT_SKIP_MALFORMED),
            )
            .await
        }
        _ => {
            let format = file_format(entry, session.counters())?;
            let state = session.context().state();
            let schema = format.infer_schema(&state, store, files).await?;
            Ok(schema.as_ref().clone())
        }
    }
}

async fn is_delta(store: &Arc<dyn ObjectStore>, folder: &Path) -> bool {
    let log = Path::from_iter(folder.parts().chain(std::iter::once("_delta_log".into())));
    any_object(store.list(Some(&log))).await
}

/// A user's location as a URL: folder paths become `file://` URLs ending in `/`; an object
/// store location without a trailing `/` is a folder when no object has that exact name.
async fn location_url(session: &Session, location: &str) -> Result<Url> {
    let mut url = strata_catalog::resolve_url(location).map_err(|reason| Error::EmptyLocation {
        location: location.to_string(),
        reason: format!("is not usable: {reason}"),
    })?;
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        if !path.exists() {
            return Err(Error::EmptyLocation {
                location: location.to_string(),
                reason: "does not exist".into(),
            });
        }
        if path.is_dir() && !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
    } else {
        let store = session.store_for(&url)?;
        let bucket = url.host_str().unwrap_or_default().to_string();
        let explain = |e: object_store::Error| {
            Error::Unsupported(strata_catalog::explain_storage_error(
                &e,
                session.stores().s3(),
                &bucket,
            ))
        };
        if !url.path().ends_with('/') {
            match store.head(&url_path(&url)?).await {
                Ok(_) => return Ok(url),
                Err(object_store::Error::NotFound { .. }) => {
                    let p = format!("{}/", url.path());
                    url.set_path(&p);
                }
                Err(e) => return Err(explain(e)),
            }
        }
        let folder = url_path(&url)?;
        let mut listing = store.list(Some(&folder));
        match futures::StreamExt::next(&mut listing).await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(explain(e)),
            None => {
                return Err(Error::EmptyLocation {
                    location: location.to_string(),
                    reason: "does not exist".into(),
                });
            }
        }
    }
    Ok(url)
}

/// Whether a listing yields anything at all.
async fn any_object(
    mut listing: futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>>,
) -> bool {
    use futures::StreamExt;
    matches!(listing.next().await, Some(Ok(_)))
}
