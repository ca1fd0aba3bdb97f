//! What a query read: an object store wrapper that counts the requests made (GET, LIST,
//! HEAD, PUT, DELETE), the files opened and the bytes fetched, whatever the format (JSON,
//! CSV, Parquet, Delta), plus counters the readers report into (malformed lines skipped).
//!
//! The same wrapper keeps a listing cache for object stores: a listing is reused for a while
//! (`[cache] listing_ttl_secs`), and dropped at once when anything is written through the
//! store or when REFRESH asks for it. Delta and catalog logs are never cached: they are
//! versioned and read by their own rules.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, UnboundedMemoryPool,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
    UploadPart,
};

/// Counters of one session's reads, reset at the start of each statement.
#[derive(Debug, Default)]
pub struct ScanCounters {
    bytes: AtomicU64,
    files: Mutex<BTreeSet<String>>,
    skipped_lines: AtomicU64,
    skipped_by_file: Mutex<Vec<(String, u64)>>,
    gets: AtomicU64,
    lists: AtomicU64,
    heads: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    cached_lists: AtomicU64,
}

/// A snapshot of [`ScanCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Distinct data files opened.
    pub files: u64,
    /// Bytes fetched from storage.
    pub bytes: u64,
    /// Malformed lines skipped by tables read with `skip_malformed`.
    pub skipped_lines: u64,
    /// Storage requests made.
    pub requests: RequestCounts,
}

/// Requests made to storage, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// GET requests (whole objects and byte ranges).
    pub get: u64,
    /// LIST requests (one per listing call; a long listing may take several pages).
    pub list: u64,
    pub head: u64,
    /// PUT requests, including multipart parts.
    pub put: u64,
    pub delete: u64,
    /// Listings served from the listing cache, without a request.
    pub cached_list: u64,
}

impl fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} GET, {} LIST", self.get, self.list)?;
        if self.head > 0 {
            write!(f, ", {} HEAD", self.head)?;
        }
        if self.put > 0 {
            write!(f, ", {} PUT", self.put)?;
        }
        if self.delete > 0 {
            write!(f, ", {} DELETE", self.delete)?;
        }
        if self.cached_list > 0 {
            write!(f, " ({} cached listings)", self.cached_list)?;
        }
        Ok(())
    }
}

impl ScanCounters {
    /// Starts counting afresh.
    pub fn reset(&self) {
        self.bytes.store(0, Ordering::Relaxed);
        lock(&self.files).clear();
        self.skipped_lines.store(0, Ordering::Relaxed);
        lock(&self.skipped_by_file).clear();
        for c in [
            &self.gets,
            &self.lists,
            &self.heads,
            &self.puts,
            &self.deletes,
            &self.cached_lists,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// What was read since the last reset.
    pub fn summary(&self) -> ScanSummary {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ScanSummary {
            files: lock(&self.files).len() as u64,
            bytes: load(&self.bytes),
            skipped_lines: load(&self.skipped_lines),
            requests: RequestCounts {
                get: load(&self.gets),
                list: load(&self.lists),
                head: load(&self.heads),
                put: load(&self.puts),
                delete: load(&self.deletes),
                cached_list: load(&self.cached_lists),
            },
        }
    }

    /// Paths of the files opened since the last reset, sorted.
    pub fn files_opened(&self) -> Vec<String> {
        lock(&self.files).iter().cloned().collect()
    }

    /// Files (as users know their paths) with skipped malformed lines since the last reset,
    /// with how many each.
    pub fn skipped_by_file(&self) -> Vec<(String, u64)> {
        lock(&self.skipped_by_file).clone()
    }

    pub(crate) fn record_read(&self, path: &Path, requests: u64, bytes: u64) {
        self.gets.fetch_add(requests, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut files = lock(&self.files);
        if !files.contains(path.as_ref()) {
            files.insert(path.to_string());
        }
    }

    pub(crate) fn record_skipped(&self, path: &str, lines: u64) {
        if lines == 0 {
            return;
        }
        self.skipped_lines.fetch_add(lines, Ordering::Relaxed);
        lock(&self.skipped_by_file).push((path.to_string(), lines));
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Listings kept by a [`CountingStore`], keyed by how they were asked for.
#[derive(Debug, Default)]
struct ListingCache {
    ttl: Duration,
    entries: Mutex<HashMap<ListKey, (Instant, Listing)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ListKey {
    All(Option<Path>),
    Delimited(Option<Path>),
}

#[derive(Debug, Clone)]
enum Listing {
    All(Arc<Vec<ObjectMeta>>),
    Delimited(Arc<(Vec<Path>, Vec<ObjectMeta>)>),
}

impl ListingCache {
    fn get(&self, key: &ListKey) -> Option<Listing> {
        let mut entries = lock(&self.entries);
        match entries.get(key) {
            Some((at, listing)) if at.elapsed() < self.ttl => Some(listing.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: ListKey, listing: Listing) {
        lock(&self.entries).insert(key, (Instant::now(), listing));
    }

    fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// Whether a listing may be cached: logs (Delta's `_delta_log`, the catalog's `_strata`)
/// are versioned, and are listed to find new versions, so they are always asked afresh.
fn cacheable(prefix: Option<&Path>) -> bool {
    prefix.is_none_or(|p| {
        !p.parts()
            .any(|part| matches!(part.as_ref(), "_delta_log" | "_strata"))
    })
}

/// Whether a put writes a Delta commit (`_delta_log/<version>.json`), for the failpoints
/// around it.
fn is_delta_commit(location: &Path) -> bool {
    let mut parts = location.parts().collect::<Vec<_>>().into_iter().rev();
    let (Some(file), Some(folder)) = (parts.next(), parts.next()) else {
        return false;
    };
    folder.as_ref() == "_delta_log"
        && file
            .as_ref()
            .strip_suffix(".json")
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// An object store that counts what is done through it, and caches listings when asked to.
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<ScanCounters>,
    /// Ranged reads go out as separate coalesced GETs, each counted (object stores); local
    /// files keep their own one-open-many-reads path.
    remote: bool,
    cache: Option<Arc<ListingCache>>,
}

impl CountingStore {
    /// Counts requests to a local store; no listing cache.
    pub fn new(inner: Arc<dyn ObjectStore>, counters: Arc<ScanCounters>) -> Self {
        Self {
            inner,
            counters,
            remote: false,
            cache: None,
        }
    }

    /// Counts requests to a remote store, caching listings for `listing_ttl` (none when zero).
    pub fn remote(
        inner: Arc<dyn ObjectStore>,
        counters: Arc<ScanCounters>,
        listing_ttl: Duration,
    ) -> Self {
        Self {
            inner,
            counters,
            remote: true,
            cache: (!listing_ttl.is_zero()).then(|| {
                Arc::new(ListingCache {
                    ttl: listing_ttl,
                    ..Default::default()
                })
            }),
        }
    }

    /// The same store, counting into other counters; the listing cache is shared, so a
    /// write through either drops the listings both see.
    pub fn with_counters(&self, counters: Arc<ScanCounters>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            counters,
            remote: self.remote,
            cache: self.cache.clone(),
        }
    }

    /// Forgets every cached listing (REFRESH).
    pub fn invalidate(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    fn wrote(&self) {
        self.invalidate();
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({})", self.inner)
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({})", self.inner)
    }
}

/// A multipart upload whose completion drops the store's cached listings.
struct CountedUpload {
    inner: Box<dyn MultipartUpload>,
    counters: Arc<ScanCounters>,
    cache: Option<Arc<ListingCache>>,
}

impl fmt::Debug for CountedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountedUpload({:?})", self.inner)
    }
}

#[async_trait]
impl MultipartUpload for CountedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.counters.count(&self.counters.puts);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self.inner.complete().await;
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        result
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.counters.count(&self.counters.puts);
        let delta_commit = is_delta_commit(location);
        if delta_commit {
            crate::failpoint::hit("before_delta_commit");
        }
        let result = self.inner.put_opts(location, payload, opts).await;
        self.wrote();
        if delta_commit && result.is_ok() {
            crate::failpoint::hit("after_delta_commit");
        }
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.wrote();
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountedUpload {
            inner,
            counters: Arc::clone(&self.counters),
            cache: self.cache.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        // A request counts whether or not it finds the object.
        let head = options.head;
        self.counters.count(if head {
            &self.counters.heads
        } else {
            &self.counters.gets
        });
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            self.counters
                .record_read(location, 0, result.range.end - result.range.start);
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.remote {
            // The same coalescing the S3 store does, with every GET it sends counted.
            return object_store::coalesce_ranges(
                ranges,
                |range| self.get_range(location, range),
                object_store::OBJECT_STORE_COALESCE_DEFAULT,
            )
            .await;
        }
        let result = self.inner.get_ranges(location, ranges).await?;
        let bytes: u64 = result.iter().map(|b| b.len() as u64).sum();
        self.counters
            .record_read(location, ranges.len() as u64, bytes);
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.wrote();
        let counters = Arc::clone(&self.counters);
        let cache = self.cache.clone();
        self.inner
            .delete_stream(locations)
            .inspect(move |_| {
                counters.count(&counters.deletes);
                if let Some(cache) = &cache {
                    cache.clear();
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counters.count(&self.counters.lists);
        let Some(cache) = self.cache.clone().filter(|_| cacheable(prefix)) else {
            return self.inner.list(prefix);
        };
        let key = ListKey::All(prefix.cloned());
        if let Some(Listing::All(items)) = cache.get(&key) {
            self.counters.lists.fetch_sub(1, Ordering::Relaxed);
            self.counters.count(&self.counters.cached_lists);
            return futures::stream::iter(items.as_ref().clone().into_iter().map(Ok)).boxed();
        }
        let listing = self.inner.list(prefix);
        futures::stream::once(async move {
            let items: Vec<ObjectMeta> = listing.try_collect().await?;
            cache.put(key, Listing::All(Arc::new(items.clone())));
            Ok::<_, object_store::Error>(futures::stream::iter(items.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counters.count(&self.counters.lists);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let cache = self.cache.as_ref().filter(|_| cacheable(prefix));
        let key = ListKey::Delimited(prefix.cloned());
        if let Some(Listing::Delimited(result)) = cache.and_then(|c| c.get(&key)) {
            self.counters.count(&self.counters.cached_lists);
            let (common_prefixes, objects) = result.as_ref().clone();
            return Ok(ListResult {
                common_prefixes,
                objects,
            });
        }
        self.counters.count(&self.counters.lists);
        let result = self.inner.list_with_delimiter(prefix).await?;
        if let Some(cache) = cache {
            cache.put(
                key,
                Listing::Delimited(Arc::new((
                    result.common_prefixes.clone(),
                    result.objects.clone(),
                ))),
            );
        }
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.counters.count(&self.counters.puts);
        let result = self.inner.copy_opts(from, to, options).await;
        self.wrote();
        result
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.counters.count(&self.counters.puts);
        let result = self.inner.rename_opts(from, to, options).await;
        self.wrote();
        result
    }
}

/// A memory pool that remembers the most memory its queries held at once: the peak of
/// reserved bytes since the last [`PeakMemoryPool::reset_peak`]. Every operator that buffers
/// (joins, aggregations, sorts) reserves through the pool, so this is the query's working
/// memory as DataFusion accounts it, the same on every platform.
#[derive(Debug)]
pub struct PeakMemoryPool {
    inner: Arc<dyn MemoryPool>,
    peak: AtomicU64,
}

impl PeakMemoryPool {
    /// Wraps the pool a runtime would use (unbounded when none is set).
    pub fn wrap(inner: Option<Arc<dyn MemoryPool>>) -> Arc<dyn MemoryPool> {
        Arc::new(Self {
            inner: inner.unwrap_or_else(|| Arc::new(UnboundedMemoryPool::default())),
            peak: AtomicU64::new(0),
        })
    }

    /// The most bytes reserved at once since the last reset.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts measuring afresh from what is reserved now.
    pub fn reset_peak(&self) {
        self.peak
            .store(self.inner.reserved() as u64, Ordering::Relaxed);
    }

    fn observe(&self) {
        self.peak
            .fetch_max(self.inner.reserved() as u64, Ordering::Relaxed);
    }
}

impl fmt::Display for PeakMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeakMemoryPool({})", self.inner)
    }
}

impl MemoryPool for PeakMemoryPool {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.observe();
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::common::Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.observe();
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn listings_are_cached_until_a_write() {
        let counters = Arc::new(ScanCounters::default());
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = CountingStore::remote(
            Arc::clone(&inner),
            Arc::clone(&counters),
            Duration::from_secs(600),
        );
        let list = |store: &CountingStore| {
            let s = store.list(Some(&Path::from("t")));
            async move { s.try_collect::<Vec<_>>().await.expect("list").len() }
        };
        store
            .put(&Path::from("t/a"), "1".into())
            .await
            .expect("put");
        assert_eq!(list(&store).await, 1);
        // A file landed by someone else is not seen until the listing expires or is dropped.
        inner
            .put(&Path::from("t/b"), "2".into())
            .await
            .expect("put");
        assert_eq!(list(&store).await, 1);
        let summary = counters.summary();
        assert_eq!(
            (summary.requests.list, summary.requests.cached_list),
            (1, 1)
        );
        store.invalidate();
        assert_eq!(list(&store).await, 2);
        // Our own write drops the cache at once.
        store
            .put(&Path::from("t/c"), "3".into())
            .await
            .expect("put");
        assert_eq!(list(&store).await, 3);
        // Logs are never cached.
        assert!(!cacheable(Some(&Path::from("t/_delta_log"))));
    }

    #[test]
    fn peak_memory_is_the_most_held_at_once() {
        let pool = PeakMemoryPool::wrap(None);
        let a = MemoryConsumer::new("a").register(&pool);
        let b = MemoryConsumer::new("b").register(&pool);
        a.grow(100);
        b.try_grow(50).expect("unbounded");
        a.shrink(100);
        b.grow(10);
        let peak = pool.downcast_ref::<PeakMemoryPool>().expect("peak pool");
        assert_eq!(peak.peak(), 150);
        peak.reset_peak();
        assert_eq!(peak.peak(), 60);
    }
}
