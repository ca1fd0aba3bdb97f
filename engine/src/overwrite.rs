//! `INSERT OVERWRITE t [PARTITION (cols)] query`: without PARTITION the query's rows replace
//! the whole table; with it, they replace only the partitions they fall in, and the other
//! partitions stay as they are. Delta tables do it in one version (a replace-where write);
//! strata-written Parquet tables write the rows to a staging folder first and swap the
//! partitions' files only once every row is written.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::sql::sqlparser::ast::{Expr, Insert, TableObject};
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_catalog::{RAW_ZONE, TableFormat};
use url::Url;

use crate::delta::{self, delta_error};
use crate::error::{Error, Result};
use crate::session::{Output, Session, count_output};

/// Runs `INSERT OVERWRITE` when strata must do it itself; `None` leaves the statement to
/// DataFusion (whole-table overwrite of a Delta table).
pub(crate) async fn run(session: &Session, ins: &Insert, sql: &str) -> Result<Option<Output>> {
    if !ins.overwrite {
        return Ok(None);
    }
    let TableObject::TableName(name) = &ins.table else {
        return Ok(None);
    };
    let name = name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_string())
        .collect::<Vec<_>>()
        .join(".");
    let (zone, table) =
        session.resolve(&datafusion::common::TableReference::from(name.as_str()))?;
    let entry = session
        .catalog()
        .snapshot()
        .table(&zone, &table.to_ascii_lowercase())?
        .clone();
    if zone == RAW_ZONE {
        return Err(Error::ReadOnlyZone {
            table: entry.qualified_name(),
            statement: "INSERT OVERWRITE".into(),
        });
    }
    let partition_cols: Vec<String> = entry
        .partition_columns
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let by_partition = match &ins.partitioned {
        None => false,
        Some(exprs) => {
            let named: Vec<String> = exprs
                .iter()
                .map(|e| match e {
                    Expr::Identifier(i) => Ok(i.value.to_ascii_lowercase()),
                    other => Err(Error::Unsupported(format!(
                        "INSERT OVERWRITE … PARTITION ({other}): name the partition columns only; the rows' own values pick the partitions to replace"
                    ))),
                })
                .collect::<Result<_>>()?;
            if named != partition_cols {
                return Err(Error::Unsupported(format!(
                    "{} is partitioned by ({}), not ({})",
                    entry.qualified_name(),
                    partition_cols.join(", "),
                    named.join(", ")
                )));
            }
            true
        }
    };
    if !ins.columns.is_empty() {
        return Err(Error::Unsupported(
            "INSERT OVERWRITE with a column list is not supported; select the table's columns in order".into(),
        ));
    }
    let Some(source) = &ins.source else {
        return Ok(None);
    };
    let df = session.plan_query(&source.to_string()).await?;
    // The query's columns are taken by position, as INSERT does.
    let target_schema = session
        .plan_query(&format!("SELECT * FROM {} LIMIT 0", entry.qualified_name()))
        .await?
        .schema()
        .clone();
    if df.schema().fields().len() != target_schema.fields().len() {
        return Err(Error::Unsupported(format!(
            "{} has {} columns but the query gives {}",
            entry.qualified_name(),
            target_schema.fields().len(),
            df.schema().fields().len()
        )));
    }
    let aliased: Vec<datafusion::prelude::Expr> = df
        .schema()
        .columns()
        .into_iter()
        .zip(target_schema.fields().iter())
        .map(|(c, f)| datafusion::prelude::col(c).alias(f.name()))
        .collect();
    let df = df.select(aliased)?;
    let values = if by_partition {
        let cols: Vec<&str> = partition_cols.iter().map(String::as_str).collect();
        let distinct = df
            .clone()
            .select_columns(&cols)?
            .distinct()?
            .collect()
            .await?;
        partition_values(&distinct)?
    } else {
        vec![]
    };
    // The write reports its row count, so the query is not run again just to count.
    let rows_written: u64 = match entry.format {
        TableFormat::Delta => {
            let table = delta::load_latest(session.stores(), &entry).await?;
            let mut builder = table
                .write(vec![])
                .with_input_plan(df.logical_plan().clone())
                .with_session_state(Arc::new(session.context().state()))
                .with_save_mode(SaveMode::Overwrite)
                .with_commit_properties(
                    deltalake::kernel::transaction::CommitProperties::default().with_metadata([(
                        crate::ctas::SQL_METADATA_KEY.to_string(),
                        serde_json::Value::String(sql.trim().to_string()),
                    )]),
                );
            if by_partition {
                if values.is_empty() {
                    return Ok(Some(count_output(0)));
                }
                let predicate = values
                    .iter()
                    .map(|tuple| {
                        let conj: Vec<String> = partition_cols
                            .iter()
                            .zip(tuple)
                            .map(|(c, v)| match v {
                                Some(v) => format!("{c} = '{}'", v.replace('\'', "''")),
                                None => format!("{c} IS NULL"),
                            })
                            .collect();
                        format!("({})", conj.join(" AND "))
                    })
                    .collect::<Vec<_>>()
                    .join(" OR ");
                builder = builder.with_replace_where(predicate);
            }
            let table = builder.await.map_err(delta_error)?;
            let last: Vec<_> = table
                .history(Some(1))
                .try_collect()
                .await
                .map_err(delta_error)?;
            last.first()
                .and_then(|c| c.info.get("operationMetrics"))
                .and_then(|m| m.get("num_added_rows"))
                .and_then(|n| n.as_u64())
                .unwrap_or(0)
        }
        TableFormat::Parquet => {
            let url = Url::parse(&entry.location)
                .map_err(|e| Error::Unsupported(format!("bad location {}: {e}", entry.location)))?;
            let store = session.store_for(&url)?;
            let root = crate::register::url_path(&url)?;
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let staging_name = format!("_strata_staging_{stamp}");
            let staging_url = format!("{}{staging_name}/", entry.location);
            let staging = Path::from_iter(
                root.parts()
                    .chain(std::iter::once(staging_name.as_str().into())),
            );
            let options = DataFrameWriteOptions::new().with_partition_by(partition_cols.clone());
            let written = match df.write_parquet(&staging_url, options, None).await {
                Ok(batches) => batches,
                Err(e) => {
                    remove_all(&store, &staging).await;
                    return Err(e.into());
                }
            };
            let staged: Vec<_> = store
                .list(Some(&staging))
                .try_collect()
                .await
                .map_err(|e| Error::DataFusion(e.into()))?;
            // Which folders the new rows fall in: all of them for a whole-table overwrite.
            let replaced: BTreeSet<Vec<String>> = staged
                .iter()
                .map(|f| {
                    let parts = crate::infer::relative_parts(&staging, &f.location);
                    parts[..parts.len().saturating_sub(1)].to_vec()
                })
                .collect();
            let existing: Vec<_> = store
                .list(Some(&root))
                .try_collect()
                .await
                .map_err(|e| Error::DataFusion(e.into()))?;
            for f in existing {
                let parts = crate::infer::relative_parts(&root, &f.location);
                if parts
                    .first()
                    .is_some_and(|p| p.starts_with('_') || p.starts_with('.'))
                {
                    continue;
                }
                let folder = parts[..parts.len().saturating_sub(1)].to_vec();
                if !by_partition || replaced.contains(&folder) {
                    store
                        .delete(&f.location)
                        .await
                        .map_err(|e| Error::DataFusion(e.into()))?;
                }
            }
            for f in staged {
                let parts = crate::infer::relative_parts(&staging, &f.location);
                let target =
                    Path::from_iter(root.parts().chain(parts.iter().map(|p| p.as_str().into())));
                store
                    .rename(&f.location, &target)
                    .await
                    .map_err(|e| Error::DataFusion(e.into()))?;
            }
            remove_all(&store, &staging).await;
            if let Ok(dir) = Url::parse(&staging_url)
                .and_then(|u| u.to_file_path().map_err(|_| url::ParseError::EmptyHost))
            {
                let _ = std::fs::remove_dir_all(dir);
            }
            written
                .first()
                .and_then(|b| {
                    b.column(0)
                        .as_primitive_opt::<arrow::datatypes::UInt64Type>()
                })
                .map_or(0, |c| c.value(0))
        }
        other => {
            return Err(Error::Unsupported(format!(
                "INSERT OVERWRITE needs a Delta or strata-written Parquet table, and {} is {other}",
                entry.qualified_name()
            )));
        }
    };
    Ok(Some(count_output(rows_written)))
}

async fn remove_all(store: &Arc<dyn ObjectStore>, prefix: &Path) {
    let files: Vec<_> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .unwrap_or_default();
    for f in files {
        let _ = store.delete(&f.location).await;
    }
}

/// The distinct partition value tuples of the new rows, as text.
fn partition_values(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>> {
    let options = FormatOptions::default();
    let mut out = vec![];
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| c.is_valid(row).then(|| f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(out)
}
