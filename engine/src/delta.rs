//! Delta tables, read through deltalake's DataFusion provider: at the latest version at query
//! time, or at an older one when a query says `VERSION AS OF n` or `TIMESTAMP AS OF '…'`.
//!
//! Time travel reaches the engine as a table name: [`rewrite_time_travel`] turns
//! `sales VERSION AS OF 3` into the quoted name `"sales@v3"` before DataFusion parses the
//! statement (its generic SQL dialect has no such clause), and the zone schema resolves that
//! name to the table at version 3.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use datafusion::catalog::TableProvider;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Word};
use deltalake::{DeltaTable, DeltaTableBuilder};
use url::Url;

use crate::error::{Error, Result};
use crate::stores::StoreRegistry;

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
    Ok(table.table_provider().await?)
}

/// A deltalake error as an engine error.
pub fn delta_error(e: deltalake::DeltaTableError) -> Error {
    Error::Unsupported(format!("Delta: {e}"))
}

/// Rewrites `name VERSION AS OF n` and `name TIMESTAMP AS OF 'ts'` into the quoted names
/// `"name@vn"` and `"name@tts"`. Returns `None` when there is nothing to rewrite.
pub fn rewrite_time_travel(sql: &str) -> Option<String> {
    let upper = sql.to_ascii_uppercase();
    if !upper.contains(" AS OF ") && !upper.contains("\nAS OF") {
        return None;
    }
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut changed = false;
    let mut i = 0;
    while i < tokens.len() {
        if let Some((suffix, consumed)) = match_as_of(&tokens[i..])
            && let Some(j) = out.iter().rposition(|t| !matches!(t, Token::Whitespace(_)))
            && let Token::Word(w) = &out[j]
        {
            let base = if w.quote_style.is_some() {
                w.value.clone()
            } else {
                w.value.to_ascii_lowercase()
            };
            out[j] = Token::Word(Word {
                value: format!("{base}@{suffix}"),
                quote_style: Some('"'),
                keyword: Keyword::NoKeyword,
            });
            out.truncate(j + 1);
            changed = true;
            i += consumed;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    changed.then(|| out.iter().map(render).collect())
}

/// A token as SQL text. The tokenizer's own display drops the doubling of quotes inside
/// quoted strings and names (`'it''s'` would come out as `'it's'`).
fn render(token: &Token) -> String {
    match token {
        Token::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
        Token::Word(w) if w.quote_style == Some('"') => {
            format!("\"{}\"", w.value.replace('"', "\"\""))
        }
        other => other.to_string(),
    }
}

/// Matches `VERSION AS OF <number>` or `TIMESTAMP AS OF '<text>'` at the start of `tokens`
/// (after optional whitespace); returns the name suffix and the tokens consumed.
fn match_as_of(tokens: &[Token]) -> Option<(String, usize)> {
    let mut i = 0;
    let next = |i: &mut usize| -> Option<Token> {
        while matches!(tokens.get(*i), Some(Token::Whitespace(_))) {
            *i += 1;
        }
        let t = tokens.get(*i).cloned();
        *i += 1;
        t
    };
    let kind = match next(&mut i)? {
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("version") => 'v',
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("timestamp") => {
            't'
        }
        _ => return None,
    };
    match next(&mut i)? {
        Token::Word(w) if w.value.eq_ignore_ascii_case("as") => {}
        _ => return None,
    }
    match next(&mut i)? {
        Token::Word(w) if w.value.eq_ignore_ascii_case("of") => {}
        _ => return None,
    }
    let value = match (kind, next(&mut i)?) {
        ('v', Token::Number(n, _)) => n,
        ('t', Token::SingleQuotedString(s)) => s,
        _ => return None,
    };
    Some((format!("{kind}{value}"), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_time_travel_into_names() {
        assert_eq!(
            rewrite_time_travel("SELECT * FROM curated.Sales VERSION AS OF 3 WHERE x = 1")
                .as_deref(),
            Some("SELECT * FROM curated.\"sales@v3\" WHERE x = 1")
        );
        assert_eq!(
            rewrite_time_travel("select * from t timestamp as of '2026-01-01 00:00:00' s")
                .as_deref(),
            Some("select * from \"t@t2026-01-01 00:00:00\" s")
        );
        assert_eq!(rewrite_time_travel("SELECT 'VERSION AS OF 3'"), None);
        // Quotes doubled inside strings and names stay doubled.
        assert_eq!(
            rewrite_time_travel("SELECT \"a\"\"b\" FROM t VERSION AS OF 1 WHERE name = 'it''s'")
                .as_deref(),
            Some("SELECT \"a\"\"b\" FROM \"t@v1\" WHERE name = 'it''s'")
        );
        assert_eq!(AsOf::split_name("t@v7").ok(), Some(("t", AsOf::Version(7))));
    }
}
