//! The parameters of prepared statements: where `?` and `$n` placeholders sit in a
//! statement's text, outside strings, names and comments.

use std::ops::Range;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::LineStarts;
use crate::error::{Error, Result};

/// The placeholders of a statement in order of appearance: `?` (numbered by position, as
/// ADBC and JDBC write them) and `$n`.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// Byte ranges of the placeholder tokens in the text, with the 1-based parameter each
    /// stands for.
    spans: Vec<(Range<usize>, usize)>,
}

impl Placeholders {
    /// Finds the placeholders of a statement.
    pub fn find(sql: &str) -> Result<Self> {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .with_unescape(false)
            .tokenize_with_location()
            .map_err(|e| Error::Syntax {
                message: e.to_string(),
                line: usize::try_from(e.location.line).ok(),
                column: usize::try_from(e.location.column).ok(),
            })?;
        let lines = LineStarts::new(sql);
        let mut spans = vec![];
        let mut question_marks = 0;
        for t in &tokens {
            let Token::Placeholder(p) = &t.token else {
                continue;
            };
            let number = if p == "?" {
                question_marks += 1;
                question_marks
            } else if let Some(n) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                n
            } else {
                return Err(Error::Unsupported(format!(
                    "parameter '{p}' is not supported; write ? or $1, $2, …"
                )));
            };
            let start = lines.offset(sql, t.span.start);
            let end = lines.offset(sql, t.span.end);
            if start >= end {
                return Err(Error::Unsupported(format!(
                    "cannot locate parameter '{p}' in the statement"
                )));
            }
            spans.push((start..end, number));
        }
        Ok(Self { spans })
    }

    /// How many parameters the statement takes.
    pub fn count(&self) -> usize {
        self.spans.iter().map(|(_, n)| *n).max().unwrap_or(0)
    }

    /// The text with each placeholder replaced by what `replace` gives for its number.
    pub fn substitute<E>(
        &self,
        sql: &str,
        mut replace: impl FnMut(usize) -> std::result::Result<String, E>,
    ) -> std::result::Result<String, E> {
        let mut out = String::with_capacity(sql.len());
        let mut at = 0;
        for (range, n) in &self.spans {
            out.push_str(&sql[at..range.start]);
            out.push_str(&replace(*n)?);
            at = range.end;
        }
        out.push_str(&sql[at..]);
        Ok(out)
    }
}
