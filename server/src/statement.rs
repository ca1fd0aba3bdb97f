//! What a statement is, seen from the server: a query that streams, a statement that runs
//! at once, or one that would change the session every client shares; and the parameters
//! of prepared statements, bound into the statement's text.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{SetExpr, Statement as SqlStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use tonic::Status;

/// How the server runs a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A query DataFusion plans: GetFlightInfo plans it for its schema, DoGet streams it.
    Query,
    /// A statement that only reads but that strata runs itself (SHOW ZONES, DESCRIBE
    /// HISTORY, EXPLAIN ANALYZE of a query): run at once, its small result kept in the ticket.
    Read,
    /// A statement that changes tables or the catalog (DDL, DML, REFRESH, OPTIMIZE, …).
    Write,
    /// USE, SET and RESET: they would change the zone or settings of every client, since
    /// all clients share one session.
    SessionState,
}

impl Kind {
    /// Whether a read-only server runs it.
    pub fn reads_only(self) -> bool {
        matches!(self, Kind::Query | Kind::Read)
    }
}

/// Classifies one statement. Text holding several statements is refused.
pub(crate) fn classify(sql: &str) -> Result<Kind, Status> {
    let statements = strata_engine::split::split_statements(sql);
    if statements.len() > 1 {
        return Err(Status::invalid_argument(format!(
            "one statement per request, but this text holds {}; send them one by one",
            statements.len()
        )));
    }
    if statements.is_empty() {
        return Err(Status::invalid_argument("the statement is empty"));
    }
    let words = leading_words(sql, 2);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    // strata's own statements, which DataFusion's parser does not know.
    match words.as_slice() {
        ["USE" | "SET" | "RESET", ..] => return Ok(Kind::SessionState),
        ["SHOW", "ZONES"] | ["DESCRIBE" | "DESC", "HISTORY"] => return Ok(Kind::Read),
        ["REFRESH" | "OPTIMIZE" | "VACUUM" | "RESTORE" | "MERGE", ..] => return Ok(Kind::Write),
        _ => {}
    }
    let rewritten = strata_engine::delta::rewrite_time_travel(sql);
    let text = rewritten.as_deref().unwrap_or(sql);
    match DFParser::parse_sql_with_dialect(text, &GenericDialect {}) {
        Ok(parsed) => Ok(parsed.front().map_or(Kind::Write, of_statement)),
        // Text DataFusion cannot parse is either a statement strata parses itself (CREATE
        // TABLE … PARTITIONED BY … AS, which writes) or a query that fails when planned.
        Err(_) => Ok(match words.first().copied() {
            Some("SELECT" | "WITH" | "VALUES" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN") => {
                Kind::Query
            }
            _ => Kind::Write,
        }),
    }
}

fn of_statement(statement: &DFStatement) -> Kind {
    match statement {
        DFStatement::Statement(s) => of_sql_statement(s),
        DFStatement::Explain(explain) => {
            if !explain.options.analyze {
                Kind::Query
            } else if of_statement(&explain.statement) == Kind::Query {
                Kind::Read
            } else {
                // EXPLAIN ANALYZE runs what it explains.
                Kind::Write
            }
        }
        DFStatement::Reset(_) => Kind::SessionState,
        DFStatement::CreateExternalTable(_) | DFStatement::CopyTo(_) => Kind::Write,
    }
}

fn of_sql_statement(statement: &SqlStatement) -> Kind {
    match statement {
        SqlStatement::Query(query) => match query.body.as_ref() {
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                Kind::Write
            }
            _ => Kind::Query,
        },
        SqlStatement::Explain {
            analyze, statement, ..
        } => {
            if !analyze {
                Kind::Query
            } else if of_sql_statement(statement) == Kind::Query {
                Kind::Read
            } else {
                Kind::Write
            }
        }
        SqlStatement::ExplainTable { .. }
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. }
        | SqlStatement::ShowVariable { .. }
        | SqlStatement::ShowFunctions { .. }
        | SqlStatement::ShowCreate { .. } => Kind::Query,
        SqlStatement::Use(_) | SqlStatement::Set(_) => Kind::SessionState,
        _ => Kind::Write,
    }
}

/// The first `n` words of a statement, upper-cased, past comments and opening parentheses.
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    match Tokenizer::new(&GenericDialect {}, sql)
        .with_unescape(false)
        .tokenize()
    {
        Ok(tokens) => tokens
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::LParen))
            .take(n)
            .map(|t| match t {
                Token::Word(w) => w.value.to_ascii_uppercase(),
                other => other.to_string(),
            })
            .collect(),
        Err(_) => sql
            .split_whitespace()
            .take(n)
            .map(str::to_ascii_uppercase)
            .collect(),
    }
}

/// The placeholders of a statement in order of appearance: `?` (numbered by position, as
/// ADBC and JDBC write them) and `$n`.
struct Placeholders {
    /// Byte ranges of the placeholder tokens in the text, with the 1-based parameter each
    /// stands for.
    spans: Vec<(std::ops::Range<usize>, usize)>,
}

impl Placeholders {
    fn find(sql: &str) -> Result<Self, Status> {
        let tokens: Vec<TokenWithSpan> = Tokenizer::new(&GenericDialect {}, sql)
            .with_unescape(false)
            .tokenize_with_location()
            .map_err(|e| Status::invalid_argument(format!("SQL syntax error: {e}")))?;
        let offsets = LineOffsets::new(sql);
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
                return Err(Status::invalid_argument(format!(
                    "parameter '{p}' is not supported; write ? or $1, $2, …"
                )));
            };
            let start = offsets.byte(t.span.start.line, t.span.start.column);
            let end = offsets.byte(t.span.end.line, t.span.end.column);
            match (start, end) {
                (Some(start), Some(end)) if start < end => spans.push((start..end, number)),
                _ => {
                    return Err(Status::internal(format!(
                        "cannot locate parameter '{p}' in the statement"
                    )));
                }
            }
        }
        Ok(Self { spans })
    }

    /// How many parameters the statement takes.
    fn count(&self) -> usize {
        self.spans.iter().map(|(_, n)| *n).max().unwrap_or(0)
    }

    /// The text with each placeholder replaced by what `replace` gives for its number.
    fn substitute(
        &self,
        sql: &str,
        mut replace: impl FnMut(usize) -> Result<String, Status>,
    ) -> Result<String, Status> {
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

/// Byte offsets of lines, to turn the tokenizer's (line, column) into positions in the text.
struct LineOffsets<'a> {
    sql: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    fn new(sql: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Self { sql, starts }
    }

    /// The byte offset of a 1-based line and column (columns count characters).
    fn byte(&self, line: u64, column: u64) -> Option<usize> {
        let start = *self
            .starts
            .get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(column).ok()?.checked_sub(1)?;
        let rest = &self.sql[start..];
        match rest.char_indices().nth(column) {
            Some((i, _)) => Some(start + i),
            None if rest.chars().count() == column => Some(start + rest.len()),
            None => None,
        }
    }
}

/// A statement's text with `?` placeholders numbered `$1`, `$2`, … (as DataFusion plans
/// them), and how many parameters it takes.
pub(crate) fn number_placeholders(sql: &str) -> Result<(String, usize), Status> {
    let placeholders = Placeholders::find(sql)?;
    let text = placeholders.substitute(sql, |n| Ok(format!("${n}")))?;
    Ok((text, placeholders.count()))
}

/// The statements to run for bound parameters: one per row, each with the row's values
/// written into the text as literals. Without parameters, the statement itself.
pub(crate) fn bind(sql: &str, params: Option<&RecordBatch>) -> Result<Vec<String>, Status> {
    let placeholders = Placeholders::find(sql)?;
    let wanted = placeholders.count();
    let Some(params) = params.filter(|p| p.num_rows() > 0) else {
        if wanted > 0 {
            return Err(Status::invalid_argument(format!(
                "the statement takes {wanted} parameter{}, but none were bound",
                if wanted == 1 { "" } else { "s" }
            )));
        }
        return Ok(vec![sql.to_string()]);
    };
    if params.num_columns() < wanted {
        return Err(Status::invalid_argument(format!(
            "the statement takes {wanted} parameters, but {} were bound",
            params.num_columns()
        )));
    }
    (0..params.num_rows())
        .map(|row| {
            placeholders.substitute(sql, |n| {
                let column = params.column(n - 1);
                literal(column.as_ref(), row)
                    .map_err(|reason| Status::invalid_argument(format!("parameter ${n}: {reason}")))
            })
        })
        .collect()
}

/// One value of an array as a SQL literal of its type.
fn literal(array: &dyn Array, row: usize) -> Result<String, String> {
    let value = ScalarValue::try_from_array(array, row).map_err(|e| e.to_string())?;
    if value.is_null() {
        return Ok("NULL".into());
    }
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    Ok(match &value {
        ScalarValue::Boolean(Some(b)) => if *b { "TRUE" } else { "FALSE" }.into(),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_) => {
            let text = value.to_string();
            // In parentheses, so that `a -?` cannot turn into a `--` comment.
            if text.starts_with('-') {
                format!("({text})")
            } else {
                text
            }
        }
        ScalarValue::Float16(_) | ScalarValue::Float32(_) => {
            format!("CAST({} AS REAL)", quoted(&value.to_string()))
        }
        ScalarValue::Float64(_) => format!("CAST({} AS DOUBLE)", quoted(&value.to_string())),
        ScalarValue::Decimal128(_, p, s) | ScalarValue::Decimal256(_, p, s) => {
            format!("CAST({} AS DECIMAL({p}, {s}))", quoted(&value.to_string()))
        }
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => quoted(s),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b))
        | ScalarValue::FixedSizeBinary(_, Some(b)) => {
            let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
            format!("X'{hex}'")
        }
        ScalarValue::Date32(_) | ScalarValue::Date64(_) => {
            format!("CAST({} AS DATE)", quoted(&value.to_string()))
        }
        ScalarValue::Time32Second(_)
        | ScalarValue::Time32Millisecond(_)
        | ScalarValue::Time64Microsecond(_)
        | ScalarValue::Time64Nanosecond(_)
        | ScalarValue::TimestampSecond(..)
        | ScalarValue::TimestampMillisecond(..)
        | ScalarValue::TimestampMicrosecond(..)
        | ScalarValue::TimestampNanosecond(..) => {
            let data_type = value.data_type();
            format!(
                "arrow_cast({}, {})",
                quoted(&display(array, row)?),
                quoted(&data_type.to_string())
            )
        }
        other => {
            return Err(format!(
                "values of type {} cannot be bound yet; cast the parameter in SQL from a string",
                other.data_type()
            ));
        }
    })
}

/// An array value as arrow's cast to text shows it (ISO 8601 for times and timestamps),
/// which the cast back from text reads.
fn display(array: &dyn Array, row: usize) -> Result<String, String> {
    let one = array.slice(row, 1);
    let text = arrow::compute::cast(&one, &DataType::Utf8).map_err(|e| e.to_string())?;
    let text = text
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .ok_or("cannot show the value as text")?;
    Ok(text.value(0).to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn classifies_statements() {
        let kind = |sql: &str| classify(sql).expect("classified");
        assert_eq!(kind("SELECT 1"), Kind::Query);
        assert_eq!(kind("  -- hi\n(SELECT 1)"), Kind::Query);
        assert_eq!(kind("WITH a AS (SELECT 1) SELECT * FROM a"), Kind::Query);
        assert_eq!(kind("SELECT * FROM t VERSION AS OF 1"), Kind::Query);
        assert_eq!(kind("EXPLAIN SELECT 1"), Kind::Query);
        assert_eq!(kind("EXPLAIN ANALYZE SELECT 1"), Kind::Read);
        assert_eq!(
            kind("EXPLAIN ANALYZE INSERT INTO t VALUES (1)"),
            Kind::Write
        );
        assert_eq!(kind("SHOW TABLES"), Kind::Query);
        assert_eq!(kind("show zones"), Kind::Read);
        assert_eq!(kind("DESCRIBE HISTORY curated.t"), Kind::Read);
        assert_eq!(kind("DESCRIBE raw.sales"), Kind::Query);
        assert_eq!(kind("INSERT INTO t VALUES (1)"), Kind::Write);
        assert_eq!(kind("UPDATE t SET a = 1"), Kind::Write);
        assert_eq!(kind("DELETE FROM t"), Kind::Write);
        assert_eq!(kind("CREATE TABLE t AS SELECT 1"), Kind::Write);
        assert_eq!(
            kind("CREATE TABLE processed.t PARTITIONED BY (a) AS SELECT 1 AS a"),
            Kind::Write
        );
        assert_eq!(kind("DROP TABLE t"), Kind::Write);
        assert_eq!(kind("REFRESH ZONE raw"), Kind::Write);
        assert_eq!(kind("VACUUM t"), Kind::Write);
        assert_eq!(kind("USE raw"), Kind::SessionState);
        assert_eq!(
            kind("SET datafusion.execution.batch_size = 1"),
            Kind::SessionState
        );
        assert!(classify("SELECT 1; DROP TABLE t").is_err());
    }

    #[test]
    fn numbers_question_marks_outside_strings() {
        let (sql, n) =
            number_placeholders("SELECT '?', a FROM t WHERE a = ? AND b = ? -- ?\n").expect("ok");
        assert_eq!(sql, "SELECT '?', a FROM t WHERE a = $1 AND b = $2 -- ?\n");
        assert_eq!(n, 2);
        let (sql, n) = number_placeholders("SELECT 'é', ?\n, ?").expect("ok");
        assert_eq!(sql, "SELECT 'é', $1\n, $2");
        assert_eq!(n, 2);
    }

    #[test]
    fn binds_values_as_literals() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(-3), None])),
                Arc::new(StringArray::from(vec![Some("it's"), Some("x")])),
            ],
        )
        .expect("batch");
        let bound = bind("SELECT a -$1, $2", Some(&batch)).expect("bound");
        assert_eq!(
            bound,
            vec!["SELECT a -(-3), 'it''s'", "SELECT a -NULL, 'x'"]
        );
        assert!(bind("SELECT $1", None).is_err());
        assert_eq!(bind("SELECT 1", None).expect("no params"), vec!["SELECT 1"]);
    }
}
