//! Where a warehouse lives: its root URL resolved to an object store and a prefix in it.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use url::Url;

use crate::error::{Error, Result};
use crate::model::{Action, DEFAULT_ZONES};
use crate::storage::{S3Options, explain_storage_error};

/// A warehouse root: the URL users gave, the store that serves it and the prefix of the
/// warehouse inside that store.
#[derive(Debug, Clone)]
pub struct Warehouse {
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl Warehouse {
    /// Opens a warehouse from a folder path, a `file://` URL or `memory://` (one process only),
    /// with S3 settings from the AWS environment variables for `s3://` URLs.
    ///
    /// A local folder is created if it does not exist.
    pub fn open(location: &str) -> Result<Self> {
        let s3 = if location.trim_start().starts_with("s3://") {
            S3Options::from_env()?
        } else {
            S3Options::default()
        };
        Self::open_with(location, &s3)
    }

    /// Opens a warehouse from a folder path, a `file://` URL, `memory://` or
    /// `s3://bucket/prefix` (with these S3 settings). The bucket must exist.
    pub fn open_with(location: &str, s3: &S3Options) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidWarehouse {
            url: crate::storage::mask_credentials(location),
            reason,
        };
        let location = location.trim();
        if location.is_empty() {
            return Err(invalid("the location is empty".into()));
        }
        if let Some(rest) = location.strip_prefix("memory://") {
            let url = Url::parse(&format!("memory:///{}", rest.trim_matches('/')))
                .map_err(|e| invalid(e.to_string()))?;
            return Ok(Self {
                url: with_trailing_slash(url),
                store: Arc::new(InMemory::new()),
                prefix: Path::from(rest.trim_matches('/')),
            });
        }
        let url = resolve_url(location).map_err(invalid)?;
        match url.scheme() {
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|_| invalid("not a local path".into()))?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| invalid(format!("cannot create folder {}: {e}", dir.display())))?;
                let dir = dir
                    .canonicalize()
                    .map_err(|e| invalid(format!("cannot open folder {}: {e}", dir.display())))?;
                let prefix = Path::from_absolute_path(&dir)
                    .map_err(|e| invalid(format!("unusable folder name: {e}")))?;
                let url = Url::from_directory_path(&dir)
                    .map_err(|_| invalid("not an absolute path".into()))?;
                Ok(Self {
                    url,
                    store: Arc::new(LocalFileSystem::new()),
                    prefix,
                })
            }
            "s3" | "s3a" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| {
                        invalid("an s3:// URL needs a bucket: s3://bucket/prefix".into())
                    })?
                    .to_string();
                let prefix = Path::from_url_path(url.path())
                    .map_err(|e| invalid(format!("unusable prefix: {e}")))?;
                let mut url = url.clone();
                if url.scheme() == "s3a" {
                    url = Url::parse(&url.as_str().replacen("s3a://", "s3://", 1))
                        .map_err(|e| invalid(e.to_string()))?;
                }
                Ok(Self {
                    url: with_trailing_slash(url),
                    store: s3.build_store(&bucket)?,
                    prefix,
                })
            }
            other => Err(invalid(format!(
                "the scheme '{other}://' is not supported; use a folder path, a file:// URL or s3://bucket/prefix"
            ))),
        }
    }

    /// Builds a warehouse over an existing store (S3 and other stores configured elsewhere).
    pub fn from_store(url: Url, store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self {
            url: with_trailing_slash(url),
            store,
            prefix,
        }
    }

    /// The same warehouse reached through another store (a wrapper of this one that counts or
    /// caches requests).
    pub fn with_store(&self, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            url: self.url.clone(),
            store,
            prefix: self.prefix.clone(),
        }
    }

    /// Checks that the store answers: a missing bucket, refused credentials or a server that
    /// stays down become one clear error naming the endpoint and bucket.
    pub async fn check(&self, s3: &S3Options) -> Result<()> {
        if self.url.scheme() != "s3" {
            return Ok(());
        }
        let bucket = self.url.host_str().unwrap_or_default();
        match self.store.list_with_delimiter(Some(&self.prefix)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::StorageUnavailable {
                message: format!(
                    "cannot open warehouse {}: {}",
                    self.url,
                    explain_storage_error(&e, s3, bucket)
                ),
            }),
        }
    }

    /// The warehouse root URL, ending in `/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The object store that holds the warehouse.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The warehouse prefix inside its store.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// A path inside the warehouse, from `/`-separated parts relative to its root.
    pub fn path(&self, relative: &str) -> Path {
        let mut parts: Vec<String> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        parts.extend(
            relative
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        Path::from_iter(parts)
    }

    /// How the catalog stores a location (a zone root, a table location): relative to the
    /// warehouse root when it lies inside the warehouse, so that the warehouse can be copied or
    /// moved as a folder (or a prefix), and as the absolute URL when it lies elsewhere.
    pub fn to_stored(&self, location: &str) -> String {
        match location.strip_prefix(self.url.as_str()) {
            Some("") => ".".to_string(),
            Some(rest) => rest.to_string(),
            None => location.to_string(),
        }
    }

    /// The URL of a location as the catalog stores it: a relative one is joined to this
    /// warehouse's root; an absolute one under `moved_from` (the root an older strata recorded
    /// its absolute locations under, when the warehouse has since been copied or moved) is
    /// rebased onto this root; any other absolute URL is kept.
    pub fn from_stored(&self, stored: &str, moved_from: Option<&str>) -> Result<String> {
        if !is_absolute(stored) {
            let rest = if stored == "." { "" } else { stored };
            if rest.starts_with('/')
                || rest
                    .split('/')
                    .any(|part| part == ".." || part == "." || part.contains('\\'))
            {
                return Err(Error::InvalidWarehouse {
                    url: self.url.to_string(),
                    reason: format!(
                        "the catalog holds the location '{stored}', which leaves the warehouse; the catalog was edited by hand or damaged"
                    ),
                });
            }
            return Ok(format!("{}{rest}", self.url));
        }
        if let Some(old) = moved_from.filter(|old| *old != self.url.as_str())
            && let Some(rest) = stored.strip_prefix(old)
        {
            return Ok(format!("{}{rest}", self.url));
        }
        Ok(stored.to_string())
    }

    /// The path of a URL inside this warehouse's store, when the store serves it (the same
    /// local disk, or the same bucket).
    pub fn store_path(&self, url: &Url) -> Option<Path> {
        match (self.url.scheme(), url.scheme()) {
            ("file", "file") => Path::from_absolute_path(url.to_file_path().ok()?).ok(),
            ("s3", "s3") if self.url.host_str() == url.host_str() => {
                Path::from_url_path(url.path()).ok()
            }
            _ => None,
        }
    }

    /// The URL of a folder inside the warehouse, ending in `/`.
    pub fn folder_url(&self, relative: &str) -> Url {
        let rel = relative.trim_matches('/');
        let joined = self
            .url
            .join(&format!("{rel}/"))
            .unwrap_or_else(|_| self.url.clone());
        with_trailing_slash(joined)
    }
}

/// True for a location stored as a URL (`file:///…`, `s3://…`), false for one stored relative
/// to the warehouse root.
pub fn is_absolute(location: &str) -> bool {
    location.contains("://")
}

/// The warehouse root an older strata (catalog format 1, which stored absolute URLs) created
/// the warehouse at, read from the roots of the default zones in its first commit: each was
/// `<root><zone>/`. `None` when the commit stores relative roots or has another shape.
pub fn legacy_root(first_commit: &[Action]) -> Option<String> {
    let mut found: Option<&str> = None;
    for action in first_commit {
        let Action::SetZone(zone) = action else {
            continue;
        };
        if !DEFAULT_ZONES.contains(&zone.name.as_str()) || !is_absolute(&zone.root) {
            continue;
        }
        let base = zone.root.strip_suffix(&format!("{}/", zone.name))?;
        if !base.ends_with('/') || found.is_some_and(|f| f != base) {
            return None;
        }
        found = Some(base);
    }
    found.map(str::to_string)
}

/// Turns a user's location (path or URL) into a URL; relative paths are made absolute.
pub fn resolve_url(location: &str) -> std::result::Result<Url, String> {
    if location.contains("://") {
        return Url::parse(location).map_err(|e| format!("not a valid URL: {e}"));
    }
    let path = PathBuf::from(location);
    let abs = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot read the current folder: {e}"))?
            .join(path)
    };
    Url::from_file_path(&abs).map_err(|_| format!("'{}' is not a usable path", abs.display()))
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url
}
