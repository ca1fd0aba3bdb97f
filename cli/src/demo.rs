//! The demo warehouse: the sample retail star schema from `testdata/`, built into the
//! binary, written into a local warehouse's raw zone and registered there.

use std::path::PathBuf;

use anyhow::Context;
use strata_engine::Session;

const FILES: &[(&str, &[u8])] = &[
    (
        "products/products.csv",
        include_bytes!("../../testdata/retail/products/products.csv"),
    ),
    (
        "stores/stores.csv",
        include_bytes!("../../testdata/retail/stores/stores.csv"),
    ),
    (
        "sales/year=2024/month=01/part-0.ndjson",
        include_bytes!("../../testdata/retail/sales/year=2024/month=01/part-0.ndjson"),
    ),
    (
        "sales/year=2024/month=02/part-0.ndjson",
        include_bytes!("../../testdata/retail/sales/year=2024/month=02/part-0.ndjson"),
    ),
    (
        "sales/year=2024/month=03/part-0.ndjson",
        include_bytes!("../../testdata/retail/sales/year=2024/month=03/part-0.ndjson"),
    ),
    (
        "sales/year=2024/month=04/part-0.ndjson",
        include_bytes!("../../testdata/retail/sales/year=2024/month=04/part-0.ndjson"),
    ),
    (
        "sales/year=2024/month=05/part-0.ndjson",
        include_bytes!("../../testdata/retail/sales/year=2024/month=05/part-0.ndjson"),
    ),
    (
        "sales/year=2024/month=06/part-0.ndjson",
        include_bytes!("../../testdata/retail/sales/year=2024/month=06/part-0.ndjson"),
    ),
];

/// The demo warehouse's folder in the user's data directory.
pub fn default_location() -> PathBuf {
    crate::data_dir().join("demo")
}

/// Writes the sample files into the raw zone (if they are not there) and registers them.
pub async fn seed(session: &Session) -> anyhow::Result<()> {
    let snapshot = session.catalog().snapshot();
    let raw_root = snapshot.zone("raw")?.root.clone();
    let url = url_to_path(&raw_root)?;
    for (relative, bytes) in FILES {
        let path = url.join(relative);
        if !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    session.sql("REFRESH ZONE raw").await?;
    Ok(())
}

fn url_to_path(url: &str) -> anyhow::Result<PathBuf> {
    url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
        .context("the demo needs a local warehouse")
}
