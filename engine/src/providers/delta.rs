//! Delta tables, read through deltalake's DataFusion provider: at the latest version at query
//! time, or at an older one when a query says `VERSION AS OF n` or `TIMESTAMP AS OF '…'`.
//!
//! Time travel reaches the engine as a table name: strata's parser (`crate::sql`) folds
//! `sales VERSION AS OF 3` into the quoted name `"sales@v3"` (DataFusion's generic SQL
//! dialect has no such clause), and the zone schema resolves that name to the table at
//! version 3 with [`AsOf::split_name`].
//!
//! deltalake's provider is wrapped ([`DeltaProvider`]) so that a filter without columns is
//! never taken as applied by the scan.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Constraints, DataFusionError, Statistics};
use datafusion::datasource::TableType;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use chrono::{DateTime, NaiveDateTime, Utc};
use datafusion::catalog::TableProvider;
use deltalake::{DeltaTable, DeltaTableBuilder};
use url::Url;

use crate::error::{Error, Result};
use crate::providers::stores::StoreRegistry;

/// Which version of a Delta table to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    Latest,
    Version(u64),
    Timestamp(DateTime<Utc>),
}

impl AsOf {
    /// Splits a table name into the table and the version it asks for (`sales@v3`,
    /// `sales@t2026-01-01 00:00:00`).
    pub fn split_name(name: &str) -> Result<(&str, AsOf)> {
        let Some((table, spec)) = name.split_once('@') else {
            return Ok((name, AsOf::Latest));
        };
        if let Some(v) = spec.strip_prefix('v') {
            let version = v.parse().map_err(|_| {
                Error::Unsupported(format!("VERSION AS OF needs a whole number, not '{v}'"))
            })?;
            return Ok((table, AsOf::Version(version)));
        }
        if let Some(t) = spec.strip_prefix('t') {
            return Ok((table, AsOf::Timestamp(parse_timestamp(t)?)));
        }
        Err(Error::Unsupported(format!("'{name}' is not a table name")))
    }
}

fn parse_timestamp(text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
        if format == "%Y-%m-%d"
            && let Ok(d) = chrono::NaiveDate::parse_from_str(text, format)
        {
            return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        }
    }
    Err(Error::Unsupported(format!(
        "TIMESTAMP AS OF '{text}': use a timestamp such as '2026-01-01 00:00:00' (UTC) or RFC 3339"
    )))
}

/// Loads a Delta table at the version asked for, reading through the session's store for
/// its location (so S3 settings apply and the read counters see what is read). A version
/// that does not exist is an error naming the latest one.
pub async fn load(
    stores: &StoreRegistry,
    location: &str,
    as_of: &AsOf,
    table: &str,
) -> Result<DeltaTable> {
    let url = Url::parse(location).map_err(|e| {
        Error::Unsupported(format!("{table} has an invalid location '{location}': {e}"))
    })?;
    let builder = builder(stores, &url)?;
    let builder = match as_of {
        AsOf::Latest => builder,
        AsOf::Version(v) => builder.with_version(*v),
        AsOf::Timestamp(t) => builder.with_timestamp(*t),
    };
    match builder.load().await {
        Ok(t) => {
            if let AsOf::Timestamp(at) = as_of {
                existed_at(&t, *at, table)?;
            }
            if *as_of != AsOf::Latest {
                not_vacuumed(stores, &url, &t, table).await?;
            }
            Ok(t)
        }
        Err(e) if *as_of != AsOf::Latest => {
            let latest = match self::builder(stores, &url)?.build() {
                Ok(t) => t.get_latest_version().await.ok(),
                Err(_) => None,
            };
            match (as_of, latest) {
                (AsOf::Version(v), Some(latest)) if *v > latest => Err(Error::Unsupported(
                    format!("{table} has no version {v}; its latest version is {latest}"),
                )),
                _ => Err(Error::Unsupported(format!("{table}: {e}"))),
            }
        }
        Err(e) => Err(Error::Unsupported(format!(
            "{table} at '{location}' cannot be read as a Delta table: {e}"
        ))),
    }
}

/// deltalake takes a time before a table's oldest version as that version; in SQL the table
/// had no rows to show then, so this is an error naming the oldest version's commit time.
/// The time of a version is its commit file's, as Delta defines it.
fn existed_at(t: &DeltaTable, at: DateTime<Utc>, table: &str) -> Result<()> {
    let Some(version) = t.version() else {
        return Ok(());
    };
    let Some(millis) = t.snapshot().ok().and_then(|s| s.version_timestamp(version)) else {
        return Ok(());
    };
    if millis <= at.timestamp_millis() {
        return Ok(());
    }
    let committed = DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|c| c.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_else(|| millis.to_string());
    let at = at.format("%Y-%m-%d %H:%M:%S UTC");
    Err(Error::Unsupported(if version == 0 {
        format!(
            "{table} did not exist at {at}: its first commit (version 0) was at {committed}; ask for a time at or after it"
        )
    } else {
        format!(
            "{table} has no version as old as {at}: the oldest version its log keeps is {version}, committed at {committed}"
        )
    }))
}

/// An old version whose files a later VACUUM removed cannot be read; say so when it is
/// loaded rather than fail on a missing file in the middle of a scan. Only versions older
/// than a VACUUM in the log are checked, and only their files the latest version no longer
/// has (the only ones VACUUM deletes), one HEAD request each.
async fn not_vacuumed(
    stores: &StoreRegistry,
    url: &Url,
    old: &DeltaTable,
    table: &str,
) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    use object_store::ObjectStoreExt;
    let (Some(version), Ok(latest)) = (old.version(), builder(stores, url)?.load().await) else {
        return Ok(());
    };
    let Some(newest) = latest.version().filter(|&n| n > version) else {
        return Ok(());
    };
    let limit = usize::try_from(newest - version).unwrap_or(usize::MAX);
    let commits: Vec<_> = latest
        .history(Some(limit))
        .try_collect()
        .await
        .unwrap_or_default();
    let Some(vacuum) = commits
        .iter()
        .find(|c| c.operation.as_deref() == Some("VACUUM END"))
    else {
        return Ok(());
    };
    let (Ok(old_state), Ok(new_state)) = (old.snapshot(), latest.snapshot()) else {
        return Ok(());
    };
    let kept: std::collections::HashSet<_> = new_state
        .log_data()
        .into_iter()
        .map(|add| add.object_store_path())
        .collect();
    let gone: Vec<_> = old_state
        .log_data()
        .into_iter()
        .map(|add| add.object_store_path())
        .filter(|path| !kept.contains(path))
        .collect();
    let store = old.log_store().object_store(None);
    let mut missing = futures::stream::iter(gone)
        .map(|path| {
            let store = store.clone();
            async move {
                match store.head(&path).await {
                    Err(object_store::Error::NotFound { .. }) => Some(path),
                    _ => None,
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(futures::future::ready);
    if let Some(path) = missing.next().await {
        let when = vacuum
            .timestamp
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default();
        return Err(Error::Unsupported(format!(
            "{table} version {version} can no longer be read: a VACUUM{when} removed its files (such as {path}); read the latest version or one VACUUM kept"
        )));
    }
    Ok(())
}

/// A registered Delta table at its latest version.
pub async fn load_latest(
    stores: &StoreRegistry,
    entry: &strata_catalog::TableEntry,
) -> Result<DeltaTable> {
    load(
        stores,
        &entry.location,
        &AsOf::Latest,
        &entry.qualified_name(),
    )
    .await
}

/// A table handle at `url` that has not read its log (to create a table there).
pub fn unloaded(stores: &StoreRegistry, url: &Url) -> Result<DeltaTable> {
    builder(stores, url)?.build().map_err(delta_error)
}

fn builder(stores: &StoreRegistry, url: &Url) -> Result<DeltaTableBuilder> {
    use datafusion::execution::object_store::ObjectStoreRegistry;
    let store = stores.get_store(url)?;
    Ok(DeltaTableBuilder::from_url(url.clone())
        .map_err(delta_error)?
        .with_storage_backend(store, url.clone()))
}

/// The DataFusion provider of a loaded table; `name` names it in errors (`curated.sales`).
pub async fn provider(table: &DeltaTable, name: &str) -> Result<Arc<dyn TableProvider>> {
    Ok(Arc::new(DeltaProvider {
        inner: table.table_provider().await?,
        table: table.clone(),
        name: name.to_string(),
    }))
}

/// deltalake's provider, except that a filter without columns (a constant the optimizer
/// split off, as `x NOT IN (1, NULL)` over a NOT NULL `x` leaves `x <> 1 AND NULL`) is
/// pushed down as inexact: deltalake takes it as exact and does not apply it, which kept the
/// rows `NULL` excludes. DataFusion then applies it above the scan.
///
/// A session that runs on a cluster scans the table as plain Parquet
/// ([`crate::providers::delta_parquet`]), whose plan can travel to executors.
struct DeltaProvider {
    inner: Arc<dyn TableProvider>,
    /// The table at the version read, for plain Parquet scans.
    table: DeltaTable,
    name: String,
}

impl std::fmt::Debug for DeltaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeltaProvider({})", self.name)
    }
}

#[async_trait]
impl TableProvider for DeltaProvider {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.inner.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        // On a cluster always (deltalake's scan cannot travel there; what a plain scan cannot
        // read is refused), in a process where the switch is on and the table allows it
        // (else deltalake's scan reads it).
        let config = state.config_options();
        let on_cluster = crate::optimizer::on_cluster(config);
        if on_cluster || crate::optimizer::enabled(config, "delta_scans_as_parquet") {
            match crate::providers::delta_parquet::cannot_read_plainly(&self.table, &self.name) {
                Some(why) if on_cluster => {
                    return Err(DataFusionError::External(Box::new(
                        crate::error::Error::Unsupported(why),
                    )));
                }
                Some(_) => return self.inner.scan(state, projection, filters, limit).await,
                None => {}
            }
            let refs: Vec<&Expr> = filters.iter().collect();
            let exact: Vec<Expr> = filters
                .iter()
                .zip(self.supports_filters_pushdown(&refs)?)
                .filter(|(_, how)| *how == TableProviderFilterPushDown::Exact)
                .map(|(filter, _)| filter.clone())
                .collect();
            return crate::providers::delta_parquet::scan(
                &self.table,
                &self.name,
                &self.schema(),
                state,
                projection,
                filters,
                &exact,
                limit,
            )
            .await;
        }
        self.inner.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        let mut pushdown = self.inner.supports_filters_pushdown(filters)?;
        for (filter, how) in filters.iter().zip(pushdown.iter_mut()) {
            if *how == TableProviderFilterPushDown::Exact && filter.column_refs().is_empty() {
                *how = TableProviderFilterPushDown::Inexact;
            }
        }
        Ok(pushdown)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }
}

/// The id a strata write carries into its Delta commit, as an application transaction
/// (`txn` action) and in the commit's metadata. A write whose commit request failed in a way
/// that hides whether it was stored (a response lost after the server wrote it, a retried
/// put finding its own first attempt) looks for its id in the table to tell "landed" from
/// "not landed"; and because a commit carrying it conflicts with any other commit carrying
/// it, deltalake's retry after such a failure cannot commit the write a second time.
#[derive(Debug, Clone)]
pub struct WriteId(String);

/// The commit metadata key of a write's id.
pub const TXN_METADATA_KEY: &str = "strata.txn";

impl WriteId {
    pub fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self(format!(
            "strata-{nanos:x}-{:x}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Commit properties with this id and `metadata`.
    pub fn properties(
        &self,
        metadata: impl IntoIterator<Item = (String, serde_json::Value)>,
    ) -> deltalake::kernel::transaction::CommitProperties {
        let mut metadata: Vec<(String, serde_json::Value)> = metadata.into_iter().collect();
        metadata.push((
            TXN_METADATA_KEY.to_string(),
            serde_json::Value::String(self.0.clone()),
        ));
        deltalake::kernel::transaction::CommitProperties::default()
            .with_metadata(metadata)
            .with_application_transaction(deltalake::kernel::Transaction::new(&self.0, 0))
    }

    /// After a write failed: the commit info of its commit if it landed anyway, `None` if it
    /// did not; an error if the table cannot be read to tell.
    pub async fn landed(
        &self,
        stores: &StoreRegistry,
        location: &str,
        table: &str,
    ) -> Result<Option<deltalake::kernel::CommitInfo>> {
        use futures::TryStreamExt;
        let mut last = None;
        for attempt in 0..5u32 {
            match load(stores, location, &AsOf::Latest, table).await {
                Ok(t) => {
                    let recent: Vec<deltalake::kernel::CommitInfo> = t
                        .history(Some(50))
                        .try_collect()
                        .await
                        .map_err(delta_error)?;
                    return Ok(recent.into_iter().find(|c| {
                        c.info.get(TXN_METADATA_KEY).and_then(|v| v.as_str())
                            == Some(self.0.as_str())
                    }));
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
        Err(last.unwrap_or_else(|| Error::Unsupported(format!("{table} cannot be read"))))
    }

    /// The outcome of a failed write: `Ok(info)` of its commit if it landed, else an error
    /// saying it did not land (with the write's own error) or that its outcome is unknown.
    pub async fn settle(
        &self,
        stores: &StoreRegistry,
        location: &str,
        table: &str,
        statement: &str,
        error: Error,
    ) -> Result<deltalake::kernel::CommitInfo> {
        match self.landed(stores, location, table).await {
            Ok(Some(info)) => {
                tracing::warn!(
                    "{statement} on {table}: the commit landed although the write reported an error ({error})"
                );
                Ok(info)
            }
            Ok(None) => Err(Error::Unsupported(format!(
                "{statement} on {table} did not land, nothing was changed: {error}"
            ))),
            Err(read) => Err(Error::Unsupported(format!(
                "{statement} on {table}: the outcome is unknown, the write failed ({error}) and reading the table to tell whether its commit landed failed too ({read}); DESCRIBE HISTORY {table} shows a commit with {TXN_METADATA_KEY} = '{}' if it did",
                self.0
            ))),
        }
    }
}

impl Default for WriteId {
    fn default() -> Self {
        Self::new()
    }
}

/// A number from a commit's `operationMetrics`.
pub fn commit_metric(info: &deltalake::kernel::CommitInfo, name: &str) -> u64 {
    info.info
        .get("operationMetrics")
        .and_then(|m| m.get(name))
        .and_then(|n| n.as_u64())
        .or_else(|| {
            info.operation_parameters
                .as_ref()
                .and_then(|m| m.get(name))
                .and_then(|n| n.as_u64())
        })
        .unwrap_or(0)
}

/// A deltalake error as an engine error.
pub fn delta_error(e: deltalake::DeltaTableError) -> Error {
    Error::Unsupported(format!("Delta: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_table_and_version() {
        assert_eq!(AsOf::split_name("t@v7").ok(), Some(("t", AsOf::Version(7))));
        assert_eq!(AsOf::split_name("t").ok(), Some(("t", AsOf::Latest)));
        assert!(AsOf::split_name("t@vx").is_err());
    }
}
