//! UPDATE, DELETE and MERGE on Delta tables, run by deltalake's operations. Each
//! change is one new table version whose commit records the SQL that made it.

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt64Array};
use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, FromTable, Merge, MergeAction, MergeClauseKind,
    MergeInsertKind, ObjectName, TableFactor, TableWithJoins, Update,
};
use deltalake::kernel::transaction::CommitProperties;
use strata_catalog::{RAW_ZONE, TableEntry, TableFormat};

use crate::error::{Error, Result};
use crate::providers::delta;
use crate::session::{Output, Session, count_output, table_output};
use crate::statements::SQL_METADATA_KEY;

fn commit_properties(sql: &str, id: &delta::WriteId) -> CommitProperties {
    id.properties([(
        SQL_METADATA_KEY.to_string(),
        serde_json::Value::String(sql.trim().to_string()),
    )])
}

/// The Delta entry a statement changes, or an error saying which tables can be changed.
fn delta_target(session: &Session, name: &ObjectName, statement: &str) -> Result<TableEntry> {
    let name = name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_string())
        .collect::<Vec<_>>()
        .join(".");
    delta_entry(session, &name, statement)
}

/// The Delta entry of a (possibly zone-qualified) table name; raw tables and other formats
/// are refused with an error saying which tables `statement` takes.
pub(crate) fn delta_entry(session: &Session, name: &str, statement: &str) -> Result<TableEntry> {
    let reference = datafusion::common::TableReference::from(name);
    let (zone, table) = session.resolve(&reference)?;
    let table = table.to_ascii_lowercase();
    let snapshot = session.catalog().snapshot();
    let entry = snapshot.table(&zone, &table)?.clone();
    if zone == RAW_ZONE {
        return Err(Error::ReadOnlyZone {
            table: entry.qualified_name(),
            statement: statement.into(),
        });
    }
    if entry.format != TableFormat::Delta {
        return Err(Error::Unsupported(format!(
            "{statement} needs a Delta table, and {} is {}; Delta is the default in curated, or CREATE TABLE … STORED AS DELTA",
            entry.qualified_name(),
            entry.format
        )));
    }
    Ok(entry)
}

/// The last part of a column name, unquoted: `t.col` and `col` both assign `col`.
fn column_name(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|p| p.to_string().trim_matches('"').to_string())
        .unwrap_or_default()
}

/// `SET a = e, …` as (column, SQL expression) pairs.
fn assignments(list: &[Assignment]) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|a| match &a.target {
            AssignmentTarget::ColumnName(n) => Ok((column_name(n), a.value.to_string())),
            AssignmentTarget::Tuple(_) => Err(Error::Unsupported(
                "SET (a, b) = … is not supported; assign columns one by one".into(),
            )),
        })
        .collect()
}

fn table_name(t: &TableWithJoins) -> Result<&ObjectName> {
    match &t.relation {
        TableFactor::Table { name, .. } if t.joins.is_empty() => Ok(name),
        _ => Err(Error::Unsupported(
            "UPDATE and DELETE take one table (no joins); use MERGE INTO to change rows from another table".into(),
        )),
    }
}

/// `UPDATE t SET c = e, … [WHERE p]`.
pub(crate) async fn update(session: &Session, u: &Update, sql: &str) -> Result<Output> {
    if u.from.is_some() {
        return Err(Error::Unsupported(
            "UPDATE … FROM is not supported; use MERGE INTO".into(),
        ));
    }
    let entry = delta_target(session, table_name(&u.table)?, "UPDATE")?;
    let table = delta::load_latest(session.stores(), &entry).await?;
    let id = delta::WriteId::new();
    let mut builder = table
        .update()
        .with_session_state(Arc::new(session.context().state()))
        .with_commit_properties(commit_properties(sql, &id));
    if let Some(predicate) = &u.selection {
        builder = builder.with_predicate(predicate.to_string());
    }
    for (column, value) in assignments(&u.assignments)? {
        builder = builder.with_update(column, value);
    }
    let (_, metrics) = match builder.await {
        Ok(done) => done,
        Err(e) => {
            let error = (may_have_landed(&e), dml_error(&entry, "UPDATE", e));
            let error = (error.1, error.0);
            let info = settle(session, &entry, &id, "UPDATE", error).await?;
            return Ok(count_output(delta::commit_metric(
                &info,
                "num_updated_rows",
            )));
        }
    };
    Ok(count_output(metrics.num_updated_rows as u64))
}

/// `DELETE FROM t [WHERE p]`.
pub(crate) async fn delete(session: &Session, d: &Delete, sql: &str) -> Result<Output> {
    let tables = match &d.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [target] = tables.as_slice() else {
        return Err(Error::Unsupported("DELETE takes one table".into()));
    };
    if d.using.is_some() {
        return Err(Error::Unsupported(
            "DELETE … USING is not supported; use MERGE INTO … WHEN MATCHED THEN DELETE".into(),
        ));
    }
    let entry = delta_target(session, table_name(target)?, "DELETE")?;
    let table = delta::load_latest(session.stores(), &entry).await?;
    let id = delta::WriteId::new();
    let mut builder = table
        .delete()
        .with_session_state(Arc::new(session.context().state()))
        .with_commit_properties(commit_properties(sql, &id));
    if let Some(predicate) = &d.selection {
        builder = builder.with_predicate(predicate.to_string());
    }
    let (_, metrics) = match builder.await {
        Ok(done) => done,
        Err(e) => {
            let error = (may_have_landed(&e), dml_error(&entry, "DELETE", e));
            let error = (error.1, error.0);
            let info = settle(session, &entry, &id, "DELETE", error).await?;
            return Ok(count_output(delta::commit_metric(
                &info,
                "num_deleted_rows",
            )));
        }
    };
    Ok(count_output(metrics.num_deleted_rows.unwrap_or(0) as u64))
}

/// A failed write's outcome: its commit info if it landed after all, else the error.
async fn settle(
    session: &Session,
    entry: &TableEntry,
    id: &delta::WriteId,
    statement: &str,
    (error, may_have_landed): (Error, bool),
) -> Result<deltalake::kernel::CommitInfo> {
    if !may_have_landed {
        return Err(error);
    }
    id.settle(
        session.stores(),
        &entry.location,
        &entry.qualified_name(),
        statement,
        error,
    )
    .await
}

/// Whether a failed write may have committed all the same: its commit request failed in a
/// way that hides the outcome (storage errors, a commit that found its version taken).
pub(crate) fn may_have_landed(e: &deltalake::DeltaTableError) -> bool {
    use deltalake::DeltaTableError as D;
    matches!(
        e,
        D::Transaction { .. }
            | D::ObjectStore { .. }
            | D::VersionAlreadyExists(_)
            | D::Io { .. }
            | D::Generic(_)
            | D::GenericError { .. }
    )
}

fn dml_error(entry: &TableEntry, statement: &str, e: deltalake::DeltaTableError) -> Error {
    use deltalake::DeltaTableError as D;
    match e {
        D::Transaction { source } => Error::Unsupported(format!(
            "{statement} on {} conflicts with a change another writer committed meanwhile ({source}); nothing was changed, run it again",
            entry.qualified_name()
        )),
        other => Error::Unsupported(format!(
            "{statement} on {}: {other}",
            entry.qualified_name()
        )),
    }
}

/// `MERGE INTO t [AS a] USING src [AS s] ON … WHEN MATCHED [AND …] THEN UPDATE SET …|DELETE
/// WHEN NOT MATCHED [AND …] THEN INSERT (…) VALUES (…) WHEN NOT MATCHED BY SOURCE …`.
pub(crate) async fn merge(session: &Session, m: &Merge, sql: &str) -> Result<Output> {
    let (target_name, target_alias) = match &m.table {
        TableFactor::Table { name, alias, .. } => {
            (name, alias.as_ref().map(|a| a.name.value.clone()))
        }
        _ => {
            return Err(Error::Unsupported(
                "MERGE INTO takes a table as its target".into(),
            ));
        }
    };
    let entry = delta_target(session, target_name, "MERGE")?;
    // Unaliased, a table is referred to by its own name, as in SQL.
    let target_alias = target_alias.unwrap_or_else(|| entry.name.clone());
    let (source_sql, source_alias) = match &m.source {
        TableFactor::Table { name, alias, .. } => (
            format!("SELECT * FROM {name}"),
            alias.as_ref().map_or_else(
                || {
                    name.0
                        .last()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "source".into())
                },
                |a| a.name.value.clone(),
            ),
        ),
        TableFactor::Derived {
            subquery, alias, ..
        } => (
            subquery.to_string(),
            alias
                .as_ref()
                .map_or_else(|| "source".into(), |a| a.name.value.clone()),
        ),
        _ => {
            return Err(Error::Unsupported(
                "MERGE … USING takes a table or a (subquery) AS alias".into(),
            ));
        }
    };
    let source = session.plan_query(&source_sql).await?;
    let table = delta::load_latest(session.stores(), &entry).await?;
    let id = delta::WriteId::new();
    let mut builder = table
        .merge(source, m.on.to_string())
        .with_source_alias(source_alias)
        .with_target_alias(target_alias)
        .with_session_state(Arc::new(session.context().state()))
        .with_commit_properties(commit_properties(sql, &id));
    for clause in &m.clauses {
        let predicate = clause.predicate.as_ref().map(ToString::to_string);
        let unsupported =
            |what: &str| Error::Unsupported(format!("MERGE: {what} is not supported"));
        builder = match (&clause.clause_kind, &clause.action) {
            (MergeClauseKind::Matched, MergeAction::Update(u)) => {
                let sets = assignments(&u.assignments)?;
                builder.when_matched_update(|mut b| {
                    if let Some(p) = predicate {
                        b = b.predicate(p);
                    }
                    for (c, v) in sets {
                        b = b.update(c, v);
                    }
                    b
                })
            }
            (MergeClauseKind::Matched, MergeAction::Delete { .. }) => {
                builder.when_matched_delete(|mut b| {
                    if let Some(p) = predicate {
                        b = b.predicate(p);
                    }
                    b
                })
            }
            (
                MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget,
                MergeAction::Insert(i),
            ) => {
                let MergeInsertKind::Values(values) = &i.kind else {
                    return Err(unsupported("INSERT without VALUES"));
                };
                let [row] = values.rows.as_slice() else {
                    return Err(unsupported("INSERT of more than one row of VALUES"));
                };
                if row.content.len() != i.columns.len() {
                    return Err(Error::Unsupported(format!(
                        "MERGE: INSERT names {} columns but gives {} values",
                        i.columns.len(),
                        row.content.len()
                    )));
                }
                let sets: Vec<(String, String)> = i
                    .columns
                    .iter()
                    .zip(row.content.iter())
                    .map(|(c, v)| (column_name(c), v.to_string()))
                    .collect();
                builder.when_not_matched_insert(|mut b| {
                    if let Some(p) = predicate {
                        b = b.predicate(p);
                    }
                    for (c, v) in sets {
                        b = b.set(c, v);
                    }
                    b
                })
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Update(u)) => {
                let sets = assignments(&u.assignments)?;
                builder.when_not_matched_by_source_update(|mut b| {
                    if let Some(p) = predicate {
                        b = b.predicate(p);
                    }
                    for (c, v) in sets {
                        b = b.update(c, v);
                    }
                    b
                })
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Delete { .. }) => builder
                .when_not_matched_by_source_delete(|mut b| {
                    if let Some(p) = predicate {
                        b = b.predicate(p);
                    }
                    b
                }),
            (kind, action) => return Err(unsupported(&format!("WHEN {kind} THEN {action}"))),
        }
        .map_err(|e| dml_error(&entry, "MERGE", e))?;
    }
    let one = |n: usize| -> ArrayRef { Arc::new(UInt64Array::from(vec![n as u64])) };
    let (_, metrics) = match builder.await {
        Ok(done) => done,
        Err(e) => {
            let error = (may_have_landed(&e), dml_error(&entry, "MERGE", e));
            let error = (error.1, error.0);
            let info = settle(session, &entry, &id, "MERGE", error).await?;
            let n = |name: &str| one(delta::commit_metric(&info, name) as usize);
            return Ok(table_output(vec![
                ("inserted", n("num_target_rows_inserted")),
                ("updated", n("num_target_rows_updated")),
                ("deleted", n("num_target_rows_deleted")),
            ]));
        }
    };
    Ok(table_output(vec![
        ("inserted", one(metrics.num_target_rows_inserted)),
        ("updated", one(metrics.num_target_rows_updated)),
        ("deleted", one(metrics.num_target_rows_deleted)),
    ]))
}
