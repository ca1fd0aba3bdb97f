//! The warehouse as DataFusion sees it: one catalog whose schemas are the zones, whose
//! tables are the catalog's entries. Table providers are built on first use and rebuilt
//! when their entry changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableProvider;
use strata_catalog::{Catalog, RAW_ZONE, TableEntry, TableFormat};

use crate::providers::delta::{self, AsOf};

use crate::error::Error;
use crate::providers::metrics::ScanCounters;
use crate::providers::stores::StoreRegistry;
use crate::providers::table::StrataTable;

/// Providers built from entries, by zone and name, with the entry each was built from.
type ProviderCache = HashMap<(String, String), (TableEntry, Arc<StrataTable>)>;

/// Shared by the catalog provider and its zone schemas.
#[derive(Debug)]
pub(crate) struct Shared {
    pub catalog: Arc<Catalog>,
    pub counters: Arc<ScanCounters>,
    /// The stores of the session, by bucket; Delta reads and writes go through them too.
    pub stores: Arc<StoreRegistry>,
    providers: Mutex<ProviderCache>,
    /// Delta tables read at their latest version, with the entry each was loaded for: the
    /// next query brings one up to date by reading only the commits made since (one listing
    /// of its log) instead of loading it again.
    delta_tables: Mutex<HashMap<(String, String), (TableEntry, deltalake::DeltaTable)>>,
    /// Tables whose writes this session is auditing (write-audit-publish).
    auditing: Mutex<std::collections::HashSet<(String, String)>>,
    /// Parquet writes under audit, staged until their checks pass.
    staged: Mutex<HashMap<(String, String), crate::providers::staging::Staged>>,
    /// Session-local tables and views (CREATE VIEW), by zone and name. Not persisted.
    local: Mutex<HashMap<(String, String), Arc<dyn TableProvider>>>,
    /// What the sessions on this state may do.
    policy: std::sync::RwLock<Arc<crate::policy::Policy>>,
    /// The tables of the `read_*` calls of statements being planned.
    pub prepared: Arc<crate::providers::paths::Prepared>,
    /// The session's state, for inferring the schema of files read by path.
    state: std::sync::OnceLock<StateSource>,
}

/// Gives the session's current state: DataFusion's, read through a weak reference, since
/// the state holds the catalog that holds this.
pub(crate) struct StateSource(
    pub Box<dyn Fn() -> Option<datafusion::execution::SessionState> + Send + Sync>,
);

impl std::fmt::Debug for StateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSource")
    }
}

impl Shared {
    pub fn new(
        catalog: Arc<Catalog>,
        counters: Arc<ScanCounters>,
        stores: Arc<StoreRegistry>,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            counters,
            stores,
            providers: Mutex::new(HashMap::new()),
            delta_tables: Mutex::new(HashMap::new()),
            auditing: Mutex::new(std::collections::HashSet::new()),
            staged: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
            policy: std::sync::RwLock::new(Arc::default()),
            prepared: Arc::default(),
            state: std::sync::OnceLock::new(),
        })
    }

    /// Where the session's state comes from; set once, when the session is made.
    pub fn set_state_source(&self, source: StateSource) {
        let _ = self.state.set(source);
    }

    /// The session's current state.
    pub fn state(&self) -> Option<datafusion::execution::SessionState> {
        self.state.get().and_then(|s| (s.0)())
    }

    /// What reads of files by path need of this session.
    pub fn read_context(&self) -> crate::providers::paths::ReadContext<'_> {
        crate::providers::paths::ReadContext {
            stores: &self.stores,
            counters: &self.counters,
            policy: self.policy(),
            roots: self.roots(),
        }
    }

    /// The warehouse's root and the zones' roots: the places a restricted session may
    /// always name.
    pub fn roots(&self) -> Vec<url::Url> {
        let mut roots = vec![self.catalog.warehouse().url().clone()];
        roots.extend(
            self.catalog
                .snapshot()
                .zones
                .values()
                .filter_map(|zone| url::Url::parse(&zone.root).ok()),
        );
        roots
    }

    /// What the sessions on this state may do.
    pub fn policy(&self) -> Arc<crate::policy::Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn set_policy(&self, policy: crate::policy::Policy) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
    }

    /// The provider of a registered table, rebuilt if its entry changed.
    pub fn provider(&self, entry: &TableEntry) -> Result<Arc<StrataTable>, Error> {
        let key = (entry.zone.clone(), entry.name.clone());
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, table)) = providers.get(&key)
            && cached == entry
        {
            return Ok(Arc::clone(table));
        }
        let table = Arc::new(StrataTable::try_new(entry.clone(), &self.counters)?);
        providers.insert(key, (entry.clone(), Arc::clone(&table)));
        Ok(table)
    }

    /// A Delta table at its latest version, updated from the last one this session read.
    pub async fn latest_delta(&self, entry: &TableEntry) -> Result<deltalake::DeltaTable, Error> {
        let key = (entry.zone.clone(), entry.name.clone());
        let cached = {
            let tables = self.delta_tables.lock().unwrap_or_else(|p| p.into_inner());
            tables
                .get(&key)
                .filter(|(e, _)| e == entry)
                .map(|(_, t)| t.clone())
        };
        let table = match cached {
            Some(mut table) => match table.update_incremental(None).await {
                Ok(()) => table,
                // The log is not what it was (rewritten, or removed and made anew): read it
                // from the start.
                Err(_) => delta::load_latest(&self.stores, entry).await?,
            },
            None => delta::load_latest(&self.stores, entry).await?,
        };
        let mut tables = self.delta_tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.insert(key, (entry.clone(), table.clone()));
        Ok(table)
    }

    fn local_names(&self, zone: &str) -> Vec<String> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local
            .keys()
            .filter(|(z, _)| z == zone)
            .map(|(_, n)| n.clone())
            .collect()
    }

    fn local_table(&self, zone: &str, name: &str) -> Option<Arc<dyn TableProvider>> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.get(&(zone.to_string(), name.to_string())).cloned()
    }

    /// Whether a name is a session-local table or view.
    pub fn is_local(&self, zone: &str, name: &str) -> bool {
        self.local_table(zone, name).is_some()
    }

    /// Whether a name is taken in a zone, by a registered table or a session-local one.
    pub fn exists(&self, zone: &str, name: &str) -> bool {
        let name = name.split_once('@').map_or(name, |(base, _)| base);
        self.catalog
            .snapshot()
            .table(zone, name)
            .is_ok_and(|e| self.read_version(e) != Some(-1))
            || self.local_table(zone, name).is_some()
    }

    /// The version readers of this session see of a table under audit: the held one, or
    /// the latest (`None`) for the session running the audit. `-1`: not published yet.
    pub fn read_version(&self, entry: &TableEntry) -> Option<i64> {
        let held = entry.held_version?;
        let auditing = self.auditing.lock().unwrap_or_else(|p| p.into_inner());
        (!auditing.contains(&(entry.zone.clone(), entry.name.clone()))).then_some(held)
    }

    /// Marks a table as under audit by this session, which then reads its latest version.
    pub fn set_auditing(&self, zone: &str, name: &str, on: bool) {
        let mut auditing = self.auditing.lock().unwrap_or_else(|p| p.into_inner());
        let key = (zone.to_string(), name.to_string());
        if on {
            auditing.insert(key);
        } else {
            auditing.remove(&key);
        }
    }

    /// Keeps a staged write until its audit publishes or discards it.
    pub fn park_staged(&self, staged: crate::providers::staging::Staged) {
        let mut all = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        all.insert(
            (staged.entry.zone.clone(), staged.entry.name.clone()),
            staged,
        );
    }

    /// Takes the staged write of a table, if there is one.
    pub fn take_staged(&self, zone: &str, name: &str) -> Option<crate::providers::staging::Staged> {
        let mut all = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        all.remove(&(zone.to_string(), name.to_string()))
    }

    /// The table as its staged write will make it, for the auditing session.
    fn staged_view(&self, zone: &str, name: &str) -> Option<Result<Arc<dyn TableProvider>, Error>> {
        let all = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        all.get(&(zone.to_string(), name.to_string()))
            .map(|s| s.view(&self.counters))
    }

    /// Whether a table has a staged write.
    pub fn has_staged(&self, zone: &str, name: &str) -> bool {
        let all = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        all.contains_key(&(zone.to_string(), name.to_string()))
    }

    /// Whether this session is auditing a write to the table.
    pub fn is_auditing(&self, zone: &str, name: &str) -> bool {
        let auditing = self.auditing.lock().unwrap_or_else(|p| p.into_inner());
        auditing.contains(&(zone.to_string(), name.to_string()))
    }

    /// Names in a zone: registered (and published) tables and session-local ones.
    pub fn names(&self, zone: &str) -> Vec<String> {
        let snapshot = self.catalog.snapshot();
        let mut names: Vec<String> = snapshot
            .table_names(zone)
            .into_iter()
            .filter(|n| {
                snapshot
                    .table(zone, n)
                    .is_ok_and(|e| self.read_version(e) != Some(-1))
            })
            .collect();
        names.extend(self.local_names(zone));
        names.sort();
        names.dedup();
        names
    }
}

/// The catalog provider: zones as schemas.
#[derive(Debug)]
pub struct WarehouseCatalog {
    shared: Arc<Shared>,
}

impl WarehouseCatalog {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl CatalogProvider for WarehouseCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.shared.catalog.snapshot().zone_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.shared.catalog.snapshot().zone(name).ok()?;
        Some(Arc::new(ZoneSchema {
            zone: name.to_string(),
            shared: Arc::clone(&self.shared),
        }))
    }
}

/// One zone as a schema.
#[derive(Debug)]
pub struct ZoneSchema {
    zone: String,
    shared: Arc<Shared>,
}

#[async_trait]
impl SchemaProvider for ZoneSchema {
    fn table_names(&self) -> Vec<String> {
        self.shared.names(&self.zone)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(local) = self.shared.local_table(&self.zone, name) {
            return Ok(Some(local));
        }
        let external = |e: Error| DataFusionError::External(Box::new(e));
        let (base, as_of) = AsOf::split_name(name).map_err(external)?;
        let snapshot = self.shared.catalog.snapshot();
        let Ok(entry) = snapshot.table(&self.zone, base) else {
            // `FROM 'data/x.parquet'`: files read by path.
            if crate::providers::paths::looks_like_path(name) {
                let state = self.shared.state().ok_or_else(|| {
                    external(Error::Unsupported(format!(
                        "'{name}' cannot be read: the session has ended"
                    )))
                })?;
                let read = crate::providers::paths::FileRead::path(name);
                return crate::providers::paths::open(&self.shared.read_context(), &state, &read)
                    .await
                    .map(Some)
                    .map_err(external);
            }
            return Ok(None);
        };
        // A write under audit: readers see the version before it until its checks pass.
        let as_of = match (self.shared.read_version(entry), as_of) {
            (Some(-1), _) => return Ok(None),
            (Some(v), AsOf::Latest) => AsOf::Version(u64::try_from(v).unwrap_or_default()),
            (_, as_of) => as_of,
        };
        if entry.format == TableFormat::Delta {
            let table = if as_of == AsOf::Latest {
                self.shared.latest_delta(entry).await.map_err(external)?
            } else {
                delta::load(
                    &self.shared.stores,
                    &entry.location,
                    &as_of,
                    &entry.qualified_name(),
                )
                .await
                .map_err(external)?
            };
            let name = match &as_of {
                AsOf::Latest => entry.qualified_name(),
                AsOf::Version(v) => format!("{} version {v}", entry.qualified_name()),
                AsOf::Timestamp(t) => format!(
                    "{} as of {}",
                    entry.qualified_name(),
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            };
            return Ok(Some(
                delta::provider(&table, &name).await.map_err(external)?,
            ));
        }
        if as_of == AsOf::Latest
            && let Some(view) = self.shared.staged_view(&self.zone, base)
        {
            return Ok(Some(view.map_err(external)?));
        }
        if as_of != AsOf::Latest {
            return Err(external(Error::Unsupported(format!(
                "{} is a {} table; VERSION AS OF and TIMESTAMP AS OF need a Delta table",
                entry.qualified_name(),
                entry.format
            ))));
        }
        let table = self.shared.provider(entry).map_err(external)?;
        Ok(Some(table))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.zone == RAW_ZONE {
            return Err(DataFusionError::External(Box::new(Error::ReadOnlyZone {
                table: format!("{}.{name}", self.zone),
                statement: "CREATE".into(),
            })));
        }
        if self
            .shared
            .catalog
            .snapshot()
            .table(&self.zone, &name)
            .is_ok()
        {
            return Err(DataFusionError::External(Box::new(Error::Catalog(
                strata_catalog::Error::TableExists {
                    zone: self.zone.clone(),
                    name,
                },
            ))));
        }
        let mut local = self.shared.local.lock().unwrap_or_else(|p| p.into_inner());
        Ok(local.insert((self.zone.clone(), name), table))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let mut local = self.shared.local.lock().unwrap_or_else(|p| p.into_inner());
        Ok(local.remove(&(self.zone.clone(), name.to_string())))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.shared.exists(&self.zone, name)
    }
}
