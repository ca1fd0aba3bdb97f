//! Lineage: the tables a write read (with their versions), recorded on the table it wrote,
//! and `SHOW LINEAGE zone.t`, the upstream graph across zones.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, UInt64Array};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::ObjectName;
use strata_catalog::{SourceTable, TableEntry, TableFormat};

use crate::error::{Error, Result};
use crate::providers::delta::AsOf;
use crate::session::{Output, Session, table_output};

/// The registered tables a query reads, each with the version it reads (Delta tables).
pub(crate) async fn sources(
    session: &Session,
    statement: &DFStatement,
) -> Result<Vec<SourceTable>> {
    let state = session.context().state();
    let mut found = BTreeSet::new();
    for reference in state.resolve_table_references(statement)? {
        if reference.schema() == Some("information_schema") {
            continue;
        }
        let Ok((zone, name)) = session.resolve(&reference) else {
            continue;
        };
        let (base, as_of) = AsOf::split_name(&name)?;
        let snapshot = session.catalog().snapshot();
        let Ok(entry) = snapshot.table(&zone, base) else {
            continue;
        };
        let version = match (&entry.format, as_of) {
            (TableFormat::Delta, AsOf::Version(v)) => Some(v),
            (TableFormat::Delta, _) => session
                .latest_delta(entry)
                .await
                .ok()
                .and_then(|t| t.version()),
            _ => None,
        };
        found.insert(SourceTable {
            table: entry.qualified_name(),
            version,
        });
    }
    Ok(found.into_iter().collect())
}

/// Merges newly read sources into what a table already records: one line per table, with
/// the newest version read.
pub(crate) fn merge_sources(old: &[SourceTable], new: &[SourceTable]) -> Vec<SourceTable> {
    let mut merged: Vec<SourceTable> = old
        .iter()
        .filter(|o| !new.iter().any(|n| n.table == o.table))
        .cloned()
        .collect();
    merged.extend(new.iter().cloned());
    merged.sort();
    merged
}

/// Records on `zone.name` the tables a write to it read (INSERT … SELECT, MERGE … USING).
pub(crate) async fn record_write(
    session: &Session,
    zone: &str,
    name: &str,
    statement: &DFStatement,
) -> Result<()> {
    let target = format!("{zone}.{name}");
    let mut read = sources(session, statement).await?;
    read.retain(|s| s.table != target);
    if read.is_empty() {
        return Ok(());
    }
    session
        .catalog()
        .commit(&format!("LINEAGE {target}"), |state| {
            let Ok(entry) = state.table(zone, name) else {
                return Ok(vec![]);
            };
            let merged = merge_sources(&entry.sources, &read);
            if merged == entry.sources {
                return Ok(vec![]);
            }
            let mut entry = entry.clone();
            entry.sources = merged;
            Ok(vec![strata_catalog::Action::PutTable(Box::new(entry))])
        })
        .await?;
    Ok(())
}

/// `SHOW LINEAGE zone.t`: the table, then what it was made from, recursively, as an
/// indented tree with each table's format, the version read and the SQL that made it.
pub(crate) async fn show(session: &Session, name: &ObjectName) -> Result<Output> {
    let (zone, table) = session.resolve(&crate::sql::table_reference(name))?;
    let snapshot = session.catalog().snapshot();
    let root = snapshot.table(&zone, &table.to_ascii_lowercase())?.clone();
    let mut lines: Vec<(String, String, Option<u64>, String)> = vec![];
    let mut seen = BTreeSet::new();
    walk(session, &root, None, 0, "", &mut seen, &mut lines);
    let (tree, rest): (Vec<String>, Vec<_>) =
        lines.into_iter().map(|(t, f, v, s)| (t, (f, v, s))).unzip();
    let (formats, rest): (Vec<String>, Vec<_>) =
        rest.into_iter().map(|(f, v, s)| (f, (v, s))).unzip();
    let (versions, sqls): (Vec<Option<u64>>, Vec<String>) = rest.into_iter().unzip();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("lineage", Arc::new(StringArray::from(tree))),
        ("format", Arc::new(StringArray::from(formats))),
        ("version", Arc::new(UInt64Array::from(versions))),
        ("sql", Arc::new(StringArray::from(sqls))),
    ];
    Ok(table_output(columns))
}

fn walk(
    session: &Session,
    entry: &TableEntry,
    version: Option<u64>,
    depth: usize,
    prefix: &str,
    seen: &mut BTreeSet<String>,
    lines: &mut Vec<(String, String, Option<u64>, String)>,
) {
    let name = entry.qualified_name();
    let kind = if entry.materialized.is_some() {
        format!("{} (materialized view)", entry.format)
    } else {
        entry.format.to_string()
    };
    let sql = entry
        .lineage
        .as_deref()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    lines.push((format!("{prefix}{name}"), kind, version, sql));
    if !seen.insert(name) {
        return;
    }
    let snapshot = session.catalog().snapshot();
    let indent = "   ".repeat(depth);
    for source in &entry.sources {
        let child_prefix = format!("{indent}└─ ");
        match source
            .table
            .split_once('.')
            .and_then(|(z, t)| snapshot.table(z, t).ok())
        {
            Some(child) => walk(
                session,
                child,
                source.version,
                depth + 1,
                &child_prefix,
                seen,
                lines,
            ),
            None => lines.push((
                format!("{child_prefix}{} (dropped)", source.table),
                String::new(),
                source.version,
                String::new(),
            )),
        }
    }
}

/// Whether each recorded source has changed since: `(table, recorded, current)` for those
/// whose Delta version moved on.
pub async fn changed_sources(
    session: &Session,
    entry: &TableEntry,
) -> Result<Vec<(String, Option<u64>, Option<u64>)>> {
    let snapshot = session.catalog().snapshot();
    let mut changed = vec![];
    for source in &entry.sources {
        let Some((zone, table)) = source.table.split_once('.') else {
            continue;
        };
        let Ok(current) = snapshot.table(zone, table) else {
            changed.push((source.table.clone(), source.version, None));
            continue;
        };
        if current.format != TableFormat::Delta {
            continue;
        }
        let now = session
            .latest_delta(current)
            .await
            .map_err(|e| Error::Unsupported(e.to_string()))?
            .version();
        if now != source.version {
            changed.push((source.table.clone(), source.version, now));
        }
    }
    Ok(changed)
}
