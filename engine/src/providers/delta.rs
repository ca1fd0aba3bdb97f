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
use datafusion::common::{Constraints, Statistics};
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
        Ok(t) => Ok(t),
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

/// The DataFusion provider of a loaded table.
pub async fn provider(table: &DeltaTable) -> Result<Arc<dyn TableProvider>> {
    Ok(Arc::new(DeltaProvider {
        inner: table.table_provider().await?,
    }))
}

/// deltalake's provider, except that a filter without columns (a constant the optimizer
/// split off, as `x NOT IN (1, NULL)` over a NOT NULL `x` leaves `x <> 1 AND NULL`) is
/// pushed down as inexact: deltalake takes it as exact and does not apply it, which kept the
/// rows `NULL` excludes. DataFusion then applies it above the scan.
#[derive(Debug)]
struct DeltaProvider {
    inner: Arc<dyn TableProvider>,
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
