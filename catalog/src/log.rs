//! The catalog log: numbered JSON commits under `<warehouse>/_strata/log/`, each written
//! with an atomic create-if-absent put, plus periodic checkpoints of the whole state.
//!
//! A writer reads the latest state, builds its actions against it and puts commit `v+1`
//! with `PutMode::Create`. If another writer got there first, the put fails with
//! `AlreadyExists`; the writer re-reads the newer commits, rebuilds its actions (which may
//! now fail, e.g. "table already exists") and tries `v+2`. No registration is ever lost.
//!
//! Opening reads `_strata/_last_checkpoint`, the checkpoint it names, and then only the
//! commits after it, so the cost of opening does not grow with the number of commits ever
//! made.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::model::{Action, CatalogState, DEFAULT_ZONES, ZoneEntry};
use crate::warehouse::Warehouse;

/// The version of the commit and checkpoint file format this strata writes (and the newest it
/// reads). Version 2 stores locations inside the warehouse relative to its root, and the
/// entries of tables strata writes as Parquet list their data files; version 1 stored
/// absolute URLs and no file lists, and is still read.
pub const FORMAT_VERSION: u32 = 2;

/// A checkpoint is written after every this many commits.
pub const CHECKPOINT_INTERVAL: u64 = 50;

/// Folder of the catalog inside the warehouse.
pub const CATALOG_DIR: &str = "_strata";

const MAX_ATTEMPTS: usize = 1000;

/// One commit file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    pub format_version: u32,
    pub version: u64,
    pub timestamp: DateTime<Utc>,
    /// What made the commit, e.g. `CREATE EXTERNAL TABLE raw.sales`.
    pub operation: String,
    /// Which program wrote it.
    pub writer: String,
    /// A random id of the writing attempt, so a writer whose put had an unknown outcome (the
    /// connection dropped after the server stored it) can tell its own commit from another's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    pub actions: Vec<Action>,
}

/// One checkpoint file: the whole state as of `state.version`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    format_version: u32,
    state: CatalogState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LastCheckpoint {
    format_version: u32,
    version: u64,
}

/// The catalog of one warehouse, shared by every session that opens it.
///
/// Reads are served from an in-memory snapshot; [`Catalog::refresh`] brings in commits other
/// processes made since.
#[derive(Debug)]
pub struct Catalog {
    warehouse: Warehouse,
    /// Where an older strata created this warehouse, when that is not where it is now: its
    /// absolute locations under that root are read as under this one.
    moved_from: Option<String>,
    snapshot: RwLock<Arc<CatalogState>>,
    /// Serializes refreshes and commits of this process.
    writer: Mutex<()>,
}

impl Catalog {
    /// Opens the catalog of a warehouse, creating the warehouse (its first commit, with the
    /// three zones) if it has none yet.
    pub async fn open(warehouse: Warehouse) -> Result<Arc<Self>> {
        let moved_from = Self::legacy_root(&warehouse).await?;
        let catalog = Arc::new(Self {
            warehouse,
            moved_from,
            snapshot: RwLock::new(Arc::new(CatalogState::default())),
            writer: Mutex::new(()),
        });
        {
            let _guard = catalog.writer.lock().await;
            let mut state = catalog.load_checkpoint().await?;
            catalog.read_commits_after(&mut state).await?;
            catalog.set_snapshot(state);
        }
        if catalog.snapshot().version.is_none() {
            catalog.initialize().await?;
        }
        catalog.check_foreign_roots().await?;
        Ok(catalog)
    }

    /// The root a format-1 catalog recorded its absolute locations under, read from its first
    /// commit, when the warehouse is no longer there (it was copied or moved).
    async fn legacy_root(warehouse: &Warehouse) -> Result<Option<String>> {
        let path = warehouse.path(&format!("{CATALOG_DIR}/log/{:020}.json", 0));
        let bytes = match warehouse.store().get(&path).await {
            Ok(result) => result.bytes().await.map_err(|source| Error::Storage {
                path: path.to_string(),
                source,
            })?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => {
                return Err(Error::Storage {
                    path: path.to_string(),
                    source,
                });
            }
        };
        let first: Commit = parse(&path, &bytes)?;
        Ok(crate::warehouse::legacy_root(&first.actions)
            .filter(|root| root.as_str() != warehouse.url().as_str()))
    }

    /// Refuses a catalog with a zone rooted in another strata warehouse: writing there would
    /// put files into that warehouse behind its catalog's back.
    async fn check_foreign_roots(&self) -> Result<()> {
        let snapshot = self.snapshot();
        for zone in snapshot.zones.values() {
            if zone.root.starts_with(self.warehouse.url().as_str()) {
                continue;
            }
            let Ok(url) = url::Url::parse(&zone.root) else {
                continue;
            };
            let Some(parent) = url.join("..").ok().filter(|p| p != &url) else {
                continue;
            };
            let Some(prefix) = self.warehouse.store_path(&parent) else {
                continue;
            };
            let marker = Path::from_iter(prefix.parts().map(|p| p.as_ref().to_string()).chain([
                CATALOG_DIR.to_string(),
                "log".into(),
                format!("{:020}.json", 0),
            ]));
            if self.warehouse.store().head(&marker).await.is_ok() {
                return Err(Error::ForeignZoneRoot {
                    warehouse: self.warehouse.url().to_string(),
                    zone: zone.name.clone(),
                    root: zone.root.clone(),
                    other: parent.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Makes stored locations URLs again (see [`Warehouse::from_stored`]) in what `apply`
    /// rewrites with the function it is given.
    fn resolve_with(&self, apply: impl FnOnce(&dyn Fn(&str) -> String)) -> Result<()> {
        let failed = std::cell::RefCell::new(None);
        let resolve = |stored: &str| {
            self.warehouse
                .from_stored(stored, self.moved_from.as_deref())
                .unwrap_or_else(|e| {
                    failed.borrow_mut().get_or_insert(e);
                    stored.to_string()
                })
        };
        apply(&resolve);
        failed.into_inner().map_or(Ok(()), Err)
    }

    fn resolve(&self, actions: &mut [Action]) -> Result<()> {
        self.resolve_with(|f| actions.iter_mut().for_each(|a| a.map_locations(f)))
    }

    /// The warehouse this catalog lives in.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The state as of the last refresh or commit.
    pub fn snapshot(&self) -> Arc<CatalogState> {
        match self.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_snapshot(&self, state: CatalogState) {
        let state = Arc::new(state);
        match self.snapshot.write() {
            Ok(mut s) => *s = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    /// Reads commits other writers made since the last refresh. Costs one read when there are
    /// none.
    pub async fn refresh(&self) -> Result<Arc<CatalogState>> {
        let _guard = self.writer.lock().await;
        let current = self.snapshot();
        // Look for the next commit before copying the state: usually there is none.
        let next = current.version.map_or(0, |v| v + 1);
        let path = self.commit_path(next);
        let Some(bytes) = self.get_optional(&path).await? else {
            return Ok(current);
        };
        let mut commit: Commit = parse(&path, &bytes)?;
        check_format(&path, commit.format_version)?;
        self.resolve(&mut commit.actions)?;
        let mut state = (*current).clone();
        state.apply(next, &commit.actions);
        self.read_commits_after(&mut state).await?;
        self.set_snapshot(state);
        Ok(self.snapshot())
    }

    /// Commits the actions `build` makes from the latest state, retrying on top of newer
    /// commits when another writer wins the race. `build` is called again on each retry, so
    /// its checks (table exists, zone unknown) see the state the commit will apply to.
    /// Returns the committed version, or `None` when `build` returned no actions.
    pub async fn commit<F>(&self, operation: &str, mut build: F) -> Result<Option<u64>>
    where
        F: FnMut(&CatalogState) -> Result<Vec<Action>>,
    {
        let _guard = self.writer.lock().await;
        let mut state = (*self.snapshot()).clone();
        for attempt in 0..MAX_ATTEMPTS {
            self.read_commits_after(&mut state).await?;
            let actions = build(&state)?;
            if actions.is_empty() {
                self.set_snapshot(state);
                return Ok(None);
            }
            let version = state.version.map_or(0, |v| v + 1);
            let txn = format!("{:032x}", rand::random::<u128>());
            let outcome = match self.put_commit(version, operation, &actions, &txn).await {
                Ok(()) => Ok(true),
                // The put may have landed although it failed for us: a request retried after
                // its first attempt was stored, a connection lost after the write. The commit
                // file says whose it is.
                Err(put_error) => match self.read_back(version).await {
                    Ok(Some(found)) => {
                        let landed = found.txn.as_deref() == Some(txn.as_str());
                        tracing::debug!(
                            "catalog commit {version}: the put failed ({put_error}); read back, it {}",
                            if landed {
                                "landed"
                            } else {
                                "was another writer's"
                            }
                        );
                        Ok(landed)
                    }
                    Ok(None) => Err(match put_error {
                        Error::Storage { path, source } => Error::CommitNotLanded { path, source },
                        other => other,
                    }),
                    Err(read_error) => Err(Error::CommitOutcomeUnknown {
                        path: self.commit_path(version).to_string(),
                        put: put_error.to_string(),
                        read: read_error.to_string(),
                    }),
                },
            };
            match outcome {
                Ok(true) => {
                    state.apply(version, &actions);
                    let checkpoint = version > 0 && version.is_multiple_of(CHECKPOINT_INTERVAL);
                    if checkpoint {
                        // A checkpoint only speeds up opening; failing to write one loses nothing.
                        if let Err(e) = self.write_checkpoint(&state).await {
                            tracing::warn!("could not write catalog checkpoint: {e}");
                        }
                    }
                    self.set_snapshot(state);
                    return Ok(Some(version));
                }
                Ok(false) => {
                    tracing::debug!("lost the race for catalog commit {version}, retrying");
                    backoff(attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Reads commit `version` back after a put whose outcome is unknown, trying a few times
    /// (the failure that hid the outcome may hit the read too).
    async fn read_back(&self, version: u64) -> Result<Option<Commit>> {
        let path = self.commit_path(version);
        let mut last = None;
        for attempt in 0..5 {
            match self.get_optional(&path).await {
                Ok(Some(bytes)) => return parse(&path, &bytes).map(Some),
                Ok(None) => return Ok(None),
                Err(e) => last = Some(e),
            }
            backoff(attempt + 4).await;
        }
        Err(last.unwrap_or(Error::Contention { attempts: 0 }))
    }

    async fn initialize(&self) -> Result<()> {
        let warehouse = self.warehouse.clone();
        self.commit("CREATE WAREHOUSE", |state| {
            Ok(DEFAULT_ZONES
                .iter()
                .filter(|z| !state.zones.contains_key(**z))
                .map(|z| {
                    Action::SetZone(ZoneEntry {
                        name: z.to_string(),
                        root: warehouse.folder_url(z).to_string(),
                    })
                })
                .collect())
        })
        .await?;
        Ok(())
    }

    fn commit_path(&self, version: u64) -> Path {
        self.warehouse
            .path(&format!("{CATALOG_DIR}/log/{version:020}.json"))
    }

    fn checkpoint_path(&self, version: u64) -> Path {
        self.warehouse
            .path(&format!("{CATALOG_DIR}/checkpoints/{version:020}.json"))
    }

    fn last_checkpoint_path(&self) -> Path {
        self.warehouse
            .path(&format!("{CATALOG_DIR}/_last_checkpoint"))
    }

    async fn put_commit(
        &self,
        version: u64,
        operation: &str,
        actions: &[Action],
        txn: &str,
    ) -> Result<()> {
        let commit = Commit {
            format_version: FORMAT_VERSION,
            version,
            timestamp: Utc::now(),
            operation: operation.to_string(),
            writer: concat!("strata ", env!("CARGO_PKG_VERSION")).to_string(),
            txn: Some(txn.to_string()),
            actions: actions
                .iter()
                .cloned()
                .map(|mut action| {
                    action.map_locations(&|url| self.warehouse.to_stored(url));
                    action
                })
                .collect(),
        };
        let path = self.commit_path(version);
        let body = serde_json::to_vec_pretty(&commit).map_err(|source| Error::CorruptCommit {
            path: path.to_string(),
            source,
        })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.warehouse
            .store()
            .put_opts(&path, PutPayload::from(Bytes::from(body)), opts)
            .await
            .map_err(|source| Error::Storage {
                path: path.to_string(),
                source,
            })?;
        Ok(())
    }

    /// Reads every commit after `state.version` into `state`; returns how many it applied.
    async fn read_commits_after(&self, state: &mut CatalogState) -> Result<usize> {
        let mut applied = 0;
        loop {
            let version = state.version.map_or(0, |v| v + 1);
            let path = self.commit_path(version);
            let Some(bytes) = self.get_optional(&path).await? else {
                return Ok(applied);
            };
            let mut commit: Commit = parse(&path, &bytes)?;
            check_format(&path, commit.format_version)?;
            self.resolve(&mut commit.actions)?;
            state.apply(version, &commit.actions);
            applied += 1;
        }
    }

    async fn load_checkpoint(&self) -> Result<CatalogState> {
        let pointer_path = self.last_checkpoint_path();
        let Some(bytes) = self.get_optional(&pointer_path).await? else {
            return Ok(CatalogState::default());
        };
        let pointer: LastCheckpoint = parse(&pointer_path, &bytes)?;
        check_format(&pointer_path, pointer.format_version)?;
        let path = self.checkpoint_path(pointer.version);
        let Some(bytes) = self.get_optional(&path).await? else {
            tracing::warn!("catalog checkpoint {path} is missing; reading the whole log");
            return Ok(CatalogState::default());
        };
        let checkpoint: Checkpoint = parse(&path, &bytes)?;
        check_format(&path, checkpoint.format_version)?;
        let mut state = checkpoint.state;
        self.resolve_with(|f| state.map_locations(f))?;
        Ok(state)
    }

    async fn write_checkpoint(&self, state: &CatalogState) -> Result<()> {
        let Some(version) = state.version else {
            return Ok(());
        };
        let path = self.checkpoint_path(version);
        let mut stored = state.clone();
        stored.map_locations(&|url| self.warehouse.to_stored(url));
        let checkpoint = Checkpoint {
            format_version: FORMAT_VERSION,
            state: stored,
        };
        let body = serde_json::to_vec(&checkpoint).map_err(|source| Error::CorruptCommit {
            path: path.to_string(),
            source,
        })?;
        // The checkpoint is written before the pointer, so the pointer never names a
        // checkpoint that is not there. Two writers may race on the pointer; either value is a
        // valid checkpoint, and readers go forward from it through the log.
        self.put(&path, body).await?;
        let pointer = serde_json::to_vec(&LastCheckpoint {
            format_version: 1,
            version,
        })
        .map_err(|source| Error::CorruptCommit {
            path: path.to_string(),
            source,
        })?;
        self.put(&self.last_checkpoint_path(), pointer).await
    }

    async fn put(&self, path: &Path, body: Vec<u8>) -> Result<()> {
        self.warehouse
            .store()
            .put(path, PutPayload::from(Bytes::from(body)))
            .await
            .map_err(|source| Error::Storage {
                path: path.to_string(),
                source,
            })?;
        Ok(())
    }

    async fn get_optional(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.warehouse.store().get(path).await {
            Ok(result) => result
                .bytes()
                .await
                .map(Some)
                .map_err(|source| Error::Storage {
                    path: path.to_string(),
                    source,
                }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(Error::Storage {
                path: path.to_string(),
                source,
            }),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::CorruptCommit {
        path: path.to_string(),
        source,
    })
}

fn check_format(path: &Path, found: u32) -> Result<()> {
    if found > FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            path: path.to_string(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

async fn backoff(attempt: usize) {
    let cap = 1u64 << attempt.min(6);
    let millis = rand::random_range(0..=cap);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}
