//! The metadata a Flight SQL client browses: the catalog (`strata`), its schemas (the
//! zones), their tables (with Arrow schemas when asked), table types, what the server
//! supports (GetSqlInfo), its SQL types (GetXdbcTypeInfo), and keys, of which strata has
//! none: those answers are empty but have the schemas the protocol gives them.

use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetTables, Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity, SqlSupportedTransaction, SupportedSqlGrammar, XdbcDataType,
    XdbcDatetimeSubcode,
};
use datafusion::datasource::TableType;
use strata_engine::{CATALOG_NAME, Session};
use tonic::Status;

/// The one table type of catalog entries, and that of session views.
pub(crate) const TABLE: &str = "TABLE";
pub(crate) const VIEW: &str = "VIEW";

/// What the server says about itself in GetSqlInfo.
pub(crate) fn sql_info(read_only: bool) -> Result<SqlInfoData, Status> {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "strata");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The Arrow columnar format version (metadata V5).
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5.0");
    b.append(SqlInfo::FlightSqlServerReadOnly, read_only);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, !read_only);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    // Quoted identifiers keep their case, for which the protocol has no value.
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    b.append(SqlInfo::SqlKeywords, KEYWORDS);
    b.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    b.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    b.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
    b.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(
        SqlInfo::SqlSupportedGrammar,
        (1 << SupportedSqlGrammar::SqlMinimumGrammar as i32)
            | (1 << SupportedSqlGrammar::SqlCoreGrammar as i32),
    );
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    b.append(SqlInfo::SqlSchemaTerm, "zone");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlBatchUpdatesSupported, true);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    // Bit masks of the protocol's enums: GROUP BY of columns not selected, and beyond them.
    b.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    // Subqueries in comparisons, EXISTS, IN and quantified comparisons.
    b.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    // UNION and UNION ALL.
    b.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    // No transactions: isolation NONE, and no levels.
    b.append(SqlInfo::SqlDefaultTransactionIsolation, 0i32);
    b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    // Results are read forward only.
    b.append(SqlInfo::SqlSupportedResultSetTypes, 1i32 << 1);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
    // No fixed limits (0: none known).
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        b.append(limit, 0i64);
    }
    b.build()
        .map_err(|e| Status::internal(format!("cannot build the SQL info: {e}")))
}

/// Words strata's SQL reserves beyond SQL-92's (the JDBC `getSQLKeywords` list).
const KEYWORDS: &[&str] = &[
    "DELTA",
    "DESCRIBE",
    "EXPLAIN",
    "EXTERNAL",
    "HISTORY",
    "LOCATION",
    "MERGE",
    "OPTIMIZE",
    "OVERWRITE",
    "PARQUET",
    "PARTITIONED",
    "REFRESH",
    "RESTORE",
    "SHOW",
    "STORED",
    "VACUUM",
    "ZONE",
    "ZONES",
    "ZORDER",
];

/// Numeric functions of strata's SQL (the JDBC `getNumericFunctions` list).
const NUMERIC_FUNCTIONS: &[&str] = &[
    "ABS",
    "ACOS",
    "ACOSH",
    "ASIN",
    "ASINH",
    "ATAN",
    "ATAN2",
    "ATANH",
    "CBRT",
    "CEIL",
    "COS",
    "COSH",
    "COT",
    "DEGREES",
    "EXP",
    "FACTORIAL",
    "FLOOR",
    "GCD",
    "ISNAN",
    "ISZERO",
    "LCM",
    "LN",
    "LOG",
    "LOG10",
    "LOG2",
    "NANVL",
    "PI",
    "POWER",
    "RADIANS",
    "RANDOM",
    "ROUND",
    "SIGNUM",
    "SIN",
    "SINH",
    "SQRT",
    "TAN",
    "TANH",
    "TRUNC",
];

/// String functions of strata's SQL.
const STRING_FUNCTIONS: &[&str] = &[
    "ASCII",
    "BIT_LENGTH",
    "BTRIM",
    "CHARACTER_LENGTH",
    "CHAR_LENGTH",
    "CHR",
    "CONCAT",
    "CONCAT_WS",
    "ENDS_WITH",
    "INITCAP",
    "LEFT",
    "LENGTH",
    "LEVENSHTEIN",
    "LOWER",
    "LPAD",
    "LTRIM",
    "MD5",
    "OCTET_LENGTH",
    "REGEXP_LIKE",
    "REGEXP_MATCH",
    "REGEXP_REPLACE",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "RPAD",
    "RTRIM",
    "SHA256",
    "SPLIT_PART",
    "STARTS_WITH",
    "STRPOS",
    "SUBSTR",
    "TO_HEX",
    "TRANSLATE",
    "UPPER",
];

/// System functions of strata's SQL.
const SYSTEM_FUNCTIONS: &[&str] = &[
    "ARROW_CAST",
    "ARROW_TYPEOF",
    "COALESCE",
    "NULLIF",
    "NVL",
    "NVL2",
];

/// Date and time functions of strata's SQL.
const DATETIME_FUNCTIONS: &[&str] = &[
    "CURRENT_DATE",
    "CURRENT_TIME",
    "DATE_BIN",
    "DATE_PART",
    "DATE_TRUNC",
    "FROM_UNIXTIME",
    "MAKE_DATE",
    "NOW",
    "TO_CHAR",
    "TO_DATE",
    "TO_TIMESTAMP",
    "TO_UNIXTIME",
];

/// The SQL types strata's queries take and give, for GetXdbcTypeInfo.
pub(crate) fn xdbc_types() -> Result<XdbcTypeInfoData, Status> {
    let mut b = XdbcTypeInfoDataBuilder::new();
    let base = |name: &str, data_type: XdbcDataType| XdbcTypeInfo {
        type_name: name.into(),
        data_type,
        column_size: None,
        literal_prefix: None,
        literal_suffix: None,
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: false,
        searchable: Searchable::Full,
        unsigned_attribute: None,
        fixed_prec_scale: false,
        auto_increment: Some(false),
        local_type_name: Some(name.into()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: None,
        interval_precision: None,
    };
    let integer = |name: &str, data_type: XdbcDataType, bits: i32| XdbcTypeInfo {
        column_size: Some(bits),
        unsigned_attribute: Some(false),
        fixed_prec_scale: true,
        num_prec_radix: Some(2),
        minimum_scale: Some(0),
        maximum_scale: Some(0),
        ..base(name, data_type)
    };
    let float = |name: &str, data_type: XdbcDataType, bits: i32| XdbcTypeInfo {
        column_size: Some(bits),
        unsigned_attribute: Some(false),
        num_prec_radix: Some(2),
        ..base(name, data_type)
    };
    let quoted = |name: &str, data_type: XdbcDataType, prefix: &str| XdbcTypeInfo {
        literal_prefix: Some(prefix.into()),
        literal_suffix: Some("'".into()),
        ..base(name, data_type)
    };
    let datetime =
        |name: &str, data_type: XdbcDataType, subcode: XdbcDatetimeSubcode| XdbcTypeInfo {
            sql_data_type: XdbcDataType::XdbcDatetime,
            datetime_subcode: Some(subcode),
            ..quoted(name, data_type, &format!("{name} '"))
        };
    b.append(XdbcTypeInfo {
        column_size: Some(1),
        ..base("BOOLEAN", XdbcDataType::XdbcBit)
    });
    b.append(integer("TINYINT", XdbcDataType::XdbcTinyint, 8));
    b.append(integer("SMALLINT", XdbcDataType::XdbcSmallint, 16));
    b.append(integer("INTEGER", XdbcDataType::XdbcInteger, 32));
    b.append(integer("BIGINT", XdbcDataType::XdbcBigint, 64));
    b.append(float("REAL", XdbcDataType::XdbcFloat, 24));
    b.append(float("DOUBLE", XdbcDataType::XdbcDouble, 53));
    b.append(XdbcTypeInfo {
        column_size: Some(38),
        create_params: Some(vec!["precision".into(), "scale".into()]),
        fixed_prec_scale: true,
        minimum_scale: Some(0),
        maximum_scale: Some(38),
        num_prec_radix: Some(10),
        unsigned_attribute: Some(false),
        ..base("DECIMAL", XdbcDataType::XdbcDecimal)
    });
    b.append(XdbcTypeInfo {
        case_sensitive: true,
        ..quoted("VARCHAR", XdbcDataType::XdbcVarchar, "'")
    });
    b.append(XdbcTypeInfo {
        searchable: Searchable::None,
        ..quoted("VARBINARY", XdbcDataType::XdbcVarbinary, "X'")
    });
    b.append(datetime(
        "DATE",
        XdbcDataType::XdbcDate,
        XdbcDatetimeSubcode::XdbcSubcodeYear,
    ));
    b.append(datetime(
        "TIME",
        XdbcDataType::XdbcTime,
        XdbcDatetimeSubcode::XdbcSubcodeTime,
    ));
    b.append(datetime(
        "TIMESTAMP",
        XdbcDataType::XdbcTimestamp,
        XdbcDatetimeSubcode::XdbcSubcodeTimestamp,
    ));
    b.append(XdbcTypeInfo {
        searchable: Searchable::Basic,
        ..base("INTERVAL", XdbcDataType::XdbcInterval)
    });
    b.build()
        .map_err(|e| Status::internal(format!("cannot build the type info: {e}")))
}

/// The zones, for GetDbSchemas.
pub(crate) fn zones(session: &Session) -> Vec<String> {
    session.catalog().snapshot().zone_names()
}

/// The rows of GetTables: the tables of every zone matching the request's filters, with
/// their Arrow schemas if the request asks for them.
pub(crate) async fn tables(
    session: &Session,
    query: CommandGetTables,
) -> Result<RecordBatch, Status> {
    let catalog_wanted = query.catalog.as_deref().is_none_or(|c| c == CATALOG_NAME);
    let zone_pattern = query.db_schema_filter_pattern.clone();
    let table_pattern = query.table_name_filter_pattern.clone();
    let types = query.table_types.clone();
    let include_schema = query.include_schema;
    let mut builder = query.into_builder();
    let Some(catalog) = session.context().catalog(CATALOG_NAME) else {
        return builder.build().map_err(Status::from);
    };
    if !catalog_wanted {
        return builder.build().map_err(Status::from);
    }
    let snapshot = session.catalog().snapshot();
    for zone in snapshot.zone_names() {
        if !zone_pattern.as_deref().is_none_or(|p| like(p, &zone)) {
            continue;
        }
        let Some(schema_provider) = catalog.schema(&zone) else {
            continue;
        };
        let registered = snapshot.table_names(&zone);
        for name in schema_provider.table_names() {
            if !table_pattern.as_deref().is_none_or(|p| like(p, &name)) {
                continue;
            }
            let registered = registered.contains(&name);
            // Only session views need their provider to tell their type.
            let provider = if include_schema || !registered {
                match schema_provider.table(&name).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!("cannot read {zone}.{name} for GetTables: {e}");
                        None
                    }
                }
            } else {
                None
            };
            let table_type = match &provider {
                Some(p) if p.table_type() == TableType::View => VIEW,
                _ => TABLE,
            };
            if !types.is_empty() && !types.iter().any(|t| t.eq_ignore_ascii_case(table_type)) {
                continue;
            }
            let schema = provider
                .map(|p| p.schema())
                .unwrap_or_else(|| Arc::new(Schema::empty()));
            builder
                .append(CATALOG_NAME, &zone, &name, table_type, &schema)
                .map_err(Status::from)?;
        }
    }
    builder.build().map_err(Status::from)
}

/// Whether `text` matches a SQL LIKE pattern (`%`, `_`, `\` escaping), as the metadata
/// filters are written.
fn like(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // matches[j]: whether the pattern so far matches text[..j].
    let mut matches = vec![false; text.len() + 1];
    matches[0] = true;
    let mut i = 0;
    while i < pattern.len() {
        let (token, literal) = match pattern[i] {
            '\\' if i + 1 < pattern.len() => {
                i += 1;
                (pattern[i], true)
            }
            c => (c, false),
        };
        i += 1;
        let mut next = vec![false; text.len() + 1];
        if token == '%' && !literal {
            let mut any = false;
            for j in 0..=text.len() {
                any |= matches[j];
                next[j] = any;
            }
        } else {
            for j in 1..=text.len() {
                next[j] = matches[j - 1] && ((token == '_' && !literal) || text[j - 1] == token);
            }
        }
        matches = next;
    }
    matches[text.len()]
}

/// The schema of GetPrimaryKeys' answer.
pub(crate) static PRIMARY_KEYS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

/// The schema of GetExportedKeys', GetImportedKeys' and GetCrossReference's answers.
pub(crate) static FOREIGN_KEYS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("%", ""));
        assert!(like("sa%", "sales"));
        assert!(like("s_les", "sales"));
        assert!(!like("s_les", "sles"));
        assert!(like("%les", "sales"));
        assert!(!like("sales", "Sales"));
        assert!(like("fact\\_%", "fact_sales"));
        assert!(!like("fact\\_%", "factxsales"));
    }

    #[test]
    fn listed_functions_exist() {
        let ctx = datafusion::prelude::SessionContext::new();
        let state = ctx.state();
        let functions = state.scalar_functions();
        for name in NUMERIC_FUNCTIONS
            .iter()
            .chain(STRING_FUNCTIONS)
            .chain(SYSTEM_FUNCTIONS)
            .chain(DATETIME_FUNCTIONS)
        {
            let name = name.to_lowercase();
            // By name or by alias.
            let known = functions.contains_key(&name)
                || functions.values().any(|f| f.aliases().contains(&name));
            assert!(known, "{name} is not a function of the engine");
        }
    }

    #[test]
    fn info_builds() {
        assert!(sql_info(true).is_ok());
        assert!(xdbc_types().is_ok());
    }
}
