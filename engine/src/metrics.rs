//! What a query read: an object store wrapper that counts the files opened and the bytes
//! requested, whatever the format (JSON, CSV, Parquet, Delta), plus counters the readers
//! report into (malformed lines skipped).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Counters of one session's reads, reset at the start of each statement.
#[derive(Debug, Default)]
pub struct ScanCounters {
    bytes: AtomicU64,
    files: Mutex<BTreeSet<String>>,
    skipped_lines: AtomicU64,
    skipped_by_file: Mutex<Vec<(String, u64)>>,
}

/// A snapshot of [`ScanCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Distinct data files opened.
    pub files: u64,
    /// Bytes requested from storage.
    pub bytes: u64,
    /// Malformed lines skipped by tables read with `skip_malformed`.
    pub skipped_lines: u64,
}

impl ScanCounters {
    /// Starts counting afresh.
    pub fn reset(&self) {
        self.bytes.store(0, Ordering::Relaxed);
        lock(&self.files).clear();
        self.skipped_lines.store(0, Ordering::Relaxed);
        lock(&self.skipped_by_file).clear();
    }

    /// What was read since the last reset.
    pub fn summary(&self) -> ScanSummary {
        ScanSummary {
            files: lock(&self.files).len() as u64,
            bytes: self.bytes.load(Ordering::Relaxed),
            skipped_lines: self.skipped_lines.load(Ordering::Relaxed),
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

    pub(crate) fn record_read(&self, path: &Path, bytes: u64) {
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An object store that counts what is read through it.
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<ScanCounters>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, counters: Arc<ScanCounters>) -> Self {
        Self { inner, counters }
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

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            self.counters
                .record_read(location, result.range.end - result.range.start);
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let result = self.inner.get_ranges(location, ranges).await?;
        let bytes: u64 = result.iter().map(|b| b.len() as u64).sum();
        self.counters.record_read(location, bytes);
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
