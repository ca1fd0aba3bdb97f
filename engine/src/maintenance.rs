//! Delta table maintenance: `RESTORE TABLE t TO VERSION AS OF n | TIMESTAMP AS OF '…'`,
//! `OPTIMIZE t [WHERE partition = value [AND …]] [ZORDER BY (cols)]` and
//! `VACUUM t [RETAIN n HOURS] [DRY RUN] [FORCE]`.

use std::sync::Arc;

use arrow::array::{BooleanArray, StringArray, UInt64Array};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use deltalake::operations::optimize::OptimizeType;
use deltalake::{FilterOp, FilterValue};

use crate::delta::{self, AsOf};
use crate::dml::delta_entry;
use crate::error::{Error, Result};
use crate::session::{Output, Session, table_output};

/// The meaningful tokens of a statement (no whitespace, no trailing `;`).
fn tokens(sql: &str) -> Vec<Token> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
        .collect()
}

fn is_word(t: Option<&Token>, w: &str) -> bool {
    matches!(t, Some(Token::Word(x)) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// Reads a possibly qualified table name starting at `i`.
fn table_name(t: &[Token], i: &mut usize) -> Option<String> {
    let mut parts = vec![];
    loop {
        match t.get(*i) {
            Some(Token::Word(w)) => parts.push(if w.quote_style.is_some() {
                w.value.clone()
            } else {
                w.value.to_ascii_lowercase()
            }),
            _ => return None,
        }
        *i += 1;
        if matches!(t.get(*i), Some(Token::Period)) {
            *i += 1;
        } else {
            return Some(parts.join("."));
        }
    }
}

/// Runs the statement if it is one of these; `None` otherwise.
pub(crate) async fn run(session: &Session, sql: &str) -> Result<Option<Output>> {
    let t = tokens(sql);
    if is_word(t.first(), "restore") && is_word(t.get(1), "table") {
        return restore(session, &t).await.map(Some);
    }
    if is_word(t.first(), "optimize") {
        return optimize(session, &t).await.map(Some);
    }
    if is_word(t.first(), "vacuum") {
        return vacuum(session, &t).await.map(Some);
    }
    Ok(None)
}

async fn restore(session: &Session, t: &[Token]) -> Result<Output> {
    let usage = || {
        Error::Unsupported(
            "usage: RESTORE TABLE t TO VERSION AS OF n | TO TIMESTAMP AS OF 'timestamp'".into(),
        )
    };
    let mut i = 2;
    let name = table_name(t, &mut i).ok_or_else(usage)?;
    if !is_word(t.get(i), "to") || !is_word(t.get(i + 2), "as") || !is_word(t.get(i + 3), "of") {
        return Err(usage());
    }
    let as_of = match (t.get(i + 1), t.get(i + 4)) {
        (Some(Token::Word(w)), Some(Token::Number(n, _)))
            if w.value.eq_ignore_ascii_case("version") =>
        {
            AsOf::split_name(&format!("x@v{n}"))?.1
        }
        (Some(Token::Word(w)), Some(Token::SingleQuotedString(s)))
            if w.value.eq_ignore_ascii_case("timestamp") =>
        {
            AsOf::split_name(&format!("x@t{s}"))?.1
        }
        _ => return Err(usage()),
    };
    let entry = delta_entry(session, &name, "RESTORE")?;
    let table = delta::load_latest(session.stores(), &entry).await?;
    let latest = table.version().unwrap_or_default();
    let builder = table.restore();
    let builder = match &as_of {
        AsOf::Version(v) => {
            if *v >= latest {
                return Err(Error::Unsupported(format!(
                    "RESTORE {}: version {v} is not older than the latest version, {latest}",
                    entry.qualified_name()
                )));
            }
            builder.with_version_to_restore(*v)
        }
        AsOf::Timestamp(ts) => builder.with_datetime_to_restore(*ts),
        AsOf::Latest => builder,
    };
    let (table, metrics) = builder
        .await
        .map_err(|e| Error::Unsupported(format!("RESTORE {}: {e}", entry.qualified_name())))?;
    Ok(table_output(vec![
        (
            "version",
            Arc::new(UInt64Array::from(vec![table.version().unwrap_or_default()])),
        ),
        (
            "files_removed",
            Arc::new(UInt64Array::from(vec![metrics.num_removed_file as u64])),
        ),
        (
            "files_restored",
            Arc::new(UInt64Array::from(vec![metrics.num_restored_file as u64])),
        ),
    ]))
}

async fn optimize(session: &Session, t: &[Token]) -> Result<Output> {
    let usage = || {
        Error::Unsupported(
            "usage: OPTIMIZE t [WHERE partition = value [AND …]] [ZORDER BY (col, …)]".into(),
        )
    };
    let mut i = 1;
    let name = table_name(t, &mut i).ok_or_else(usage)?;
    let entry = delta_entry(session, &name, "OPTIMIZE")?;
    let partitions: Vec<&str> = entry
        .partition_columns
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut filters: Vec<(String, String)> = vec![];
    if is_word(t.get(i), "where") {
        i += 1;
        loop {
            let column = match t.get(i) {
                Some(Token::Word(w)) => w.value.to_ascii_lowercase(),
                _ => return Err(usage()),
            };
            if !partitions.contains(&column.as_str()) {
                return Err(Error::Unsupported(format!(
                    "OPTIMIZE … WHERE takes partition columns only, and {column} is not one of {}'s ({})",
                    entry.qualified_name(),
                    if partitions.is_empty() {
                        "it has none".to_string()
                    } else {
                        partitions.join(", ")
                    }
                )));
            }
            if !matches!(t.get(i + 1), Some(Token::Eq)) {
                return Err(usage());
            }
            let value = match t.get(i + 2) {
                Some(Token::Number(n, _)) => n.clone(),
                Some(Token::SingleQuotedString(s)) => s.clone(),
                _ => return Err(usage()),
            };
            filters.push((column, value));
            i += 3;
            if is_word(t.get(i), "and") {
                i += 1;
            } else {
                break;
            }
        }
    }
    let mut zorder = vec![];
    if is_word(t.get(i), "zorder") && is_word(t.get(i + 1), "by") {
        i += 2;
        let parens = matches!(t.get(i), Some(Token::LParen));
        if parens {
            i += 1;
        }
        while let Some(Token::Word(w)) = t.get(i) {
            zorder.push(w.value.to_ascii_lowercase());
            i += 1;
            if matches!(t.get(i), Some(Token::Comma)) {
                i += 1;
            }
        }
        if parens {
            if !matches!(t.get(i), Some(Token::RParen)) {
                return Err(usage());
            }
            i += 1;
        }
        if zorder.is_empty() {
            return Err(usage());
        }
    }
    if i != t.len() {
        return Err(usage());
    }
    let table = delta::load_latest(session.stores(), &entry).await?;
    let literals: Vec<(&str, FilterOp, FilterValue<'_>)> = filters
        .iter()
        .map(|(c, v)| (c.as_str(), FilterOp::Eq, FilterValue::Scalar(v.as_str())))
        .collect();
    let mut builder = table.optimize().with_filters(&literals);
    if !zorder.is_empty() {
        builder = builder.with_type(OptimizeType::ZOrder(zorder));
    }
    let (_, metrics) = builder
        .await
        .map_err(|e| Error::Unsupported(format!("OPTIMIZE {}: {e}", entry.qualified_name())))?;
    Ok(table_output(vec![
        (
            "files_added",
            Arc::new(UInt64Array::from(vec![metrics.num_files_added])),
        ),
        (
            "files_removed",
            Arc::new(UInt64Array::from(vec![metrics.num_files_removed])),
        ),
        (
            "partitions_optimized",
            Arc::new(UInt64Array::from(vec![metrics.partitions_optimized])),
        ),
    ]))
}

async fn vacuum(session: &Session, t: &[Token]) -> Result<Output> {
    let usage = || Error::Unsupported("usage: VACUUM t [RETAIN n HOURS] [DRY RUN] [FORCE]".into());
    let mut i = 1;
    let name = table_name(t, &mut i).ok_or_else(usage)?;
    let entry = delta_entry(session, &name, "VACUUM")?;
    let mut retain: Option<i64> = None;
    let mut dry_run = false;
    let mut force = false;
    while i < t.len() {
        if is_word(t.get(i), "retain") {
            match (t.get(i + 1), is_word(t.get(i + 2), "hours")) {
                (Some(Token::Number(n, _)), true) => retain = Some(n.parse().map_err(|_| usage())?),
                _ => return Err(usage()),
            }
            i += 3;
        } else if is_word(t.get(i), "dry") && is_word(t.get(i + 1), "run") {
            dry_run = true;
            i += 2;
        } else if is_word(t.get(i), "force") {
            force = true;
            i += 1;
        } else {
            return Err(usage());
        }
    }
    let table = delta::load_latest(session.stores(), &entry).await?;
    let mut builder = table
        .vacuum()
        .with_dry_run(dry_run)
        .with_enforce_retention_duration(!force);
    if let Some(hours) = retain {
        builder = builder.with_retention_period(chrono::Duration::hours(hours));
    }
    let (_, metrics) = builder.await.map_err(|e| {
        Error::Unsupported(format!(
            "VACUUM {}: {e}. A retention shorter than the table's (7 days unless set) can break time travel and readers of older versions; add FORCE to do it anyway",
            entry.qualified_name()
        ))
    })?;
    Ok(table_output(vec![
        (
            "files_deleted",
            Arc::new(UInt64Array::from(vec![metrics.files_deleted.len() as u64])),
        ),
        (
            "dry_run",
            Arc::new(BooleanArray::from(vec![metrics.dry_run])),
        ),
        (
            "files",
            Arc::new(StringArray::from(vec![metrics.files_deleted.join(", ")])),
        ),
    ]))
}
