//! Reading exactly the files a table's catalog entry lists.
//!
//! A Parquet table strata writes records its data files in its catalog entry
//! (`TableEntry::files`), so a write that has put new files in the folder but not yet
//! committed them, or an `INSERT OVERWRITE` whose old files are still there, never shows to
//! readers. DataFusion's listing table lists a folder; here the folder it lists is a view of
//! the committed files: the table reads through a `strata-files://<set>/…` URL whose store
//! lists only the files of that set (from the entry, without asking the real store) and
//! reads them from the real store. Everything else (hive partitions and their pruning,
//! statistics, declared orders) is the listing table's as for any folder.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use strata_catalog::TableEntry;
use url::Url;

use crate::error::{Error, Result as EngineResult};

/// The URL scheme of file-set views.
pub const SCHEME: &str = "strata-files";

/// At most this many file sets are remembered per process; the oldest are forgotten first.
const MAX_SETS: usize = 4096;

/// One committed file set: where its files really are, and what they are.
#[derive(Debug)]
pub(crate) struct FileSet {
    /// `scheme://host/` of the store the files are in.
    pub real: Url,
    files: BTreeMap<Path, ObjectMeta>,
}

#[derive(Default)]
struct Sets {
    by_key: HashMap<String, Arc<FileSet>>,
    order: std::collections::VecDeque<String>,
}

fn sets() -> std::sync::MutexGuard<'static, Sets> {
    static SETS: std::sync::OnceLock<Mutex<Sets>> = std::sync::OnceLock::new();
    SETS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The URL a listing table reads `entry` through: its location itself when the entry does
/// not list its files, otherwise a view of exactly the listed files.
pub(crate) fn listing_url(entry: &TableEntry) -> EngineResult<String> {
    let Some(files) = &entry.files else {
        return Ok(entry.location.clone());
    };
    let location = Url::parse(&entry.location).map_err(|e| {
        Error::Unsupported(format!(
            "{} has an invalid location '{}': {e}",
            entry.qualified_name(),
            entry.location
        ))
    })?;
    let root = Path::from_url_path(location.path())
        .map_err(|e| Error::Unsupported(format!("unusable path in '{}': {e}", entry.location)))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    entry.location.hash(&mut hasher);
    files.hash(&mut hasher);
    let key = format!("s{:016x}", hasher.finish());
    let mut real = location.clone();
    real.set_path("/");
    let last_modified = entry.updated_at;
    let metas = files
        .iter()
        .map(|f| {
            let location = join(&root, &f.path);
            (
                location.clone(),
                ObjectMeta {
                    location,
                    last_modified,
                    size: f.size,
                    e_tag: None,
                    version: None,
                },
            )
        })
        .collect();
    let mut guard = sets();
    if !guard.by_key.contains_key(&key) {
        guard
            .by_key
            .insert(key.clone(), Arc::new(FileSet { real, files: metas }));
        guard.order.push_back(key.clone());
        while guard.order.len() > MAX_SETS {
            if let Some(old) = guard.order.pop_front() {
                guard.by_key.remove(&old);
            }
        }
    }
    drop(guard);
    // The path part keeps the location's own encoding.
    Ok(format!("{SCHEME}://{key}{}", location.path()))
}

/// `root/relative`, with `relative` in the store's own encoding (as `DataFile::path` keeps
/// it).
pub(crate) fn join(root: &Path, relative: &str) -> Path {
    let full = if root.as_ref().is_empty() {
        relative.to_string()
    } else {
        format!("{}/{relative}", root.as_ref())
    };
    Path::parse(&full).unwrap_or_else(|_| Path::from(full.as_str()))
}

/// `path` relative to `root`, in the store's own encoding.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let root = root.as_ref();
    let path = path.as_ref();
    if root.is_empty() {
        return path.to_string();
    }
    path.strip_prefix(root)
        .map(|p| p.trim_start_matches('/').to_string())
        .unwrap_or_else(|| path.to_string())
}

/// The file set a `strata-files://` URL names.
pub(crate) fn lookup(url: &Url) -> Option<Arc<FileSet>> {
    let key = url.host_str()?;
    sets().by_key.get(key).cloned()
}

/// A store that lists only a file set's files and reads them from the real store.
pub(crate) struct FileSetStore {
    inner: Arc<dyn ObjectStore>,
    set: Arc<FileSet>,
}

impl FileSetStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, set: Arc<FileSet>) -> Self {
        Self { inner, set }
    }

    fn under<'a>(&'a self, prefix: Option<&'a Path>) -> impl Iterator<Item = &'a ObjectMeta> {
        self.set
            .files
            .values()
            .filter(move |m| prefix.is_none_or(|p| m.location.prefix_matches(p)))
    }
}

impl fmt::Debug for FileSetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FileSetStore({} files of {})",
            self.set.files.len(),
            self.inner
        )
    }
}

impl fmt::Display for FileSetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "committed files of {}", self.inner)
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotSupported {
        source: "the committed files of a table are read-only; strata writes tables through their catalog entry".into(),
    }
}

#[async_trait]
impl ObjectStore for FileSetStore {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> Result<PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let items: Vec<_> = self.under(prefix).cloned().map(Ok).collect();
        futures::stream::iter(items).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let depth = prefix.map_or(0, |p| p.parts().count());
        let mut objects = vec![];
        let mut folders = BTreeSet::new();
        for meta in self.under(prefix) {
            let parts: Vec<_> = meta.location.parts().collect();
            if parts.len() == depth + 1 {
                objects.push(meta.clone());
            } else if parts.len() > depth + 1 {
                folders.insert(Path::from_iter(parts[..=depth].iter().cloned()));
            }
        }
        Ok(ListResult {
            common_prefixes: folders.into_iter().collect(),
            objects,
        })
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> Result<()> {
        Err(read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn lists_only_the_committed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
        let folder = dir.path().join("t");
        std::fs::create_dir_all(folder.join("g=1")).expect("folder");
        for name in ["g=1/a.parquet", "g=1/uncommitted.parquet", "b.parquet"] {
            std::fs::write(folder.join(name), b"xyz").expect("file");
        }
        let location = Url::from_directory_path(&folder).expect("url").to_string();
        let mut entry = TableEntry::new(
            "processed",
            "t",
            strata_catalog::TableFormat::Parquet,
            &location,
        );
        entry.files = Some(vec![
            strata_catalog::DataFile {
                path: "g=1/a.parquet".into(),
                size: 3,
            },
            strata_catalog::DataFile {
                path: "b.parquet".into(),
                size: 3,
            },
        ]);
        let url = Url::parse(&listing_url(&entry).expect("url")).expect("parse");
        assert_eq!(url.scheme(), SCHEME);
        let store = FileSetStore::new(real, lookup(&url).expect("registered"));
        let root = Path::from_url_path(url.path()).expect("path");
        let listed: Vec<String> = store
            .list(Some(&root))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list");
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.iter().all(|l| !l.contains("uncommitted")));
        let top = store.list_with_delimiter(Some(&root)).await.expect("list");
        assert_eq!(top.objects.len(), 1);
        assert_eq!(top.common_prefixes.len(), 1);
        let bytes = object_store::ObjectStoreExt::get(&store, &top.objects[0].location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(&bytes[..], b"xyz");
    }
}
