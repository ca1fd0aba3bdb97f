//! `DESCRIBE HISTORY zone.t`: a Delta table's versions, newest first, with each commit's
//! time, operation, metrics and the SQL that made it.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use datafusion::sql::sqlparser::ast::ObjectName;
use strata_catalog::TableFormat;

use crate::error::{Error, Result};
use crate::providers::delta::{self, delta_error};
use crate::session::{Output, Session, table_output};
use crate::statements::SQL_METADATA_KEY;

/// `DESCRIBE HISTORY t`: one row per version, newest first.
pub(crate) async fn history(session: &Session, name: &ObjectName) -> Result<Output> {
    let (zone, table) = session.resolve(&crate::sql::table_reference(name))?;
    let snapshot = session.catalog().snapshot();
    let entry = snapshot.table(&zone, &table)?.clone();
    if entry.format != TableFormat::Delta {
        return Err(Error::Unsupported(format!(
            "DESCRIBE HISTORY needs a Delta table, and {} is {}",
            entry.qualified_name(),
            entry.format
        )));
    }
    let table = delta::load_latest(session.stores(), &entry).await?;
    let (versions, infos) = deltalake::logstore::get_all_versions_from(table.log_store(), 0)
        .await
        .map_err(delta_error)?;
    let mut v = vec![];
    let mut ts = vec![];
    let mut op = vec![];
    let mut metrics = vec![];
    let mut sql = vec![];
    for (version, info) in versions.iter().zip(infos.iter()).rev() {
        v.push(*version as i64);
        ts.push(
            info.timestamp
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
        );
        op.push(info.operation.clone());
        metrics.push(info.info.get("operationMetrics").map(|m| m.to_string()));
        sql.push(
            info.info
                .get(SQL_METADATA_KEY)
                .and_then(|s| s.as_str())
                .map(str::to_string),
        );
    }
    Ok(table_output(vec![
        ("version", Arc::new(Int64Array::from(v))),
        ("timestamp", Arc::new(StringArray::from(ts))),
        ("operation", Arc::new(StringArray::from(op))),
        ("operation_metrics", Arc::new(StringArray::from(metrics))),
        ("sql", Arc::new(StringArray::from(sql))),
    ]))
}
