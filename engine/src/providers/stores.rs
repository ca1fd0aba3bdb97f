//! The stores a session reads and writes through: local folders, and S3 buckets made on
//! first use from the session's S3 settings, so a table in any bucket works without setup.
//! Every store is wrapped in a [`CountingStore`], which counts requests for the footer and
//! EXPLAIN ANALYZE and caches listings of remote stores.

use std::collections::HashMap;
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::path::Path;
use strata_catalog::S3Options;
use url::Url;

use crate::error::{Error, Result};
use crate::providers::metrics::{CountingStore, ScanCounters};

/// How long listings of object stores are reused unless the config says otherwise.
pub const DEFAULT_LISTING_TTL: Duration = Duration::from_secs(30);

/// A session's stores, by `scheme://host`.
pub struct StoreRegistry {
    s3: S3Options,
    counters: Arc<ScanCounters>,
    listing_ttl: Duration,
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
    /// The counting wrappers strata made, by store key, to drop their listings on REFRESH
    /// and to count a forked session's requests apart.
    counting: RwLock<Vec<(String, Arc<CountingStore>)>>,
}

impl std::fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = read(&self.stores).keys().cloned().collect();
        f.debug_struct("StoreRegistry")
            .field("stores", &keys)
            .field("s3", &self.s3)
            .finish()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// The URL of the local file system's store.
pub(crate) fn file_url() -> Url {
    Url::parse("file:///").unwrap_or_else(|_| unreachable!("constant URL"))
}

/// The key of a URL's store: `s3://bucket`, `file://`.
pub fn store_key(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

impl StoreRegistry {
    pub fn new(s3: S3Options, counters: Arc<ScanCounters>, listing_ttl: Duration) -> Self {
        register_delta_log_stores();
        Self {
            s3,
            counters,
            listing_ttl,
            stores: RwLock::new(HashMap::new()),
            counting: RwLock::new(Vec::new()),
        }
    }

    /// The stores of a process that runs plans others made (a cluster's scheduler and
    /// executors): local folders, and S3 buckets made on first use from `s3`, the process's
    /// own settings. Its requests are counted nowhere that a footer shows.
    pub fn for_plans_of_others(s3: S3Options) -> Arc<Self> {
        let registry = Arc::new(Self::new(
            s3,
            Arc::new(ScanCounters::default()),
            DEFAULT_LISTING_TTL,
        ));
        let local = Url::parse("file:///").unwrap_or_else(|_| unreachable!("constant URL"));
        registry.adopt(
            &local,
            Arc::new(object_store::local::LocalFileSystem::new()),
        );
        registry
    }

    /// The S3 settings of this session.
    pub fn s3(&self) -> &S3Options {
        &self.s3
    }

    /// Wraps `store` (which serves `url`) in a counting, caching store and registers it.
    pub fn adopt(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        let store = self.wrap(url, store);
        write(&self.stores).insert(store_key(url), Arc::clone(&store));
        store
    }

    fn wrap(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        let counting = Arc::new(if matches!(url.scheme(), "s3" | "s3a") {
            CountingStore::remote(store, Arc::clone(&self.counters), self.listing_ttl)
        } else {
            CountingStore::new(store, Arc::clone(&self.counters))
        });
        write(&self.counting).push((store_key(url), Arc::clone(&counting)));
        counting
    }

    /// The same stores counting into other counters, for a forked session: each store is
    /// shared (with its listing cache), only what is counted is apart. Buckets first used
    /// after the fork get stores of their own.
    pub fn fork(&self, counters: Arc<ScanCounters>) -> Self {
        let mut stores = read(&self.stores).clone();
        let mut counting = Vec::new();
        for (key, store) in read(&self.counting).iter() {
            let store = Arc::new(store.with_counters(Arc::clone(&counters)));
            stores.insert(key.clone(), Arc::clone(&store) as Arc<dyn ObjectStore>);
            counting.push((key.clone(), store));
        }
        // File sets wrap a store of this registry: they are made again, over the fork's.
        stores.retain(|key, _| !key.starts_with(crate::providers::fileset::SCHEME));
        Self {
            s3: self.s3.clone(),
            counters,
            listing_ttl: self.listing_ttl,
            stores: RwLock::new(stores),
            counting: RwLock::new(counting),
        }
    }

    /// Drops every cached listing.
    pub fn invalidate_listings(&self) {
        for (_, store) in read(&self.counting).iter() {
            store.invalidate();
        }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        write(&self.stores).insert(store_key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        write(&self.stores)
            .remove(&store_key(url))
            .ok_or_else(|| DataFusionError::Execution(format!("no store for {url}")))
    }

    fn get_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        let key = store_key(url);
        if let Some(store) = read(&self.stores).get(&key) {
            return Ok(Arc::clone(store));
        }
        match url.scheme() {
            crate::providers::fileset::SCHEME => {
                let set = crate::providers::fileset::lookup(url).ok_or_else(|| {
                    DataFusionError::Execution(format!(
                        "the file set '{key}' is no longer known; run the query again"
                    ))
                })?;
                let real = self.get_store(&set.real)?;
                let store: Arc<dyn ObjectStore> =
                    Arc::new(crate::providers::fileset::FileSetStore::new(real, set));
                write(&self.stores).insert(key, Arc::clone(&store));
                Ok(store)
            }
            "s3" | "s3a" => {
                // Built under the lock (no I/O happens here), so every reader of a bucket
                // shares one store and one listing cache.
                let mut stores = write(&self.stores);
                if let Some(store) = stores.get(&key) {
                    return Ok(Arc::clone(store));
                }
                let bucket = url.host_str().unwrap_or_default();
                let store = self
                    .s3
                    .build_store(bucket)
                    .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
                let store = self.wrap(url, store);
                stores.insert(key, Arc::clone(&store));
                Ok(store)
            }
            _ => Err(DataFusionError::Configuration(format!(
                "no storage is configured for '{key}'; locations are local folders, file:// URLs or s3://bucket/ URLs"
            ))),
        }
    }
}

/// deltalake writes its commits through a log store chosen by URL scheme; for `s3://`
/// strata uses the default one, which commits with create-if-absent puts (`If-None-Match`),
/// through the session's own store.
fn register_delta_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let factories = deltalake::logstore::logstore_factories();
        for scheme in ["s3://", "s3a://"] {
            if let Ok(url) = Url::parse(scheme) {
                factories
                    .entry(url)
                    .or_insert_with(|| Arc::new(ConditionalPutLogStores));
            }
        }
    });
}

struct ConditionalPutLogStores;

impl deltalake::logstore::LogStoreFactory for ConditionalPutLogStores {
    fn with_options(
        &self,
        prefixed_store: deltalake::logstore::ObjectStoreRef,
        root_store: deltalake::logstore::ObjectStoreRef,
        location: &Url,
        options: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(deltalake::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// The object store path of a URL.
pub(crate) fn url_path(url: &Url) -> Result<Path> {
    Path::from_url_path(url.path())
        .map_err(|e| Error::Unsupported(format!("unusable path in '{url}': {e}")))
}
