//! `INSERT OVERWRITE t [PARTITION (cols)] query`: without PARTITION the query's rows replace
//! the whole table; with it, they replace only the partitions they fall in, and the other
//! partitions stay as they are. Delta tables do it in one version (a replace-where write);
//! strata-written Parquet tables write the rows to a staging folder first and commit the
//! table's new file set to the catalog only once every row is written.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::sql::sqlparser::ast::{Expr, Insert, TableObject};
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use strata_catalog::{RAW_ZONE, TableFormat};
use url::Url;

use crate::error::{Error, Result};
use crate::providers::delta::{self, delta_error};
use crate::providers::staging::{Replace, stage};
use crate::session::{Output, Session, count_output};

/// Runs `INSERT OVERWRITE` when strata must do it itself, and `INSERT INTO` a Parquet table
/// (staged, then committed to its catalog entry; under audit, staged until its checks pass);
/// `None` leaves the statement to DataFusion (other inserts).
pub(crate) async fn run(session: &Session, ins: &Insert, sql: &str) -> Result<Option<Output>> {
    let TableObject::TableName(name) = &ins.table else {
        return Ok(None);
    };
    let name = name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_string())
        .collect::<Vec<_>>()
        .join(".");
    let reference = datafusion::common::TableReference::from(name.as_str());
    let (zone, table) = if ins.overwrite {
        session.resolve(&reference)?
    } else {
        // A plain INSERT is DataFusion's, unless it writes a Parquet table under audit.
        match session.resolve(&reference) {
            Ok(resolved) => resolved,
            Err(_) => return Ok(None),
        }
    };
    let table = table.to_ascii_lowercase();
    let entry = match session.catalog().snapshot().table(&zone, &table) {
        Ok(entry) => entry.clone(),
        Err(_) if !ins.overwrite => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // Every insert into a Parquet table strata may write is staged and committed to the
    // catalog entry's file set, so that a kill mid-write leaves the table as it was.
    let staged_insert = zone != RAW_ZONE && entry.format == TableFormat::Parquet;
    // Inserts into Delta tables carry strata's write id, to tell a lost commit response
    // from a commit that did not land.
    let delta_insert = zone != RAW_ZONE && entry.format == TableFormat::Delta;
    if !ins.overwrite && !staged_insert && !delta_insert {
        return Ok(None);
    }
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
    if ins.overwrite && !ins.columns.is_empty() {
        return Err(Error::Unsupported(
            "INSERT OVERWRITE with a column list is not supported; select the table's columns in order".into(),
        ));
    }
    let Some(source) = &ins.source else {
        return Ok(None);
    };
    let df = session.plan_query(&source.to_string()).await?;
    let target_schema = session
        .plan_query(&format!("SELECT * FROM {} LIMIT 0", entry.qualified_name()))
        .await?
        .schema()
        .clone();
    // Parquet files take the table's types; a Delta write checks them itself.
    let columns: Vec<String> = ins
        .columns
        .iter()
        .map(|c| {
            c.0.last()
                .map(|p| p.to_string().trim_matches('"').to_string())
                .unwrap_or_default()
        })
        .collect();
    let df = conform(
        df,
        &target_schema,
        &columns,
        &entry.qualified_name(),
        entry.format == TableFormat::Parquet || !ins.overwrite,
    )?;
    let values = if by_partition && entry.format == TableFormat::Delta {
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
            let id = delta::WriteId::new();
            let mut builder = table
                .write(vec![])
                .with_input_plan(df.logical_plan().clone())
                .with_session_state(Arc::new(session.context().state()))
                .with_save_mode(if ins.overwrite {
                    SaveMode::Overwrite
                } else {
                    SaveMode::Append
                })
                .with_commit_properties(id.properties([(
                    crate::statements::SQL_METADATA_KEY.to_string(),
                    serde_json::Value::String(sql.trim().to_string()),
                )]));
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
            let statement = if ins.overwrite {
                "INSERT OVERWRITE"
            } else {
                "INSERT"
            };
            let info = match builder.await {
                Ok(table) => {
                    let last: Vec<_> = table
                        .history(Some(1))
                        .try_collect()
                        .await
                        .map_err(delta_error)?;
                    last.into_iter().next()
                }
                Err(e) if crate::statements::dml::may_have_landed(&e) => Some(
                    id.settle(
                        session.stores(),
                        &entry.location,
                        &entry.qualified_name(),
                        statement,
                        delta_error(e),
                    )
                    .await?,
                ),
                Err(e) => return Err(delta_error(e)),
            };
            info.map(|i| delta::commit_metric(&i, "num_added_rows"))
                .unwrap_or(0)
        }
        TableFormat::Parquet => {
            let replace = if !ins.overwrite {
                Replace::Nothing
            } else if by_partition {
                Replace::Partitions
            } else {
                Replace::All
            };
            return parquet_write(session, &entry, df, replace).await.map(Some);
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

/// The query's columns as the table's: by position (as INSERT does), or by the statement's
/// column list (the table's other columns NULL); cast to the table's types if asked.
fn conform(
    df: datafusion::dataframe::DataFrame,
    target: &datafusion::common::DFSchema,
    columns: &[String],
    table: &str,
    cast_types: bool,
) -> Result<datafusion::dataframe::DataFrame> {
    use datafusion::prelude::{cast, col, lit};
    let names = target
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(c) = columns.iter().find(|c| {
        !target
            .fields()
            .iter()
            .any(|f| f.name().eq_ignore_ascii_case(c))
    }) {
        return Err(Error::Unsupported(format!(
            "{table} has no column {c}; its columns are {names}"
        )));
    }
    let given = df.schema().columns();
    let wanted = if columns.is_empty() {
        target.fields().len()
    } else {
        columns.len()
    };
    if given.len() != wanted {
        let plural = |n: usize| if n == 1 { "column" } else { "columns" };
        let into = if columns.is_empty() {
            format!("{table} has {wanted} {} ({names})", plural(wanted))
        } else {
            format!("the column list names {wanted} {}", plural(wanted))
        };
        return Err(Error::Unsupported(format!(
            "{into} but the query gives {}",
            given.len()
        )));
    }
    let mut exprs = vec![];
    for (i, field) in target.fields().iter().enumerate() {
        let source = if columns.is_empty() {
            Some(&given[i])
        } else {
            columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(field.name()))
                .map(|k| &given[k])
        };
        let value = match source {
            Some(c) => col(c.clone()),
            None => lit(datafusion::common::ScalarValue::Null),
        };
        let value = if cast_types {
            cast(value, field.data_type().clone())
        } else {
            value
        };
        exprs.push(value.alias(field.name()));
    }
    Ok(df.select(exprs)?)
}

/// Writes a query's rows to a strata-written Parquet table through a staging folder. When
/// this session audits the table, the files stay staged (its checks read them, readers do
/// not) until the audit publishes or discards them; otherwise they are swapped in at once.
async fn parquet_write(
    session: &Session,
    entry: &strata_catalog::TableEntry,
    df: datafusion::dataframe::DataFrame,
    replace: Replace,
) -> Result<Output> {
    let url = Url::parse(&entry.location)
        .map_err(|e| Error::Unsupported(format!("bad location {}: {e}", entry.location)))?;
    let store = session.store_for(&url)?;
    let auditing = session.is_auditing(&entry.zone, &entry.name);
    if auditing && session.has_staged(&entry.zone, &entry.name) {
        return Err(Error::Unsupported(format!(
            "{} already has a write waiting for its checks; run the CHECKs first",
            entry.qualified_name()
        )));
    }
    let partition_cols = entry
        .partition_columns
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let staged = stage(store, entry, partition_cols, df, replace).await?;
    let rows = staged.rows;
    if auditing {
        session.park_staged(staged);
    } else {
        staged.publish(session.catalog()).await?;
    }
    session.stores().invalidate_listings();
    Ok(count_output(rows))
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

#[cfg(test)]
mod tests {
    use crate::formats::parquet_sink::footers::{counts, footers};
    use crate::test_support::{pretty, scratch_session};

    /// 6,000 rows: a key, a kind of five values, a half of two.
    const ROWS: &str = "SELECT value AS id, 'kind_' || CAST(value % 5 AS VARCHAR) AS kind, \
                        value % 2 AS half FROM generate_series(1, 6000)";

    async fn text(session: &crate::Session, sql: &str) -> String {
        pretty(&session.sql(sql).await.expect(sql))
    }

    #[tokio::test]
    async fn insert_overwrite_of_a_parquet_table_writes_distinct_counts() {
        let (dir, session) = scratch_session().await;
        let folder = dir.path().join("wh/processed/t");
        session
            .sql(&format!(
                "CREATE TABLE processed.t PARTITIONED BY (half) AS \
                 SELECT id, 'old' AS kind, half FROM ({ROWS}) WHERE id <= 100"
            ))
            .await
            .expect("create");
        // The whole table.
        let out = text(
            &session,
            &format!("INSERT OVERWRITE processed.t SELECT id, kind, half FROM ({ROWS})"),
        )
        .await;
        assert!(out.contains("| 6000  |"), "{out}");
        let files = footers(&folder);
        assert_eq!(files.iter().map(|f| f.rows).sum::<i64>(), 6_000);
        assert!(files.iter().all(|f| f.columns == ["id", "kind"]));
        assert!(
            counts(&files, "kind").iter().all(|c| *c == Some(5)),
            "{files:?}"
        );
        let all = format!("SELECT id, kind, half FROM ({ROWS}) ORDER BY id");
        assert_eq!(
            text(
                &session,
                "SELECT id, kind, half FROM processed.t ORDER BY id"
            )
            .await,
            text(&session, &all).await
        );
        // One partition: the odd half gets new rows with kinds of three values; the even
        // half keeps its files.
        let even: Vec<String> = footers(&folder.join("half=0"))
            .into_iter()
            .map(|f| f.name)
            .collect();
        let out = text(
            &session,
            &format!(
                "INSERT OVERWRITE processed.t PARTITION (half) \
                 SELECT id + 10000, 'new_' || CAST(id % 3 AS VARCHAR), half FROM ({ROWS}) WHERE half = 1"
            ),
        )
        .await;
        assert!(out.contains("| 3000  |"), "{out}");
        let odd = footers(&folder.join("half=1"));
        assert_eq!(odd.iter().map(|f| f.rows).sum::<i64>(), 3_000);
        assert!(
            counts(&odd, "kind").iter().all(|c| *c == Some(3)),
            "{odd:?}"
        );
        let kept: Vec<String> = footers(&folder.join("half=0"))
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(kept, even);
        let expected = format!(
            "SELECT id, kind, half FROM ({ROWS}) WHERE half = 0 UNION ALL \
             SELECT id + 10000, 'new_' || CAST(id % 3 AS VARCHAR), half FROM ({ROWS}) WHERE half = 1 \
             ORDER BY id"
        );
        assert_eq!(
            text(
                &session,
                "SELECT id, kind, half FROM processed.t ORDER BY id"
            )
            .await,
            text(&session, &expected).await
        );
    }

    #[tokio::test]
    async fn an_audited_insert_stages_files_with_distinct_counts() {
        let (dir, session) = scratch_session().await;
        session
            .sql(&format!(
                "CREATE TABLE processed.a AS SELECT id, kind, half FROM ({ROWS}) WHERE id <= 1000"
            ))
            .await
            .expect("create");
        session.set_auditing("processed", "a", true);
        let out = text(
            &session,
            &format!("INSERT INTO processed.a SELECT id, kind, half FROM ({ROWS}) WHERE id > 1000"),
        )
        .await;
        assert!(out.contains("| 5000  |"), "{out}");
        let staged = session
            .take_staged("processed", "a")
            .expect("a staged write");
        session.set_auditing("processed", "a", false);
        let staging = url::Url::parse(staged.url())
            .expect("url")
            .to_file_path()
            .expect("a folder");
        assert!(staging.starts_with(dir.path().join("wh/processed/a")));
        let files = footers(&staging);
        assert_eq!(files.iter().map(|f| f.rows).sum::<i64>(), 5_000);
        assert!(
            counts(&files, "kind").iter().all(|c| *c == Some(5)),
            "{files:?}"
        );
        // Readers do not see the staged rows until the swap.
        assert!(
            text(&session, "SELECT count(*) AS n FROM processed.a")
                .await
                .contains("| 1000 |")
        );
        staged.publish(session.catalog()).await.expect("publish");
        session.stores().invalidate_listings();
        assert!(!staging.exists());
        assert_eq!(
            text(
                &session,
                "SELECT id, kind, half FROM processed.a ORDER BY id"
            )
            .await,
            text(&session, &format!("{ROWS} ORDER BY id")).await
        );
    }
}
