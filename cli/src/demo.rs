//! The demo warehouse: the sample retail star schema from `testdata/`, built into the
//! binary, written into a local warehouse's raw zone and registered there.

use std::path::PathBuf;

use object_store::ObjectStoreExt;

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
/// The raw zone may be a local folder or a bucket.
pub async fn seed(session: &Session) -> anyhow::Result<()> {
    let snapshot = session.catalog().snapshot();
    let raw_root = snapshot.zone("raw")?.root.clone();
    let root =
        url::Url::parse(&raw_root).with_context(|| format!("bad raw zone root {raw_root}"))?;
    let store = session.store_for(&root)?;
    let prefix = object_store::path::Path::from_url_path(root.path())
        .with_context(|| format!("bad raw zone root {raw_root}"))?;
    for (relative, bytes) in FILES {
        let path = object_store::path::Path::from_iter(
            prefix
                .parts()
                .chain(relative.split('/').map(object_store::path::PathPart::from)),
        );
        match store.head(&path).await {
            Ok(_) => continue,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {raw_root}{relative}")),
        }
        store
            .put(&path, bytes::Bytes::from_static(bytes).into())
            .await
            .with_context(|| format!("cannot write {raw_root}{relative}"))?;
    }
    session.sql("REFRESH ZONE raw").await?;
    Ok(())
}
