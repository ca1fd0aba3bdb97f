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

use crate::delta::{self, AsOf};

use crate::error::Error;
use crate::metrics::ScanCounters;
use crate::table::StrataTable;

/// Providers built from entries, by zone and name, with the entry each was built from.
type ProviderCache = HashMap<(String, String), (TableEntry, Arc<StrataTable>)>;

/// Shared by the catalog provider and its zone schemas.
#[derive(Debug)]
pub(crate) struct Shared {
    pub catalog: Arc<Catalog>,
    pub counters: Arc<ScanCounters>,
    /// The counting store for local files, which Delta reads go through too.
    pub file_store: Arc<dyn object_store::ObjectStore>,
    providers: Mutex<ProviderCache>,
    /// Session-local tables and views (CREATE VIEW), by zone and name. Not persisted.
    local: Mutex<HashMap<(String, String), Arc<dyn TableProvider>>>,
}

impl Shared {
    pub fn new(
        catalog: Arc<Catalog>,
        counters: Arc<ScanCounters>,
        file_store: Arc<dyn object_store::ObjectStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            counters,
            file_store,
            providers: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
        })
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
        self.catalog.snapshot().table(zone, name).is_ok() || self.local_table(zone, name).is_some()
    }

    /// Names in a zone: registered tables and session-local ones.
    pub fn names(&self, zone: &str) -> Vec<String> {
        let mut names = self.catalog.snapshot().table_names(zone);
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
            return Ok(None);
        };
        if entry.format == TableFormat::Delta {
            let store = entry
                .location
                .starts_with("file:")
                .then(|| Arc::clone(&self.shared.file_store));
            let table =
                delta::load_with_store(&entry.location, &as_of, &entry.qualified_name(), store)
                    .await
                    .map_err(external)?;
            return Ok(Some(delta::provider(&table).await.map_err(external)?));
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
