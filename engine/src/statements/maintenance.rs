//! Delta table maintenance: `RESTORE TABLE t TO VERSION AS OF n | TIMESTAMP AS OF '…'`,
//! `OPTIMIZE t [WHERE partition = value [AND …]] [ZORDER BY (cols)]` and
//! `VACUUM t [RETAIN n HOURS] [DRY RUN] [FORCE]`.

use std::sync::Arc;

use arrow::array::{BooleanArray, StringArray, UInt64Array};
use deltalake::operations::optimize::OptimizeType;
use deltalake::{FilterOp, FilterValue};

use crate::error::{Error, Result};
use crate::providers::delta::{self, AsOf};
use crate::session::{Output, Session, table_output};
use crate::sql::{AsOfClause, Optimize, Restore, Vacuum, name_parts};
use crate::statements::dml::delta_entry;

pub(crate) async fn restore(session: &Session, restore: &Restore) -> Result<Output> {
    let name = name_parts(&restore.table).join(".");
    let as_of = match &restore.to {
        AsOfClause::Version(v) => AsOf::Version(*v),
        AsOfClause::Timestamp(ts) => AsOf::split_name(&format!("x@t{ts}"))?.1,
    };
    let entry = delta_entry(session, &name, "RESTORE")?;
    let table = delta::load_latest(session.stores(), &entry).await?;
    let latest = table.version().unwrap_or_default();
    let builder = table.restore();
    let builder = match &as_of {
        AsOf::Version(v) => {
            if *v >= latest {
                return Err(Error::Unsupported(format!(
                    "RESTORE {}: version {v} is not older than the latest version, {latest}",
                    entry.qualified_name()
                )));
            }
            builder.with_version_to_restore(*v)
        }
        AsOf::Timestamp(ts) => builder.with_datetime_to_restore(*ts),
        AsOf::Latest => builder,
    };
    let (table, metrics) = builder
        .await
        .map_err(|e| Error::Unsupported(format!("RESTORE {}: {e}", entry.qualified_name())))?;
    Ok(table_output(vec![
        (
            "version",
            Arc::new(UInt64Array::from(vec![table.version().unwrap_or_default()])),
        ),
        (
            "files_removed",
            Arc::new(UInt64Array::from(vec![metrics.num_removed_file as u64])),
        ),
        (
            "files_restored",
            Arc::new(UInt64Array::from(vec![metrics.num_restored_file as u64])),
        ),
    ]))
}

pub(crate) async fn optimize(session: &Session, optimize: &Optimize) -> Result<Output> {
    let name = name_parts(&optimize.table).join(".");
    let entry = delta_entry(session, &name, "OPTIMIZE")?;
    let partitions: Vec<&str> = entry
        .partition_columns
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    for (column, _) in &optimize.filters {
        if !partitions.contains(&column.as_str()) {
            return Err(Error::Unsupported(format!(
                "OPTIMIZE … WHERE takes partition columns only, and {column} is not one of {}'s ({})",
                entry.qualified_name(),
                if partitions.is_empty() {
                    "it has none".to_string()
                } else {
                    partitions.join(", ")
                }
            )));
        }
    }
    let filters = &optimize.filters;
    let zorder = optimize.zorder.clone();
    let table = delta::load_latest(session.stores(), &entry).await?;
    let literals: Vec<(&str, FilterOp, FilterValue<'_>)> = filters
        .iter()
        .map(|(c, v)| (c.as_str(), FilterOp::Eq, FilterValue::Scalar(v.as_str())))
        .collect();
    let mut builder = table.optimize().with_filters(&literals);
    if !zorder.is_empty() {
        builder = builder.with_type(OptimizeType::ZOrder(zorder));
    }
    let (_, metrics) = builder
        .await
        .map_err(|e| Error::Unsupported(format!("OPTIMIZE {}: {e}", entry.qualified_name())))?;
    Ok(table_output(vec![
        (
            "files_added",
            Arc::new(UInt64Array::from(vec![metrics.num_files_added])),
        ),
        (
            "files_removed",
            Arc::new(UInt64Array::from(vec![metrics.num_files_removed])),
        ),
        (
            "partitions_optimized",
            Arc::new(UInt64Array::from(vec![metrics.partitions_optimized])),
        ),
    ]))
}

pub(crate) async fn vacuum(session: &Session, vacuum: &Vacuum) -> Result<Output> {
    let name = name_parts(&vacuum.table).join(".");
    if let Ok((zone, table)) =
        session.resolve(&datafusion::common::TableReference::from(name.as_str()))
        && let Ok(entry) = session
            .catalog()
            .snapshot()
            .table(&zone, &table.to_ascii_lowercase())
        && entry.format == strata_catalog::TableFormat::Parquet
        && zone != strata_catalog::RAW_ZONE
    {
        return vacuum_parquet(session, &entry.clone(), vacuum).await;
    }
    let entry = delta_entry(session, &name, "VACUUM")?;
    let (retain, dry_run, force) = (vacuum.retain_hours, vacuum.dry_run, vacuum.force);
    let table = delta::load_latest(session.stores(), &entry).await?;
    let mut builder = table
        .vacuum()
        .with_dry_run(dry_run)
        .with_enforce_retention_duration(!force);
    if let Some(hours) = retain {
        builder = builder.with_retention_period(chrono::Duration::hours(hours));
    }
    let (_, metrics) = builder.await.map_err(|e| {
        Error::Unsupported(format!(
            "VACUUM {}: {e}. A retention shorter than the table's (7 days unless set) can break time travel and readers of older versions; add FORCE to do it anyway",
            entry.qualified_name()
        ))
    })?;
    Ok(table_output(vec![
        (
            "files_deleted",
            Arc::new(UInt64Array::from(vec![metrics.files_deleted.len() as u64])),
        ),
        (
            "dry_run",
            Arc::new(BooleanArray::from(vec![metrics.dry_run])),
        ),
        (
            "files",
            Arc::new(StringArray::from(vec![metrics.files_deleted.join(", ")])),
        ),
    ]))
}

/// How old a file no entry lists must be before VACUUM of a Parquet table removes it, unless
/// `RETAIN n HOURS` says otherwise: a write in progress has files no entry lists yet.
const PARQUET_RETAIN_HOURS: i64 = 1;

/// `VACUUM` of a Parquet table strata writes: removes the files in its folder that its entry
/// does not list (left by writes killed before their commit, or replaced by writes killed
/// before removing them) and staging folders of writers that are gone, all older than the
/// retention. A table that does not list its files has only its staging folders removed.
async fn vacuum_parquet(
    session: &Session,
    entry: &strata_catalog::TableEntry,
    vacuum: &Vacuum,
) -> Result<Output> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let hours = vacuum.retain_hours.unwrap_or(PARQUET_RETAIN_HOURS).max(0);
    let cutoff = chrono::Utc::now() - chrono::Duration::hours(hours);
    let url = url::Url::parse(&entry.location)
        .map_err(|e| Error::Unsupported(format!("bad location {}: {e}", entry.location)))?;
    let store = session.store_for(&url)?;
    let root = crate::providers::stores::url_path(&url)?;
    let listed: std::collections::HashSet<String> = entry
        .files
        .iter()
        .flatten()
        .map(|f| f.path.clone())
        .collect();
    let files: Vec<object_store::ObjectMeta> = store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|e| Error::DataFusion(e.into()))?;
    let grace = std::time::Duration::from_secs(u64::try_from(hours).unwrap_or(0) * 3600);
    let local = url.scheme() == "file";
    let mut deleted = vec![];
    let mut staging_folders = std::collections::BTreeSet::new();
    for f in files {
        let relative = crate::providers::fileset::relative(&root, &f.location);
        let first = relative.split('/').next().unwrap_or_default();
        let doomed = if first.starts_with(crate::providers::staging::STAGING_PREFIX) {
            let dead = crate::providers::staging::staging_is_dead(first, local, grace)
                && f.last_modified <= cutoff;
            if dead {
                staging_folders.insert(first.to_string());
            }
            dead
        } else if first.starts_with('_') || first.starts_with('.') {
            false
        } else {
            entry.files.is_some() && !listed.contains(&relative) && f.last_modified <= cutoff
        };
        if doomed {
            if !vacuum.dry_run {
                store
                    .delete(&f.location)
                    .await
                    .map_err(|e| Error::DataFusion(e.into()))?;
            }
            deleted.push(relative);
        }
    }
    if !vacuum.dry_run {
        for folder in &staging_folders {
            let path = crate::providers::fileset::join(&root, folder);
            crate::providers::staging::remove_folder(&store, &path, local).await;
        }
        // Staging folders left empty (their files moved out before the writer died).
        for name in
            crate::providers::staging::remove_staging_older_than(&store, &root, local, grace).await
        {
            if !staging_folders.contains(&name) {
                deleted.push(format!("{name}/"));
            }
        }
        session.stores().invalidate_listings();
    }
    Ok(table_output(vec![
        (
            "files_deleted",
            Arc::new(UInt64Array::from(vec![deleted.len() as u64])),
        ),
        (
            "dry_run",
            Arc::new(BooleanArray::from(vec![vacuum.dry_run])),
        ),
        (
            "files",
            Arc::new(StringArray::from(vec![deleted.join(", ")])),
        ),
    ]))
}
