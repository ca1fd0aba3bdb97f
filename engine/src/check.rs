//! Data-quality checks: `CHECK 'name' EXPECT expression`.
//!
//! The expression is SQL that must be true. When it starts with a parenthesized query, that
//! query's value is what the check saw, and the rest is the expectation on it:
//!
//! ```sql
//! CHECK 'no null keys' EXPECT (SELECT count(*) FROM processed.sales WHERE product_id IS NULL) = 0;
//! CHECK 'a day of sales' EXPECT (SELECT count(*) FROM processed.sales) BETWEEN 10 AND 100000;
//! ```
//!
//! A failing check is an error naming the check, the expectation and the value seen. In a
//! pipeline, the checks after a write to a Delta table run on the written version before
//! readers see it (see `pipeline.rs`).

use std::sync::Arc;

use arrow::array::{Array, StringArray};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};
use crate::session::{Output, Session, table_output};

/// A parsed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    /// The query whose value is checked, when the expression starts with one.
    pub subject: Option<String>,
    /// What must hold: of the subject (`= 0`, `BETWEEN 1 AND 9`), or the whole expression.
    pub expectation: String,
}

/// Recognizes `CHECK 'name' EXPECT expr`; `None` for any other statement, an error for a
/// CHECK that is malformed.
pub fn parse(sql: &str) -> Option<Result<Check>> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    let mut it = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Token::Whitespace(_)));
    match it.next() {
        Some((_, Token::Word(w)))
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("check") => {}
        _ => return None,
    }
    let usage = || {
        Error::Unsupported(
            "write a check as CHECK 'name' EXPECT (SELECT …) = value, or CHECK 'name' EXPECT condition"
                .into(),
        )
    };
    let name = match it.next() {
        Some((_, Token::SingleQuotedString(s))) => s.clone(),
        _ => return Some(Err(usage())),
    };
    let start = match it.next() {
        Some((i, Token::Word(w))) if w.value.eq_ignore_ascii_case("expect") => i + 1,
        _ => return Some(Err(usage())),
    };
    let rest: Vec<&Token> = tokens[start..]
        .iter()
        .skip_while(|t| matches!(t, Token::Whitespace(_)))
        .collect();
    let text = |ts: &[&Token]| -> String {
        ts.iter()
            .map(|t| t.to_string())
            .collect::<String>()
            .trim()
            .trim_end_matches(';')
            .trim()
            .to_string()
    };
    if rest.is_empty() {
        return Some(Err(usage()));
    }
    // A leading parenthesized query is the subject.
    if matches!(rest.first(), Some(Token::LParen)) {
        let mut depth = 0usize;
        for (i, t) in rest.iter().enumerate() {
            match t {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        let inner = text(&rest[1..i]);
                        let is_query = inner.split_whitespace().next().is_some_and(|w| {
                            w.eq_ignore_ascii_case("select") || w.eq_ignore_ascii_case("with")
                        });
                        let after = text(&rest[i + 1..]);
                        if is_query && !after.is_empty() {
                            return Some(Ok(Check {
                                name,
                                subject: Some(inner),
                                expectation: after,
                            }));
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    Some(Ok(Check {
        name,
        subject: None,
        expectation: text(&rest),
    }))
}

/// Runs a check: one row (check, value, passed) when it holds, an error when it does not.
pub async fn run(session: &Session, check: &Check) -> Result<Output> {
    let sql = match &check.subject {
        Some(subject) => format!(
            "SELECT arrow_cast(v, 'Utf8') AS value, (v {}) AS ok FROM (SELECT ({subject}) AS v) AS checked",
            check.expectation
        ),
        None => format!(
            "SELECT arrow_cast(ok, 'Utf8') AS value, ok FROM (SELECT ({}) AS ok) AS checked",
            check.expectation
        ),
    };
    let batches = session
        .plan_query(&sql)
        .await
        .map_err(|e| Error::Unsupported(format!("check '{}' cannot run: {e}", check.name)))?;
    let batches = batches.collect().await?;
    let (value, ok) = first_row(&batches)?;
    if ok != Some(true) {
        return Err(Error::CheckFailed {
            name: check.name.clone(),
            expectation: match &check.subject {
                Some(_) => check.expectation.clone(),
                None => format!("{} to be true", check.expectation),
            },
            value: value.unwrap_or_else(|| "NULL".into()),
        });
    }
    Ok(table_output(vec![
        (
            "check",
            Arc::new(StringArray::from(vec![check.name.clone()])),
        ),
        (
            "value",
            Arc::new(StringArray::from(vec![
                value.unwrap_or_else(|| "NULL".into()),
            ])),
        ),
        ("result", Arc::new(StringArray::from(vec!["passed"]))),
    ]))
}

fn first_row(batches: &[arrow::array::RecordBatch]) -> Result<(Option<String>, Option<bool>)> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok((None, None));
    };
    let options = FormatOptions::default();
    let value = batch.column(0);
    let value = if value.is_null(0) {
        None
    } else {
        let formatter = ArrayFormatter::try_new(value.as_ref(), &options)?;
        Some(formatter.value(0).to_string())
    };
    let ok = batch
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::BooleanArray>()
        .and_then(|b| (!b.is_null(0)).then(|| b.value(0)));
    Ok((value, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_checks() {
        let c = parse("CHECK 'no nulls' EXPECT (SELECT count(*) FROM t WHERE k IS NULL) = 0;")
            .expect("a check")
            .expect("well formed");
        assert_eq!(c.name, "no nulls");
        assert_eq!(
            c.subject.as_deref(),
            Some("SELECT count(*) FROM t WHERE k IS NULL")
        );
        assert_eq!(c.expectation, "= 0");
        let c = parse("check 'rows' expect (select count(*) from t) between 1 and 10")
            .expect("a check")
            .expect("well formed");
        assert_eq!(c.expectation, "between 1 and 10");
        let c = parse("CHECK 'plain' EXPECT 1 < 2")
            .expect("a check")
            .expect("ok");
        assert_eq!((c.subject, c.expectation.as_str()), (None, "1 < 2"));
        assert!(parse("SELECT 1").is_none());
        assert!(
            parse("CHECK no_quotes EXPECT 1 = 1")
                .expect("a check")
                .is_err()
        );
    }
}
