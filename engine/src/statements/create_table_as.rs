//! `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] zone.name [(col type, …)] [STORED AS DELTA|PARQUET]
//! [PARTITIONED BY (cols)] [AS query]`: runs the query into a new table under
//! `<zone root>/<name>/` and registers it with the SQL that made it (lineage).
//!
//! Curated tables default to Delta, processed ones to Parquet in hive folders. The data is
//! written first and the catalog commit comes last: a query that fails part-way leaves no
//! table behind (a Delta write commits no version; a Parquet write removes what it wrote).

use std::sync::Arc;

use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use strata_catalog::{Action, RAW_ZONE, TableEntry, TableFormat, validate_name};
use url::Url;

use crate::error::{Error, Result};
use crate::session::{Output, Session};
use crate::sql::{CreateTableAs, name_parts};
use crate::statements::SQL_METADATA_KEY;

/// Runs a `CREATE TABLE … AS query`.
pub(crate) async fn create_table_as(
    session: &Session,
    ctas: CreateTableAs,
    sql: &str,
) -> Result<Output> {
    let parts = name_parts(&ctas.name);
    let (zone, name) = match parts.as_slice() {
        [name] => (session.current_zone(), name.clone()),
        [zone, name] => (zone.clone(), name.clone()),
        [catalog, zone, name] if catalog == crate::session::CATALOG_NAME => {
            (zone.clone(), name.clone())
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "CREATE TABLE {}: name a table as zone.table",
                parts.join(".")
            )));
        }
    };
    let qualified = format!("{zone}.{name}");
    if zone == RAW_ZONE {
        return Err(Error::ReadOnlyZone {
            table: qualified,
            statement: "CREATE TABLE".into(),
        });
    }
    validate_name(&name)?;
    let snapshot = session.catalog().snapshot();
    let zone_entry = snapshot.zone(&zone)?.clone();
    let existing = snapshot.table(&zone, &name).ok().cloned();
    let existing_entry = existing.clone();
    if existing.is_some() {
        if ctas.if_not_exists {
            return Ok(Output::Done(format!(
                "{qualified} already exists; left as it is"
            )));
        }
        if !ctas.or_replace {
            return Err(strata_catalog::Error::TableExists { zone, name }.into());
        }
    }
    let format = match ctas.format.as_deref() {
        _ if ctas.materialized => match ctas.format.as_deref().map(str::parse::<TableFormat>) {
            None | Some(Ok(TableFormat::Delta)) => TableFormat::Delta,
            Some(_) => {
                return Err(Error::Unsupported(format!(
                    "materialized view {qualified} is stored as a Delta table; leave out STORED AS"
                )));
            }
        },
        None if zone == "processed" => TableFormat::Parquet,
        None => TableFormat::Delta,
        Some(f) => match f.parse::<TableFormat>() {
            Ok(f @ (TableFormat::Delta | TableFormat::Parquet)) => f,
            _ => {
                return Err(Error::Unsupported(format!(
                    "CREATE TABLE {qualified} STORED AS {f}: strata writes DELTA and PARQUET tables"
                )));
            }
        },
    };
    let query = datafusion::sql::parser::Statement::Statement(Box::new(
        datafusion::sql::sqlparser::ast::Statement::Query(ctas.query.clone()),
    ));
    let df = session.plan_statement(query.clone()).await?;
    let columns: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for p in &ctas.partition_by {
        if !columns.contains(p) {
            return Err(Error::Unsupported(format!(
                "{qualified} is PARTITIONED BY {p}, but the query has no column {p}; its columns are {}",
                columns.join(", ")
            )));
        }
    }
    let location = format!("{}{name}/", zone_entry.root);
    let url = Url::parse(&location)
        .map_err(|e| Error::Unsupported(format!("bad location {location}: {e}")))?;
    let mut entry = TableEntry::new(&zone, &name, format, &location);
    entry.lineage = Some(sql.trim().to_string());
    entry.sources = crate::statements::lineage::sources(session, &query).await?;
    if ctas.materialized {
        entry.materialized = Some(strata_catalog::Materialized {
            refreshed_at: chrono::Utc::now(),
        });
    }
    // Replacing keeps the table's birth date, and an audit hold in progress; a new table
    // written under audit stays hidden until its checks pass.
    match &existing {
        Some(old) => {
            entry.created_at = old.created_at;
            entry.held_version = old.held_version;
        }
        None if session.is_auditing(&zone, &name) => entry.held_version = Some(-1),
        None => {}
    }
    let rows: Option<u64>;
    match format {
        TableFormat::Delta => {
            if let Ok(dir) = url.to_file_path() {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::Unsupported(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut table = crate::providers::delta::unloaded(session.stores(), &url)?;
            // A folder that already holds a table must not be written over by accident.
            if table.verify_deltatable_existence().await.unwrap_or(false) {
                table
                    .load()
                    .await
                    .map_err(crate::providers::delta::delta_error)?;
            }
            if table.version().is_some() && !ctas.or_replace {
                return Err(Error::Unsupported(format!(
                    "'{location}' already holds a Delta table that is not registered as {qualified}; register it with REFRESH ZONE {zone}, or drop the folder"
                )));
            }
            let mode = if ctas.or_replace {
                SaveMode::Overwrite
            } else {
                SaveMode::ErrorIfExists
            };
            let props = CommitProperties::default().with_metadata([(
                SQL_METADATA_KEY.to_string(),
                serde_json::Value::String(sql.trim().to_string()),
            )]);
            let mut builder = table
                .write(vec![])
                .with_input_plan(df.logical_plan().clone())
                .with_session_state(Arc::new(session.context().state()))
                .with_save_mode(mode)
                .with_table_name(name.clone())
                .with_commit_properties(props);
            if !ctas.partition_by.is_empty() || ctas.or_replace {
                builder = builder.with_partition_columns(ctas.partition_by.clone());
            }
            if ctas.or_replace {
                builder =
                    builder.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
            }
            let written = builder
                .await
                .map_err(crate::providers::delta::delta_error)?;
            rows = written.snapshot().ok().map(|s| {
                s.log_data()
                    .iter()
                    .filter_map(|f| f.num_records())
                    .sum::<usize>() as u64
            });
        }
        _ => {
            let store = session.store_for(&url)?;
            let prefix = crate::providers::stores::url_path(&url)?;
            let existing: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|e| Error::DataFusion(e.into()))?;
            let replaces_parquet = existing_entry
                .as_ref()
                .is_some_and(|e| e.format == TableFormat::Parquet && e.location == location);
            if !existing.is_empty() && ctas.or_replace && replaces_parquet {
                // The old files stay until the new ones are all written (and, under audit,
                // checked); then they are swapped.
                let mut staged = crate::providers::staging::stage(
                    Arc::clone(&store),
                    &entry,
                    ctas.partition_by.clone(),
                    df,
                    crate::providers::staging::Replace::All,
                )
                .await?;
                let mut inspected_entry = entry.clone();
                inspected_entry.location = staged.url().to_string();
                let inspected =
                    match crate::statements::register::inspect_table(session, &mut inspected_entry)
                        .await
                    {
                        Ok(i) => i,
                        Err(e) => {
                            staged.discard().await;
                            return Err(e);
                        }
                    };
                inspected_entry.location = entry.location.clone();
                staged.entry = inspected_entry;
                staged.replaces_entry = true;
                let rows = staged.rows;
                let message = format!(
                    "created {qualified}: {inspected}, {rows} row{} written",
                    if rows == 1 { "" } else { "s" }
                );
                if session.is_auditing(&zone, &name) {
                    session.park_staged(staged);
                } else {
                    staged.publish(session.catalog()).await?;
                }
                return Ok(Output::Done(message));
            }
            if !existing.is_empty() {
                if !ctas.or_replace {
                    return Err(Error::Unsupported(format!(
                        "'{location}' already holds files that are not registered as {qualified}; register them with REFRESH ZONE {zone}, or remove them"
                    )));
                }
                for f in &existing {
                    store
                        .delete(&f.location)
                        .await
                        .map_err(|e| Error::DataFusion(e.into()))?;
                }
            }
            let written = crate::formats::parquet_sink::write_parquet(
                df,
                &location,
                ctas.partition_by.clone(),
                vec![],
            )
            .await;
            match written {
                Ok(n) => rows = Some(n),
                Err(e) => {
                    // Everything under the folder is ours: it was empty before.
                    let written: Vec<_> = store
                        .list(Some(&prefix))
                        .try_collect()
                        .await
                        .unwrap_or_default();
                    for f in written {
                        let _ = store.delete(&f.location).await;
                    }
                    return Err(e.into());
                }
            }
        }
    }
    let inspected = crate::statements::register::inspect_table(session, &mut entry).await?;
    let entry_for_commit = entry.clone();
    let or_replace = ctas.or_replace;
    session
        .catalog()
        .commit(&format!("CREATE TABLE {qualified} AS"), |state| {
            if state
                .table(&entry_for_commit.zone, &entry_for_commit.name)
                .is_ok()
                && !or_replace
            {
                return Err(strata_catalog::Error::TableExists {
                    zone: entry_for_commit.zone.clone(),
                    name: entry_for_commit.name.clone(),
                });
            }
            Ok(vec![Action::PutTable(Box::new(entry_for_commit.clone()))])
        })
        .await?;
    let what = if ctas.materialized {
        "materialized view "
    } else {
        ""
    };
    let rows = rows
        .map(|n| format!(", {n} row{} written", if n == 1 { "" } else { "s" }))
        .unwrap_or_default();
    Ok(Output::Done(format!(
        "created {what}{qualified}: {inspected}{rows}"
    )))
}

#[cfg(test)]
mod tests {
    use crate::formats::parquet_sink::footers::{counts, footers};
    use crate::session::Output;
    use crate::test_support::{pretty, scratch_session};

    #[tokio::test]
    async fn create_or_replace_of_a_parquet_table_writes_distinct_counts() {
        let (dir, session) = scratch_session().await;
        let folder = dir.path().join("wh/processed/r");
        session
            .sql("CREATE TABLE processed.r AS SELECT value AS id, 'x' AS tag FROM generate_series(1, 10)")
            .await
            .expect("create");
        let rows = "SELECT value AS id, 'tag_' || CAST(value % 6 AS VARCHAR) AS tag, \
                    value % 2 AS g FROM generate_series(1, 3000)";
        let out = session
            .execute(&format!(
                "CREATE OR REPLACE TABLE processed.r PARTITIONED BY (g) AS {rows}"
            ))
            .await
            .expect("replace");
        let Output::Done(message) = out else {
            panic!("no message");
        };
        assert!(message.ends_with(", 3000 rows written"), "{message}");
        let files = footers(&folder);
        // The old file is gone, the staging folder too; each half holds three tags.
        let folders: Vec<&str> = files.iter().map(|f| f.folder.as_str()).collect();
        assert!(
            folders.iter().all(|f| *f == "g=0" || *f == "g=1"),
            "{folders:?}"
        );
        assert_eq!(files.iter().map(|f| f.rows).sum::<i64>(), 3_000);
        assert!(
            counts(&files, "tag").iter().all(|c| *c == Some(3)),
            "{files:?}"
        );
        let read = session
            .sql("SELECT id, tag, g FROM processed.r ORDER BY id")
            .await
            .expect("read");
        let source = session
            .sql(&format!("{rows} ORDER BY id"))
            .await
            .expect("source");
        assert_eq!(pretty(&read), pretty(&source));
    }

    /// A query that fails part-way leaves neither files nor a table.
    #[tokio::test]
    async fn a_failed_parquet_create_table_as_leaves_nothing() {
        let (dir, session) = scratch_session().await;
        let err = session
            .sql(
                "CREATE TABLE processed.bad AS SELECT value AS id, \
                 CAST(CASE WHEN value = 15000 THEN 'x' ELSE CAST(value AS VARCHAR) END AS BIGINT) AS n \
                 FROM generate_series(1, 20000)",
            )
            .await
            .expect_err("a bad cast");
        assert!(err.to_string().contains("Cannot cast"), "{err}");
        let folder = dir.path().join("wh/processed/bad");
        if folder.exists() {
            assert!(footers(&folder).is_empty());
        }
        assert!(
            session
                .catalog()
                .snapshot()
                .table("processed", "bad")
                .is_err()
        );
    }
}
