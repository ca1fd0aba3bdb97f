//! `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] zone.name [(col type, …)] [STORED AS DELTA|PARQUET]
//! [PARTITIONED BY (cols)] [AS query]`: runs the query into a new table under
//! `<zone root>/<name>/` and registers it with the SQL that made it (lineage).
//!
//! Curated tables default to Delta, processed ones to Parquet in hive folders. The data is
//! written first and the catalog commit comes last: a query that fails part-way leaves no
//! table behind (a Delta write commits no version; a Parquet write removes what it wrote).

use std::sync::Arc;

use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use strata_catalog::{Action, RAW_ZONE, TableEntry, TableFormat, validate_name};
use url::Url;

use crate::error::{Error, Result};
use crate::session::{Output, Session};

/// Commit metadata key under which strata records the SQL that wrote a Delta version.
pub const SQL_METADATA_KEY: &str = "strata.sql";

/// A parsed `CREATE TABLE … AS` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateTableAs {
    pub or_replace: bool,
    pub if_not_exists: bool,
    /// Name parts as written (`zone.name` or `name`), normalized like SQL identifiers.
    pub name: Vec<String>,
    pub format: Option<String>,
    pub partition_by: Vec<String>,
    /// The query text after `AS`.
    pub query: String,
    /// `CREATE MATERIALIZED VIEW`: a Delta table that remembers its definition.
    pub materialized: bool,
}

/// Recognizes `CREATE TABLE … AS query`; anything else is left to DataFusion.
pub(crate) fn parse(sql: &str) -> Option<CreateTableAs> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while matches!(tokens.get(*i), Some(Token::Whitespace(_))) {
            *i += 1;
        }
    };
    let word = |i: &mut usize, w: &str| -> bool {
        skip_ws(i);
        match tokens.get(*i) {
            Some(Token::Word(x)) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w) => {
                *i += 1;
                true
            }
            _ => false,
        }
    };
    if !word(&mut i, "create") {
        return None;
    }
    let or_replace = word(&mut i, "or") && word(&mut i, "replace");
    let materialized = {
        let mut j = i;
        if word(&mut j, "materialized") && word(&mut j, "view") {
            i = j;
            true
        } else {
            false
        }
    };
    if !materialized && !word(&mut i, "table") {
        return None;
    }
    let if_not_exists = word(&mut i, "if") && word(&mut i, "not") && word(&mut i, "exists");
    let mut name = vec![];
    loop {
        skip_ws(&mut i);
        match tokens.get(i) {
            Some(Token::Word(w)) => {
                name.push(if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_ascii_lowercase()
                });
                i += 1;
            }
            _ => return None,
        }
        skip_ws(&mut i);
        if matches!(tokens.get(i), Some(Token::Period)) {
            i += 1;
        } else {
            break;
        }
    }
    // `(col type, …)`: an empty table, written as the empty result of casts.
    let mut columns: Option<Vec<(String, String)>> = None;
    skip_ws(&mut i);
    if matches!(tokens.get(i), Some(Token::LParen)) {
        let mut defs = vec![];
        let mut current: Vec<&Token> = vec![];
        let mut depth = 0;
        i += 1;
        loop {
            match tokens.get(i)? {
                Token::LParen => {
                    depth += 1;
                    current.push(&tokens[i]);
                }
                Token::RParen if depth == 0 => {
                    defs.push(std::mem::take(&mut current));
                    i += 1;
                    break;
                }
                Token::RParen => {
                    depth -= 1;
                    current.push(&tokens[i]);
                }
                Token::Comma if depth == 0 => defs.push(std::mem::take(&mut current)),
                t => current.push(t),
            }
            i += 1;
        }
        let mut parsed = vec![];
        for def in defs {
            let mut def = def
                .into_iter()
                .skip_while(|t| matches!(t, Token::Whitespace(_)));
            let name = match def.next()? {
                Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
                Token::Word(w) => w.value.to_ascii_lowercase(),
                _ => return None,
            };
            let data_type: String = def
                .map(ToString::to_string)
                .collect::<String>()
                .trim()
                .to_string();
            if data_type.is_empty() {
                return None;
            }
            parsed.push((name, data_type));
        }
        columns = Some(parsed);
    }
    let mut format = None;
    let mut partition_by = vec![];
    loop {
        let mut j = i;
        if word(&mut j, "stored") && word(&mut j, "as") {
            skip_ws(&mut j);
            if let Some(Token::Word(w)) = tokens.get(j) {
                format = Some(w.value.to_ascii_uppercase());
                i = j + 1;
                continue;
            }
            return None;
        }
        let mut j = i;
        if word(&mut j, "partitioned") && word(&mut j, "by") {
            skip_ws(&mut j);
            if !matches!(tokens.get(j), Some(Token::LParen)) {
                return None;
            }
            j += 1;
            loop {
                skip_ws(&mut j);
                match tokens.get(j) {
                    Some(Token::Word(w)) => {
                        partition_by.push(if w.quote_style.is_some() {
                            w.value.clone()
                        } else {
                            w.value.to_ascii_lowercase()
                        });
                        j += 1;
                    }
                    _ => return None,
                }
                skip_ws(&mut j);
                match tokens.get(j) {
                    Some(Token::Comma) => j += 1,
                    Some(Token::RParen) => {
                        j += 1;
                        break;
                    }
                    _ => return None,
                }
            }
            i = j;
            continue;
        }
        break;
    }
    let query: String = match columns {
        Some(columns) => {
            skip_ws(&mut i);
            if !matches!(tokens.get(i), None | Some(Token::SemiColon)) {
                return None;
            }
            let casts: Vec<String> = columns
                .iter()
                .map(|(name, t)| format!("CAST(NULL AS {t}) AS \"{}\"", name.replace('"', "\"\"")))
                .collect();
            format!("SELECT {} WHERE false", casts.join(", "))
        }
        None => {
            if !word(&mut i, "as") {
                return None;
            }
            tokens[i..].iter().map(ToString::to_string).collect()
        }
    };
    Some(CreateTableAs {
        or_replace,
        if_not_exists,
        name,
        format,
        partition_by,
        query: query.trim().to_string(),
        materialized,
    })
}

/// Runs a `CREATE TABLE … AS query`.
pub(crate) async fn create_table_as(
    session: &Session,
    ctas: CreateTableAs,
    sql: &str,
) -> Result<Output> {
    let (zone, name) = match ctas.name.as_slice() {
        [name] => (session.current_zone(), name.clone()),
        [zone, name] => (zone.clone(), name.clone()),
        [catalog, zone, name] if catalog == crate::session::CATALOG_NAME => {
            (zone.clone(), name.clone())
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "CREATE TABLE {}: name a table as zone.table",
                ctas.name.join(".")
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
    let df = session.plan_query(&ctas.query).await?;
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
    entry.sources = crate::lineage::sources(session, &ctas.query).await?;
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
            let mut table = crate::delta::unloaded(session.stores(), &url)?;
            // A folder that already holds a table must not be written over by accident.
            if table.verify_deltatable_existence().await.unwrap_or(false) {
                table.load().await.map_err(crate::delta::delta_error)?;
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
            let written = builder.await.map_err(crate::delta::delta_error)?;
            rows = written.snapshot().ok().map(|s| {
                s.log_data()
                    .iter()
                    .filter_map(|f| f.num_records())
                    .sum::<usize>() as u64
            });
        }
        _ => {
            let store = session.store_for(&url)?;
            let prefix = crate::register::url_path(&url)?;
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
                let mut staged = crate::staging::stage(
                    Arc::clone(&store),
                    &entry,
                    ctas.partition_by.clone(),
                    df,
                    crate::staging::Replace::All,
                )
                .await?;
                let mut inspected_entry = entry.clone();
                inspected_entry.location = staged.url().to_string();
                let inspected =
                    match crate::register::inspect_table(session, &mut inspected_entry).await {
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
            let options = DataFrameWriteOptions::new().with_partition_by(ctas.partition_by.clone());
            match df.write_parquet(&location, options, None).await {
                Ok(batches) => rows = Some(written_count(&batches)),
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
    let inspected = crate::register::inspect_table(session, &mut entry).await?;
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

/// The `count` a DataFusion write reports.
fn written_count(batches: &[arrow::array::RecordBatch]) -> u64 {
    use arrow::array::AsArray;
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<arrow::datatypes::UInt64Type>())
        .map(|a| a.iter().flatten().sum::<u64>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_create_table_as() {
        let c = parse("CREATE TABLE curated.Fact STORED AS delta PARTITIONED BY (year, \"Month\") AS SELECT * FROM raw.sales")
            .expect("ctas");
        assert_eq!(c.name, vec!["curated", "fact"]);
        assert_eq!(c.format.as_deref(), Some("DELTA"));
        assert_eq!(c.partition_by, vec!["year", "Month"]);
        assert_eq!(c.query, "SELECT * FROM raw.sales");
        let c = parse("CREATE TABLE curated.t (a INT, \"B\" DECIMAL(10, 2)) STORED AS DELTA PARTITIONED BY (a)").expect("empty");
        assert_eq!(
            c.query,
            "SELECT CAST(NULL AS INT) AS \"a\", CAST(NULL AS DECIMAL(10, 2)) AS \"B\" WHERE false"
        );
        assert_eq!(c.partition_by, vec!["a"]);
        assert!(parse("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 'x'").is_none());
        let c = parse("create or replace table p as with x as (select 1) select * from x")
            .expect("ctas");
        assert!(c.or_replace);
        assert_eq!(c.query, "with x as (select 1) select * from x");
        let c =
            parse("CREATE MATERIALIZED VIEW curated.daily PARTITIONED BY (day) AS SELECT 1 AS day")
                .expect("materialized view");
        assert!(c.materialized);
        assert_eq!(c.name, vec!["curated", "daily"]);
        assert_eq!(c.partition_by, vec!["day"]);
    }
}
