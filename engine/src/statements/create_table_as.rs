//! `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] zone.name [(col type, …)] [STORED AS DELTA|PARQUET]
//! [PARTITIONED BY (cols)] [AS query]`: runs the query into a new table under
//! `<zone root>/<name>/` and registers it with the SQL that made it (lineage).
//!
//! Curated tables default to Delta, processed ones to Parquet in hive folders. The data is
//! written first and the catalog commit comes last: a query that fails part-way leaves no
//! table behind (a Delta write commits no version; a Parquet write removes what it wrote).

use std::sync::Arc;

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
            let started = chrono::Utc::now() - chrono::Duration::seconds(1);
            let mut table = crate::providers::delta::unloaded(session.stores(), &url)?;
            // A folder that already holds a table must not be written over by accident.
            if table.verify_deltatable_existence().await.unwrap_or(false) {
                table
                    .load()
                    .await
                    .map_err(crate::providers::delta::delta_error)?;
            }
            // A table this very statement made, in a run that died before registering it, is
            // registered as it is: its one commit is the whole result of this statement.
            let maker = if table.version().is_some() && !ctas.or_replace {
                made_by(&table, &qualified, sql, url.scheme() == "file").await
            } else {
                Maker::Other
            };
            let adopt = maker == Maker::Orphan;
            if maker == Maker::Running {
                // Another writer is creating this table right now and will register it.
                return Err(strata_catalog::Error::TableExists { zone, name }.into());
            }
            if table.version().is_some() && !ctas.or_replace && !adopt {
                return Err(Error::Unsupported(format!(
                    "'{location}' already holds a Delta table that is not registered as {qualified}; register it with REFRESH ZONE {zone}, or drop the folder"
                )));
            }
            let mode = if ctas.or_replace {
                SaveMode::Overwrite
            } else {
                SaveMode::ErrorIfExists
            };
            let id = crate::providers::delta::WriteId::new();
            let mut props = id.properties([
                (
                    SQL_METADATA_KEY.to_string(),
                    serde_json::Value::String(sql.trim().to_string()),
                ),
                (
                    CTAS_METADATA_KEY.to_string(),
                    serde_json::Value::String(qualified.clone()),
                ),
                (
                    PID_METADATA_KEY.to_string(),
                    serde_json::Value::from(std::process::id()),
                ),
            ]);
            if !ctas.or_replace {
                // Version 0 is written create-if-absent: of writers racing to create the
                // table exactly one commits it; the others must fail, not append to it.
                props = props.with_max_retries(0);
            }
            let written = if adopt {
                table
            } else {
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
                    builder = builder
                        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
                }
                match builder.await {
                    Ok(written) => written,
                    // The commit's response was lost, but the commit is this write's.
                    Err(e)
                        if crate::statements::dml::may_have_landed(&e)
                            && id
                                .landed(session.stores(), &location, &qualified)
                                .await
                                .is_ok_and(|c| c.is_some()) =>
                    {
                        crate::providers::delta::load(
                            session.stores(),
                            &location,
                            &crate::providers::delta::AsOf::Latest,
                            &qualified,
                        )
                        .await?
                    }
                    Err(e) if !ctas.or_replace => {
                        // Another writer created the table first: this write's data files go,
                        // so the winner's folder holds the winner's files only.
                        let winner = remove_unlisted_files(session, &url, started).await;
                        if winner {
                            return Err(strata_catalog::Error::TableExists { zone, name }.into());
                        }
                        return Err(crate::providers::delta::delta_error(e));
                    }
                    Err(e) => return Err(crate::providers::delta::delta_error(e)),
                }
            };
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
            // Files in the folder that no table lists and strata did not leave there.
            let foreign = crate::providers::staging::listed_files(&store, &prefix, false).await?;
            let replaces_parquet = existing_entry
                .as_ref()
                .is_some_and(|e| e.format == TableFormat::Parquet && e.location == location);
            if !foreign.is_empty() && !ctas.or_replace && !replaces_parquet {
                return Err(Error::Unsupported(format!(
                    "'{location}' already holds files that are not registered as {qualified}; register them with REFRESH ZONE {zone}, or remove them"
                )));
            }
            // The rows go to a staging folder first; publishing moves them in and commits
            // the table with its files in one catalog commit, which also decides a race
            // between writers creating the same table: the losers remove their files.
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
            staged.replaces_entry = ctas.or_replace;
            staged.creates_entry = !ctas.or_replace;
            let rows = staged.rows;
            let what = if ctas.materialized {
                "materialized view "
            } else {
                ""
            };
            let message = format!(
                "created {what}{qualified}: {inspected}, {rows} row{} written",
                if rows == 1 { "" } else { "s" }
            );
            if ctas.or_replace && replaces_parquet && session.is_auditing(&zone, &name) {
                session.park_staged(staged);
            } else {
                staged.publish(session.catalog()).await?;
            }
            session.stores().invalidate_listings();
            return Ok(Output::Done(message));
        }
    }
    let inspected = crate::statements::register::inspect_table(session, &mut entry).await?;
    let entry_for_commit = entry.clone();
    let or_replace = ctas.or_replace;
    crate::failpoint::hit("before_catalog_commit");
    session
        .catalog()
        .commit(&format!("CREATE TABLE {qualified} AS"), |state| {
            let registered = state.table(&entry_for_commit.zone, &entry_for_commit.name);
            // The Delta table this statement created at its location was registered by a
            // run of the same statement that found it first: it is this statement's table.
            if registered.as_ref().is_ok_and(|e| {
                e.format == TableFormat::Delta && e.location == entry_for_commit.location
            }) && !or_replace
            {
                return Ok(vec![]);
            }
            if registered.is_ok() && !or_replace {
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

/// The commit metadata key naming the table a `CREATE TABLE … AS` created.
pub const CTAS_METADATA_KEY: &str = "strata.create_table";

/// The commit metadata key with the process id of the writer that created a table.
pub const PID_METADATA_KEY: &str = "strata.pid";

/// Whether a Delta table's first commit is this statement's: strata's `CREATE TABLE … AS`
/// of the same table with the same SQL, by a process that is gone (on a local disk, where
/// that can be told; a writer still running registers the table itself).
async fn made_by(table: &deltalake::DeltaTable, qualified: &str, sql: &str, local: bool) -> Maker {
    let Ok(history) = table
        .history(None)
        .try_collect::<Vec<deltalake::kernel::CommitInfo>>()
        .await
    else {
        return Maker::Other;
    };
    let Some(first) = history.last() else {
        return Maker::Other;
    };
    let writer_alive = local
        && cfg!(target_os = "linux")
        && first
            .info
            .get(PID_METADATA_KEY)
            .and_then(|v| v.as_u64())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
    if first.info.get(CTAS_METADATA_KEY).and_then(|v| v.as_str()) != Some(qualified) {
        Maker::Other
    } else if writer_alive {
        Maker::Running
    } else if first.info.get(SQL_METADATA_KEY).and_then(|v| v.as_str()) == Some(sql.trim()) {
        Maker::Orphan
    } else {
        Maker::Other
    }
}

/// Who made a Delta table found where a `CREATE TABLE … AS` is to write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maker {
    /// This statement, in a run that died before registering the table.
    Orphan,
    /// A `CREATE TABLE … AS` of this table in a process still running.
    Running,
    /// Anything else.
    Other,
}

/// After a lost race to create a Delta table: removes the data files under its folder that
/// its log does not list and that were written since `since` (this write's), and tells
/// whether the table now exists (another writer made it).
async fn remove_unlisted_files(
    session: &Session,
    url: &Url,
    since: chrono::DateTime<chrono::Utc>,
) -> bool {
    let Ok(store) = session.store_for(url) else {
        return false;
    };
    let Ok(root) = crate::providers::stores::url_path(url) else {
        return false;
    };
    let mut table = match crate::providers::delta::unloaded(session.stores(), url) {
        Ok(t) => t,
        Err(_) => return false,
    };
    let exists = table.load().await.is_ok() && table.version().is_some();
    let listed: std::collections::HashSet<String> = match table.snapshot() {
        Ok(s) if exists => s
            .log_data()
            .iter()
            .filter_map(|f| f.path().rsplit('/').next().map(str::to_string))
            .collect(),
        _ => Default::default(),
    };
    let files: Vec<object_store::ObjectMeta> = store
        .list(Some(&root))
        .try_collect()
        .await
        .unwrap_or_default();
    for f in files {
        let relative = crate::providers::fileset::relative(&root, &f.location);
        if relative.starts_with("_delta_log") || f.last_modified < since {
            continue;
        }
        let name = f.location.filename().unwrap_or_default().to_string();
        if !listed.contains(&name) {
            let _ = store.delete(&f.location).await;
        }
    }
    exists
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
