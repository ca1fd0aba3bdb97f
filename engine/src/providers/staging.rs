//! Staged writes to strata-written Parquet tables: the new files go to a folder of their own
//! under the table (`_strata_staging_…/`, which listings skip), and only a swap moves them in
//! (removing the files of the partitions they replace). Until the swap, the session that
//! wrote them can read the table as it will be (the files that stay plus the staged ones),
//! which is how the checks of a write-audit-publish run see new data that readers do not.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::provider_as_source;
use datafusion::datasource::view::ViewTable;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col, lit};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_catalog::TableEntry;
use url::Url;

use crate::error::{Error, Result};
use crate::providers::metrics::ScanCounters;
use crate::providers::table::{StrataTable, parse_type};

/// What the staged files replace when they are swapped in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Nothing: they are added (INSERT INTO).
    Nothing,
    /// Every file of the table (INSERT OVERWRITE without PARTITION).
    All,
    /// The partition folders the new rows fall in (INSERT OVERWRITE … PARTITION).
    Partitions,
}

/// Files written to a table's staging folder, not yet visible to readers.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The table they belong to, as it was when they were written.
    pub entry: TableEntry,
    store: Arc<dyn ObjectStore>,
    root: Path,
    staging: Path,
    staging_url: String,
    replace: Replace,
    /// The partition folders (relative to the table) the staged files are in.
    folders: BTreeSet<Vec<String>>,
    /// Rows written.
    pub rows: u64,
    /// Whether `entry` is a new entry for the table (CREATE OR REPLACE TABLE … AS), committed
    /// to the catalog when the files are swapped in.
    pub replaces_entry: bool,
}

fn storage_error(e: object_store::Error) -> Error {
    Error::DataFusion(e.into())
}

/// Writes a query's rows as Parquet into a new staging folder of `entry`'s table, in hive
/// partitions by `partition_cols`. Nothing readers see changes. On failure nothing is left
/// behind.
pub(crate) async fn stage(
    store: Arc<dyn ObjectStore>,
    entry: &TableEntry,
    partition_cols: Vec<String>,
    df: datafusion::dataframe::DataFrame,
    replace: Replace,
) -> Result<Staged> {
    let url = Url::parse(&entry.location)
        .map_err(|e| Error::Unsupported(format!("bad location {}: {e}", entry.location)))?;
    let root = crate::providers::stores::url_path(&url)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let staging_name = format!("_strata_staging_{stamp}");
    let staging_url = format!("{}/{staging_name}/", entry.location.trim_end_matches('/'));
    let staging = Path::from_iter(
        root.parts()
            .chain(std::iter::once(staging_name.as_str().into())),
    );
    // A declared file order holds for the new files too.
    let order = crate::providers::table::sort_order(entry)?
        .iter()
        .map(crate::providers::table::SortColumn::to_sort)
        .collect();
    let mut staged = Staged {
        entry: entry.clone(),
        store,
        root,
        staging,
        staging_url,
        replace,
        folders: BTreeSet::new(),
        rows: 0,
        replaces_entry: false,
    };
    let written =
        crate::formats::parquet_sink::write_parquet(df, &staged.staging_url, partition_cols, order)
            .await;
    staged.rows = match written {
        Ok(rows) => rows,
        Err(e) => {
            staged.discard().await;
            return Err(e.into());
        }
    };
    let files = match staged.staged_files().await {
        Ok(files) => files,
        Err(e) => {
            staged.discard().await;
            return Err(e);
        }
    };
    staged.folders = files
        .iter()
        .map(|f| {
            let parts = crate::formats::infer::relative_parts(&staged.staging, f);
            parts[..parts.len().saturating_sub(1)].to_vec()
        })
        .collect();
    Ok(staged)
}

impl Staged {
    /// The URL of the staging folder.
    pub fn url(&self) -> &str {
        &self.staging_url
    }

    /// Swaps the files in and, when the write made a new entry for the table, commits it.
    pub async fn publish(self, catalog: &strata_catalog::Catalog) -> Result<u64> {
        let entry = self.replaces_entry.then(|| self.entry.clone());
        let rows = self.swap().await?;
        if let Some(entry) = entry {
            let qualified = entry.qualified_name();
            catalog
                .commit(&format!("CREATE TABLE {qualified} AS"), |_| {
                    Ok(vec![strata_catalog::Action::PutTable(Box::new(
                        entry.clone(),
                    ))])
                })
                .await?;
        }
        Ok(rows)
    }

    async fn staged_files(&self) -> Result<Vec<Path>> {
        let files: Vec<_> = self
            .store
            .list(Some(&self.staging))
            .try_collect()
            .await
            .map_err(storage_error)?;
        Ok(files.into_iter().map(|f| f.location).collect())
    }

    /// Moves the staged files into the table, first removing the files they replace.
    pub async fn swap(self) -> Result<u64> {
        let staged = self.staged_files().await?;
        if self.replace != Replace::Nothing {
            let existing: Vec<_> = self
                .store
                .list(Some(&self.root))
                .try_collect()
                .await
                .map_err(storage_error)?;
            for f in existing {
                let parts = crate::formats::infer::relative_parts(&self.root, &f.location);
                if parts
                    .first()
                    .is_some_and(|p| p.starts_with('_') || p.starts_with('.'))
                {
                    continue;
                }
                let folder = parts[..parts.len().saturating_sub(1)].to_vec();
                if self.replace == Replace::All || self.folders.contains(&folder) {
                    self.store
                        .delete(&f.location)
                        .await
                        .map_err(storage_error)?;
                }
            }
        }
        for f in staged {
            let parts = crate::formats::infer::relative_parts(&self.staging, &f);
            let target = Path::from_iter(
                self.root
                    .parts()
                    .chain(parts.iter().map(|p| p.as_str().into())),
            );
            self.store
                .rename(&f, &target)
                .await
                .map_err(storage_error)?;
        }
        let rows = self.rows;
        self.discard().await;
        Ok(rows)
    }

    /// Removes the staged files (and, on a local disk, the staging folders).
    pub async fn discard(&self) {
        if let Ok(files) = self.staged_files().await {
            for f in files {
                let _ = self.store.delete(&f).await;
            }
        }
        if let Ok(dir) = Url::parse(&self.staging_url)
            .map_err(|_| ())
            .and_then(|u| u.to_file_path())
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// The table as it will be after the swap: the files that stay and the staged ones.
    pub fn view(&self, counters: &Arc<ScanCounters>) -> Result<Arc<dyn TableProvider>> {
        let name = self.entry.qualified_name();
        let mut staged_entry = self.entry.clone();
        staged_entry.location = self.staging_url.clone();
        let staged: Arc<dyn TableProvider> =
            Arc::new(StrataTable::try_new(staged_entry, counters)?);
        let staged = LogicalPlanBuilder::scan(name.as_str(), provider_as_source(staged), None)?;
        let kept = match self.replace {
            Replace::All => None,
            Replace::Nothing => Some(self.current(counters)?),
            Replace::Partitions if self.folders.is_empty() => Some(self.current(counters)?),
            Replace::Partitions => Some(
                self.current(counters)?
                    .filter(self.replaced_predicate()?.is_not_true())?,
            ),
        };
        let plan = match kept {
            Some(kept) => kept.union(staged.build()?)?.build()?,
            None => staged.build()?,
        };
        Ok(Arc::new(ViewTable::new(plan, None)))
    }

    fn current(&self, counters: &Arc<ScanCounters>) -> Result<LogicalPlanBuilder> {
        let current: Arc<dyn TableProvider> =
            Arc::new(StrataTable::try_new(self.entry.clone(), counters)?);
        Ok(LogicalPlanBuilder::scan(
            self.entry.qualified_name().as_str(),
            provider_as_source(current),
            None,
        )?)
    }

    /// True for the rows of the partitions the staged files replace.
    fn replaced_predicate(&self) -> Result<Expr> {
        let mut any: Option<Expr> = None;
        for folder in &self.folders {
            let mut all: Option<Expr> = None;
            for segment in folder {
                let Some((column, value)) = segment.split_once('=') else {
                    continue;
                };
                let Some(partition) = self
                    .entry
                    .partition_columns
                    .iter()
                    .find(|p| p.name == column)
                else {
                    continue;
                };
                let value = crate::formats::infer::percent_decode(value);
                let term = if value == "__HIVE_DEFAULT_PARTITION__" {
                    col(column).is_null()
                } else {
                    col(column).eq(cast(lit(value), parse_type(&partition.data_type)?))
                };
                all = Some(match all {
                    Some(a) => a.and(term),
                    None => term,
                });
            }
            if let Some(all) = all {
                any = Some(match any {
                    Some(a) => a.or(all),
                    None => all,
                });
            }
        }
        Ok(any.unwrap_or(lit(false)))
    }
}
