//! What a statement is, seen from the server (a query that streams, a statement that runs
//! once, or one that changes the client's session), from the engine's parser; and the
//! parameters of prepared statements, bound into the statement's text.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use strata_engine::sql::{Effect, Placeholders};
use tonic::Status;

/// How the server runs a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A query DataFusion plans: GetFlightInfo plans it, DoGet streams the plan.
    Query,
    /// A statement that only reads but that strata runs itself (SHOW ZONES, SHOW LINEAGE,
    /// DESCRIBE HISTORY, CHECK, EXPLAIN ANALYZE of a query): run once by DoGet, its small
    /// result kept under the ticket.
    Read,
    /// A statement that changes tables or the catalog (DDL, DML, REFRESH, OPTIMIZE, …).
    Write,
    /// USE, SET and RESET: they change the client's own session only.
    SessionState,
}

impl Kind {
    /// Whether a read-only server runs it.
    pub fn reads_only(self) -> bool {
        matches!(self, Kind::Query | Kind::Read | Kind::SessionState)
    }
}

/// Classifies one statement with the engine's parser. Text holding several statements, or
/// none, or one that does not parse, is refused; so are settings of the runtime every
/// client shares.
pub(crate) fn classify(sql: &str) -> Result<Kind, Status> {
    let parsed =
        strata_engine::sql::parse(sql).map_err(|e| Status::invalid_argument(e.to_string()))?;
    match parsed.as_slice() {
        [one] => Ok(match one.statement.effect() {
            Effect::Query => Kind::Query,
            Effect::Read => Kind::Read,
            Effect::Write => Kind::Write,
            Effect::Session => {
                refuse_runtime_settings(&one.statement)?;
                Kind::SessionState
            }
        }),
        [] => Err(Status::invalid_argument("the statement is empty")),
        many => Err(Status::invalid_argument(format!(
            "one statement per request, but this text holds {}; send them one by one",
            many.len()
        ))),
    }
}

/// Refuses `SET` and `RESET` of `datafusion.runtime.*` (memory limit, spill folder, …): a
/// client's session shares the server's runtime, which the statement would replace.
fn refuse_runtime_settings(statement: &strata_engine::sql::Statement) -> Result<(), Status> {
    // The statement as the parser prints it back: without comments, whatever its quoting.
    let text = match statement {
        strata_engine::sql::Statement::DataFusion(statement) => statement.to_string(),
        _ => return Ok(()),
    };
    let text = text.to_ascii_lowercase().replace(['"', '`', ' '], "");
    if text.contains("datafusion.runtime.") {
        return Err(Status::permission_denied(
            "datafusion.runtime settings (memory limit, spill folder, caches) belong to the server and every client shares them; set them where the server starts (strata serve --memory-limit, its config file), not per session",
        ));
    }
    Ok(())
}

fn placeholders(sql: &str) -> Result<Placeholders, Status> {
    Placeholders::find(sql).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// A statement's text with `?` placeholders numbered `$1`, `$2`, … (as DataFusion plans
/// them), and how many parameters it takes.
pub(crate) fn number_placeholders(sql: &str) -> Result<(String, usize), Status> {
    let placeholders = placeholders(sql)?;
    let text = placeholders.substitute(sql, |n| Ok::<_, Status>(format!("${n}")))?;
    Ok((text, placeholders.count()))
}

/// The statements to run for bound parameters: one per row, each with the row's values
/// written into the text as literals. Without parameters, the statement itself.
pub(crate) fn bind(sql: &str, params: Option<&RecordBatch>) -> Result<Vec<String>, Status> {
    let placeholders = placeholders(sql)?;
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
        assert_eq!(kind("SHOW LINEAGE curated.b"), Kind::Read);
        assert_eq!(kind("CHECK 'c' EXPECT 1 = 1"), Kind::Read);
        assert_eq!(kind("USE raw"), Kind::SessionState);
        assert_eq!(
            kind("SET datafusion.execution.batch_size = 1"),
            Kind::SessionState
        );
        assert_eq!(
            kind("RESET datafusion.execution.batch_size"),
            Kind::SessionState
        );
        for shared in [
            "SET datafusion.runtime.memory_limit = '1G'",
            "set /* x */ datafusion.runtime.temp_directory = '/tmp'",
            "RESET datafusion.runtime.memory_limit",
        ] {
            let err = classify(shared).expect_err(shared);
            assert_eq!(err.code(), tonic::Code::PermissionDenied, "{shared}");
        }
        assert!(classify("SELECT 1; DROP TABLE t").is_err());
        assert!(classify("SELEC 1").is_err());
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
