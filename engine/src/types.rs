//! Column types under their SQL names, as DuckDB spells them: `VARCHAR`, `BIGINT`, `DATE`,
//! `DECIMAL(15,2)`, `INTEGER[]`, `STRUCT(a INTEGER, b VARCHAR)`. DESCRIBE, SUMMARIZE and the
//! CLI's `\d` show these rather than Arrow's names (`Utf8View`, `Date32`), which say how a
//! column is held in memory, not what it is.

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::Result;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col, lit};

/// The SQL name of an Arrow type.
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Timestamp(unit, None) => match unit {
            TimeUnit::Second => "TIMESTAMP_S",
            TimeUnit::Millisecond => "TIMESTAMP_MS",
            TimeUnit::Microsecond => "TIMESTAMP",
            TimeUnit::Nanosecond => "TIMESTAMP_NS",
        }
        .into(),
        DataType::Duration(_) | DataType::Interval(_) => "INTERVAL".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => {
            format!("{}[]", sql_type_name(f.data_type()))
        }
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", sql_type_name(f.data_type())),
        DataType::Struct(fields) => format!(
            "STRUCT({})",
            fields
                .iter()
                .map(|f| named(f))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Union(fields, _) => format!(
            "UNION({})",
            fields
                .iter()
                .map(|(_, f)| named(f))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                sql_type_name(kv[0].data_type()),
                sql_type_name(kv[1].data_type())
            ),
            other => format!("MAP({})", sql_type_name(other)),
        },
        DataType::Dictionary(_, value) => sql_type_name(value),
        DataType::RunEndEncoded(_, values) => sql_type_name(values.data_type()),
    }
}

/// The SQL name of a type the catalog records under its Arrow name (partition columns);
/// a name that does not parse is shown as it is.
pub fn sql_type_name_of(arrow_name: &str) -> String {
    arrow_name
        .parse::<DataType>()
        .map(|t| sql_type_name(&t))
        .unwrap_or_else(|_| arrow_name.to_string())
}

/// DESCRIBE's plan with SQL type names in its `data_type` column: DataFusion's shows Arrow's.
/// The same three columns (`column_name`, `data_type`, `is_nullable`), so the answer has
/// the shape it had, through every front end.
pub(crate) fn describe_with_sql_types(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::DescribeTable(describe) = &plan else {
        return Ok(plan);
    };
    let rows: Vec<Vec<_>> = describe
        .schema
        .fields()
        .iter()
        .map(|f| {
            vec![
                lit(f.name().as_str()),
                lit(sql_type_name(f.data_type())),
                lit(if f.is_nullable() { "YES" } else { "NO" }),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok(plan);
    }
    LogicalPlanBuilder::values(rows)?
        .project(vec![
            col("column1").alias("column_name"),
            col("column2").alias("data_type"),
            col("column3").alias("is_nullable"),
        ])?
        .build()
}

/// `name TYPE`, the name quoted when it is not a plain lower-case identifier.
fn named(field: &Field) -> String {
    let name = field.name();
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let name = if plain {
        name.clone()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    };
    format!("{name} {}", sql_type_name(field.data_type()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn names_as_duckdb_spells_them() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let record = DataType::Struct(
            vec![
                Field::new("a", DataType::Int64, true),
                Field::new("Big Name", DataType::Utf8View, true),
            ]
            .into(),
        );
        let cases = [
            (DataType::Utf8View, "VARCHAR"),
            (DataType::LargeUtf8, "VARCHAR"),
            (DataType::Int64, "BIGINT"),
            (DataType::Int32, "INTEGER"),
            (DataType::Date32, "DATE"),
            (DataType::Float64, "DOUBLE"),
            (DataType::Boolean, "BOOLEAN"),
            (DataType::Decimal128(15, 2), "DECIMAL(15,2)"),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                "TIMESTAMP",
            ),
            (
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                "TIMESTAMP WITH TIME ZONE",
            ),
            (list, "INTEGER[]"),
            (record, "STRUCT(a BIGINT, \"Big Name\" VARCHAR)"),
        ];
        for (t, want) in cases {
            assert_eq!(sql_type_name(&t), want, "{t}");
        }
        assert_eq!(sql_type_name_of("Int64"), "BIGINT");
        assert_eq!(sql_type_name_of("no such type"), "no such type");
    }
}
