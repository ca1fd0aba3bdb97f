//! `SUMMARIZE t` and `SUMMARIZE SELECT …`: one row per column of the table or query, as
//! DuckDB's SUMMARIZE shows them: the column's SQL type, its min and max, an approximate
//! count of distinct values, the average and standard deviation of numbers, the number of
//! rows and the share of NULLs. One aggregate query over the input computes every figure;
//! its single row is then turned into one row per column. DuckDB's quartiles (q25, q50,
//! q75) are left out.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::functions_aggregate::expr_fn::{
    approx_distinct, avg, count, count_distinct, max, min, stddev,
};
use datafusion::logical_expr::{Expr, cast, lit};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement as SqlStatement};

use crate::error::{Error, Result};
use crate::session::{Output, Session, table_output};
use crate::types::sql_type_name;

/// The figures computed for each column: min, max, distinct values, average, standard
/// deviation and non-NULL values, in the order of the aggregate's outputs.
const FIGURES: usize = 6;

/// Runs `SUMMARIZE query`.
pub(crate) async fn run(session: &Session, query: &Query) -> Result<Output> {
    let statement = DFStatement::Statement(Box::new(SqlStatement::Query(Box::new(query.clone()))));
    let input = session.plan_statement(statement).await?;
    let columns = input.schema().columns();
    let fields: Vec<(String, DataType)> = input
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    if fields.is_empty() {
        return Err(Error::Unsupported(
            "SUMMARIZE needs a table or query with at least one column".into(),
        ));
    }
    let mut aggregates = vec![count(lit(1)).alias("rows")];
    for (i, (column, (_, data_type))) in columns.iter().zip(&fields).enumerate() {
        let c = Expr::Column(column.clone());
        let null_text = || lit(datafusion::common::ScalarValue::Utf8(None));
        let ordered = !data_type.is_nested() && !is_binary(data_type);
        let (lo, hi) = if ordered {
            (
                cast(min(c.clone()), DataType::Utf8),
                cast(max(c.clone()), DataType::Utf8),
            )
        } else {
            (null_text(), null_text())
        };
        let distinct = if data_type.is_integer()
            || matches!(
                data_type,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) {
            cast(approx_distinct(c.clone()), DataType::Int64)
        } else if data_type.is_nested() {
            lit(datafusion::common::ScalarValue::Int64(None))
        } else {
            cast(count_distinct(c.clone()), DataType::Int64)
        };
        let numeric = data_type.is_numeric();
        let (mean, spread) = if numeric {
            (
                cast(
                    cast(avg(cast(c.clone(), DataType::Float64)), DataType::Float64),
                    DataType::Utf8,
                ),
                cast(stddev(cast(c.clone(), DataType::Float64)), DataType::Utf8),
            )
        } else {
            (null_text(), null_text())
        };
        let figures = [
            lo,
            hi,
            distinct,
            mean,
            spread,
            cast(count(c), DataType::Int64),
        ];
        for (j, figure) in figures.into_iter().enumerate() {
            aggregates.push(figure.alias(format!("c{i}_{j}")));
        }
    }
    let aggregate = input.aggregate(vec![], aggregates)?;
    let stream = session.execute_query(aggregate).await?;
    let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream).await?;
    let Some(row) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(Error::Unsupported(
            "SUMMARIZE: the aggregate gave no row".into(),
        ));
    };
    let int = |k: usize| -> Option<i64> {
        let column = cast_i64(row.column(k)).ok()?;
        let values = column.as_primitive::<Int64Type>();
        values.is_valid(0).then(|| values.value(0))
    };
    let text = |k: usize| -> Option<String> {
        let column = arrow::compute::cast(row.column(k), &DataType::Utf8).ok()?;
        let values = column.as_string::<i32>();
        values.is_valid(0).then(|| values.value(0).to_string())
    };
    let rows = int(0).unwrap_or(0);
    let mut names = vec![];
    let mut types = vec![];
    let mut mins = vec![];
    let mut maxes = vec![];
    let mut distincts = vec![];
    let mut avgs = vec![];
    let mut stds = vec![];
    let mut counts = vec![];
    let mut nulls = vec![];
    for (i, (name, data_type)) in fields.iter().enumerate() {
        let at = 1 + i * FIGURES;
        names.push(name.clone());
        types.push(sql_type_name(data_type));
        mins.push(text(at));
        maxes.push(text(at + 1));
        distincts.push(int(at + 2));
        avgs.push(text(at + 3));
        stds.push(text(at + 4));
        counts.push(rows);
        let present = int(at + 5).unwrap_or(0);
        // Hundredths of a percent, rounded half away from zero.
        nulls.push((rows > 0).then(|| {
            let missing = i128::from(rows - present);
            (missing * 20_000 / i128::from(rows) + 1) / 2
        }));
    }
    let null_percentage = Decimal128Array::from(nulls)
        .with_precision_and_scale(9, 2)
        .map_err(|e| Error::Unsupported(format!("SUMMARIZE: {e}")))?;
    Ok(table_output(vec![
        (
            "column_name",
            Arc::new(StringArray::from(names)) as ArrayRef,
        ),
        ("column_type", Arc::new(StringArray::from(types))),
        ("min", Arc::new(StringArray::from(mins))),
        ("max", Arc::new(StringArray::from(maxes))),
        ("approx_unique", Arc::new(Int64Array::from(distincts))),
        ("avg", Arc::new(StringArray::from(avgs))),
        ("std", Arc::new(StringArray::from(stds))),
        ("count", Arc::new(Int64Array::from(counts))),
        ("null_percentage", Arc::new(null_percentage)),
    ]))
}

fn is_binary(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

fn cast_i64(array: &ArrayRef) -> std::result::Result<ArrayRef, arrow::error::ArrowError> {
    arrow::compute::cast(array, &DataType::Int64)
}
