//! Staged writes to strata-written Parquet tables: the new files go to a folder of their own
//! under the table (`_strata_staging_…/`, which listings skip). Publishing moves them into
//! the table's folder under names of their own (`strata-<stamp>-…`) and then commits the
//! table's new file set to the catalog in one step: readers read exactly the files of the
//! catalog entry (see `providers::fileset`), so until that commit they see the table as it
//! was, and after it as it is, never a folder half swapped. The files a write replaced are
//! removed only after the commit; a kill before that leaves files no entry lists, which
//! VACUUM removes, and staging folders of writers that died, which the next writer removes.
//!
//! Until publishing, the session that wrote the files can read the table as it will be (the
//! files that stay plus the staged ones), which is how the checks of a write-audit-publish
//! run see new data that readers do not.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::provider_as_source;
use datafusion::datasource::view::ViewTable;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col, lit};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use strata_catalog::{Action, Catalog, DataFile, TableEntry};
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
    /// Whether `entry` is a table that must not exist yet (CREATE TABLE … AS): the catalog
    /// commit fails if another writer registered it first, and this write's files go.
    pub creates_entry: bool,
    /// `<nanos>_<pid>`: names the staging folder and the files moved out of it.
    stamp: String,
}

/// The prefix of staging folders.
pub(crate) const STAGING_PREFIX: &str = "_strata_staging_";

/// The prefix of the data files strata's staged writes move into a table's folder.
pub(crate) const FILE_PREFIX: &str = "strata-";

/// How long a staging folder whose writer cannot be checked (another machine, an object
/// store) is left alone before the next writer removes it.
const STAGING_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn storage_error(e: object_store::Error) -> Error {
    Error::DataFusion(e.into())
}

/// The folder part of a relative path (`a=1/b=2` of `a=1/b=2/f.parquet`).
fn folder_of(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(folder, _)| folder.to_string())
        .unwrap_or_default()
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
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let stamp = format!("{nanos}_{}", std::process::id());
    remove_dead_staging(&store, &root, url.scheme() == "file").await;
    let staging_name = format!("{STAGING_PREFIX}{stamp}");
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
        creates_entry: false,
        stamp,
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
        Ok(files) => files.into_iter().map(|f| f.location).collect::<Vec<_>>(),
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
    crate::failpoint::hit("after_data_files");
    Ok(staged)
}

/// Removes the staging folders under a table's folder whose writers are gone: on a local
/// disk, those of processes no longer running; elsewhere, those older than a day.
pub(crate) async fn remove_dead_staging(store: &Arc<dyn ObjectStore>, root: &Path, local: bool) {
    remove_staging_older_than(store, root, local, STAGING_GRACE).await;
}

/// Removes the staging folders under `root` whose writers are gone or that are older than
/// `grace`; returns their names.
pub(crate) async fn remove_staging_older_than(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    local: bool,
    grace: std::time::Duration,
) -> Vec<String> {
    let mut removed = vec![];
    let Ok(listing) = store.list_with_delimiter(Some(root)).await else {
        return removed;
    };
    for folder in listing.common_prefixes {
        let Some(name) = folder.filename().map(str::to_string) else {
            continue;
        };
        if staging_is_dead(&name, local, grace) {
            remove_folder(store, &folder, local).await;
            removed.push(name);
        }
    }
    removed
}

/// Whether a staging folder's writer is gone: its process is not running (local disks), or
/// it is older than `grace`.
pub(crate) fn staging_is_dead(name: &str, local: bool, grace: std::time::Duration) -> bool {
    let Some(stamp) = name.strip_prefix(STAGING_PREFIX) else {
        return false;
    };
    let (nanos, pid) = match stamp.split_once('_') {
        Some((n, p)) => (n.parse::<u128>().ok(), p.parse::<u32>().ok()),
        None => (stamp.parse::<u128>().ok(), None),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let old = nanos.is_none_or(|n| now.saturating_sub(n) > grace.as_nanos());
    if old {
        return true;
    }
    match pid {
        Some(pid) if local && cfg!(target_os = "linux") => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

/// Deletes every object under `folder`, and the folder itself on a local disk (`local`).
pub(crate) async fn remove_folder(store: &Arc<dyn ObjectStore>, folder: &Path, local: bool) {
    let files: Vec<ObjectMeta> = store
        .list(Some(folder))
        .try_collect()
        .await
        .unwrap_or_default();
    for f in files {
        let _ = store.delete(&f.location).await;
    }
    if !local {
        return;
    }
    if let Ok(dir) = Url::parse(&format!("file:///{}", folder.as_ref()))
        .map_err(|_| ())
        .and_then(|u| u.to_file_path())
        && dir.is_dir()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The data files in a table's folder: everything under it but folders starting with `_`
/// or `.`, and, unless `with_strata_files`, the files strata writes move in (which may be
/// another writer's, not committed yet).
pub(crate) async fn listed_files(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    with_strata_files: bool,
) -> Result<Vec<DataFile>> {
    let files: Vec<ObjectMeta> = store
        .list(Some(root))
        .try_collect()
        .await
        .map_err(storage_error)?;
    Ok(files
        .into_iter()
        .filter_map(|f| {
            let relative = crate::providers::fileset::relative(root, &f.location);
            let hidden = relative
                .split('/')
                .any(|p| p.starts_with('_') || p.starts_with('.'));
            let leftover = !with_strata_files
                && f.location
                    .filename()
                    .is_some_and(|n| n.starts_with(FILE_PREFIX));
            (!hidden && !leftover).then_some(DataFile {
                path: relative,
                size: f.size,
            })
        })
        .collect())
}

impl Staged {
    /// The URL of the staging folder.
    pub fn url(&self) -> &str {
        &self.staging_url
    }

    /// Publishes the staged files: moves them into the table's folder, then commits the
    /// table's new file set (and, for CREATE [OR REPLACE] TABLE … AS, its new entry) to the
    /// catalog, then removes the files it replaced. Returns the rows written. If the commit
    /// fails, this write's files are removed and the table is as it was.
    pub async fn publish(self, catalog: &Catalog) -> Result<u64> {
        let table = self.entry.qualified_name();
        let new_entry = self.replaces_entry || self.creates_entry;
        if !new_entry {
            self.track_files(catalog).await?;
        }
        // What a new entry replaces, when the table did not list its files: the files in
        // the folder (but those of other strata writes, which may be committed yet).
        let listed = if new_entry {
            listed_files(&self.store, &self.root, false).await?
        } else {
            vec![]
        };
        let staged = self.staged_files().await?;
        let mut moved: Vec<(Path, DataFile)> = Vec::with_capacity(staged.len());
        let half = staged.len().div_ceil(2);
        for f in &staged {
            let mut parts = crate::formats::infer::relative_parts(&self.staging, &f.location);
            if let Some(name) = parts.last_mut() {
                *name = format!("{FILE_PREFIX}{}-{name}", self.stamp);
            }
            let target = crate::providers::fileset::join(&self.root, &parts.join("/"));
            if let Err(e) = self.store.rename(&f.location, &target).await {
                self.remove_moved(&moved).await;
                self.discard().await;
                return Err(storage_error(e));
            }
            let relative = crate::providers::fileset::relative(&self.root, &target);
            moved.push((
                target,
                DataFile {
                    path: relative,
                    size: f.size,
                },
            ));
            if moved.len() == half {
                crate::failpoint::hit("during_swap");
            }
        }
        crate::failpoint::hit("before_catalog_commit");
        let new_files: Vec<DataFile> = moved.iter().map(|(_, f)| f.clone()).collect();
        let new_folders: BTreeSet<String> = new_files.iter().map(|f| folder_of(&f.path)).collect();
        let mut replaced: Vec<DataFile> = vec![];
        let operation = if self.creates_entry || self.replaces_entry {
            format!("CREATE TABLE {table} AS")
        } else if self.replace == Replace::Nothing {
            format!("INSERT INTO {table}")
        } else {
            format!("INSERT OVERWRITE {table}")
        };
        let committed = catalog
            .commit(&operation, |state| {
                let latest = state.table(&self.entry.zone, &self.entry.name).ok();
                if self.creates_entry && latest.is_some() {
                    return Err(strata_catalog::Error::TableExists {
                        zone: self.entry.zone.clone(),
                        name: self.entry.name.clone(),
                    });
                }
                let mut entry = match latest {
                    Some(latest) if !self.replaces_entry && !self.creates_entry => latest.clone(),
                    Some(_) | None if self.replaces_entry || self.creates_entry => {
                        self.entry.clone()
                    }
                    _ => {
                        return Err(strata_catalog::Error::TableNotFound {
                            zone: self.entry.zone.clone(),
                            name: self.entry.name.clone(),
                            available: state.table_names(&self.entry.zone),
                        });
                    }
                };
                let old: Vec<DataFile> = match latest.and_then(|l| l.files.clone()) {
                    Some(files) => files,
                    None => listed.clone(),
                };
                let (kept, gone): (Vec<DataFile>, Vec<DataFile>) =
                    old.into_iter().partition(|f| match self.replace {
                        Replace::Nothing => true,
                        Replace::All => false,
                        Replace::Partitions => !new_folders.contains(&folder_of(&f.path)),
                    });
                replaced = gone;
                let mut files = kept;
                files.extend(new_files.iter().cloned());
                files.sort();
                files.dedup();
                entry.files = Some(files);
                entry.updated_at = chrono::Utc::now();
                Ok(vec![Action::PutTable(Box::new(entry))])
            })
            .await;
        match committed {
            Ok(_) => {}
            // The commit may have landed: its files must stay.
            Err(e @ strata_catalog::Error::CommitOutcomeUnknown { .. }) => return Err(e.into()),
            Err(e) => {
                self.remove_moved(&moved).await;
                self.discard().await;
                return Err(e.into());
            }
        }
        crate::failpoint::hit("after_catalog_commit");
        // Readers now read the new file set; the replaced files can go.
        for f in &replaced {
            let _ = self
                .store
                .delete(&crate::providers::fileset::join(&self.root, &f.path))
                .await;
        }
        let rows = self.rows;
        self.discard().await;
        Ok(rows)
    }

    /// Makes a table that does not list its files list them: the files in its folder now,
    /// as its readers read it. Done once, before a write moves any file in, so that no
    /// file of a write shows before its commit.
    async fn track_files(&self, catalog: &Catalog) -> Result<()> {
        let current = catalog.refresh().await?;
        let lists = current
            .table(&self.entry.zone, &self.entry.name)
            .map(|e| e.files.is_some())?;
        if lists {
            return Ok(());
        }
        let files = listed_files(&self.store, &self.root, true).await?;
        catalog
            .commit(
                &format!("TRACK FILES {}", self.entry.qualified_name()),
                |state| {
                    let mut entry = state.table(&self.entry.zone, &self.entry.name)?.clone();
                    if entry.files.is_some() {
                        return Ok(vec![]);
                    }
                    entry.files = Some(files.clone());
                    Ok(vec![Action::PutTable(Box::new(entry))])
                },
            )
            .await?;
        Ok(())
    }

    async fn remove_moved(&self, moved: &[(Path, DataFile)]) {
        for (path, _) in moved {
            let _ = self.store.delete(path).await;
        }
    }

    async fn staged_files(&self) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(&self.staging))
            .try_collect()
            .await
            .map_err(storage_error)
    }

    /// Removes the staged files (and, on a local disk, the staging folders).
    pub async fn discard(&self) {
        remove_folder(
            &self.store,
            &self.staging,
            self.staging_url.starts_with("file:"),
        )
        .await;
    }

    /// The table as it will be once published: the files that stay and the staged ones.
    pub fn view(&self, counters: &Arc<ScanCounters>) -> Result<Arc<dyn TableProvider>> {
        let name = self.entry.qualified_name();
        let mut staged_entry = self.entry.clone();
        staged_entry.location = self.staging_url.clone();
        // The staging folder holds only this write's files: read them all.
        staged_entry.files = None;
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
