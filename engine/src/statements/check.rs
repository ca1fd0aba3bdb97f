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

use crate::error::{Error, Result};
use crate::session::{Output, Session, table_output};
pub(crate) use crate::sql::Check;

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
