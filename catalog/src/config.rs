//! The config file, `strata.toml`: storage settings, zone roots and caching.
//!
//! ```toml
//! warehouse = "s3://media-lake/warehouse"   # used when --warehouse is not given
//!
//! [s3]
//! endpoint = "http://127.0.0.1:9000"        # MinIO; leave out for AWS
//! region = "us-east-1"
//! allow_http = true
//! access_key_id = "minioadmin"
//! secret_access_key = "minioadmin"
//!
//! [zones]                                   # zone roots, recorded in the catalog
//! raw = "s3://media-lake-raw/"
//! curated = "s3://media-lake-curated/"
//!
//! [cache]
//! listing_ttl_secs = 30                     # how long object-store listings are reused
//! ```
//!
//! and at the top level `memory_limit = "4GiB"` bounds the memory of a session's queries, and
//! `spill_dir = "/data/spill"` says where queries over it spill (the system's
//! temporary folder by default), and `cluster = "10.0.0.5:50050"` runs queries on the
//! cluster of that scheduler.
//!
//! The file is found at `--config`, else `$STRATA_CONFIG`, else `./strata.toml` when there is
//! one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::storage::S3Options;

/// The file name looked for in the current folder.
pub const CONFIG_FILE_NAME: &str = "strata.toml";

/// The variable that names a config file.
pub const CONFIG_ENV: &str = "STRATA_CONFIG";

/// What a config file says; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The warehouse to open when none is given on the command line.
    pub warehouse: Option<String>,
    /// S3 settings, over the AWS environment variables.
    #[serde(default)]
    pub s3: S3Options,
    /// Zone roots (`raw = "s3://bucket/"`): a zone may live in another bucket than the
    /// warehouse. Applied to the catalog when the warehouse opens.
    #[serde(default)]
    pub zones: BTreeMap<String, String>,
    #[serde(default)]
    pub cache: CacheOptions,
    /// Memory a session's queries may hold at once (`"4GiB"`, `"512MB"`, bytes); a query
    /// that needs more fails with "resources exhausted". Unlimited when unset.
    pub memory_limit: Option<String>,
    /// The folder sorts, aggregations and joins spill to when they outgrow the memory limit
    /// (created if missing). The system's temporary folder when unset.
    pub spill_dir: Option<String>,
    /// The scheduler (`HOST:PORT`) of a cluster to run queries on, when `--cluster` is not
    /// given.
    pub cluster: Option<String>,
}

/// Parses a size such as `4GiB`, `512MB`, `1.5G` or `1048576` (bytes) into bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches('B').trim_end_matches('I');
    let scale: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let bytes = number * scale as f64;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as u64)
}

/// Caching of object-store metadata.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheOptions {
    /// Seconds a listing of object-store files is reused before it is asked for again;
    /// strata's own writes and REFRESH drop it sooner. 0 turns the cache off. Local folders
    /// are never cached.
    pub listing_ttl_secs: Option<f64>,
}

impl Config {
    /// Reads a config file; errors name the file, and the line for syntax errors.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::InvalidConfig {
            source_name: path.display().to_string(),
            reason: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses config text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            Error::InvalidConfig {
                source_name: match line {
                    Some(line) => format!("{source_name}, line {line}"),
                    None => source_name.to_string(),
                },
                reason: e.message().to_string(),
            }
        })?;
        for (zone, root) in &config.zones {
            if !root.contains("://") && !root.starts_with('/') {
                return Err(Error::InvalidConfig {
                    source_name: source_name.to_string(),
                    reason: format!(
                        "zone '{zone}' has the root '{root}'; use a URL such as s3://bucket/{zone}/ or an absolute folder"
                    ),
                });
            }
        }
        Ok(config)
    }

    /// Finds the config file to use: `explicit`, else `$STRATA_CONFIG`, else `./strata.toml`
    /// if present. Returns its path and contents, or nothing when there is none.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<(PathBuf, Config)>> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => match std::env::var_os(CONFIG_ENV) {
                Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
                _ => {
                    let here = PathBuf::from(CONFIG_FILE_NAME);
                    here.is_file().then_some(here)
                }
            },
        };
        match path {
            Some(p) => Ok(Some((p.clone(), Self::load(&p)?))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section() {
        let c = Config::parse(
            r#"
warehouse = "s3://lake/wh"
[s3]
endpoint = "http://127.0.0.1:9000"
allow_http = true
secret_access_key = "s3cr3t"
[zones]
raw = "s3://lake-raw/"
[cache]
listing_ttl_secs = 5
"#,
            "strata.toml",
        )
        .expect("parses");
        assert_eq!(c.warehouse.as_deref(), Some("s3://lake/wh"));
        assert_eq!(c.zones["raw"], "s3://lake-raw/");
        assert_eq!(c.cache.listing_ttl_secs, Some(5.0));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("512MB"), Some(512 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("0"), None);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = Config::parse("[s3]\nendpoint = \"x\"\nbogus = 1\n", "my.toml")
            .expect_err("must fail")
            .to_string();
        assert!(e.contains("my.toml, line 3"), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e = Config::parse("[zones]\nraw = \"relative\"\n", "my.toml")
            .expect_err("must fail")
            .to_string();
        assert!(e.contains("zone 'raw'"), "{e}");
    }
}
