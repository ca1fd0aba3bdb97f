//! Metadata: the catalog, its zones, their tables (with schemas), table types, SQL info,
//! XDBC types, and empty-but-valid keys.

use arrow::array::{Array, BinaryArray, RecordBatch, StringArray};
use arrow::datatypes::Schema;
use arrow_flight::sql::{
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo, SqlInfo,
};

use crate::{TestServer, fetch};

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(column).expect("column");
            let c = c.as_any().downcast_ref::<StringArray>().expect("strings");
            (0..c.len())
                .map(|i| c.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A client browsing the server sees the catalog `strata`, the zones as its schemas, and
/// the tables of each zone with their Arrow schemas.
#[tokio::test]
async fn catalogs_zones_and_tables() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let info = client.get_catalogs().await.expect("catalogs");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(strings(&batches, "catalog_name"), vec!["strata"]);

    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("strata".into()),
            db_schema_filter_pattern: None,
        })
        .await
        .expect("schemas");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(
        strings(&batches, "db_schema_name"),
        vec!["curated", "processed", "raw"]
    );

    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("raw".into()),
            table_name_filter_pattern: Some("%s".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .expect("tables");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(
        strings(&batches, "table_name"),
        vec!["products", "sales", "stores"]
    );
    assert_eq!(strings(&batches, "table_type"), vec!["TABLE"; 3]);
    let schemas = batches[0]
        .column_by_name("table_schema")
        .expect("table_schema");
    let schemas = schemas
        .as_any()
        .downcast_ref::<BinaryArray>()
        .expect("bytes");
    let sales = schema_of(schemas.value(1));
    assert!(sales.field_with_name("amount").is_ok(), "{sales:?}");
    assert!(sales.field_with_name("month").is_ok(), "{sales:?}");

    // Without schemas, and filtered by type.
    let info = client
        .get_tables(CommandGetTables {
            catalog: Some("strata".into()),
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec!["VIEW".into()],
            include_schema: false,
        })
        .await
        .expect("tables");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);

    let info = client.get_table_types().await.expect("table types");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(strings(&batches, "table_type"), vec!["TABLE", "VIEW"]);
    server.stop().await;
}

fn schema_of(ipc: &[u8]) -> Schema {
    Schema::try_from(arrow_flight::IpcMessage(ipc.to_vec().into())).expect("an IPC schema")
}

/// GetSqlInfo names the server; GetXdbcTypeInfo lists its types.
#[tokio::test]
async fn sql_info_and_types() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
        ])
        .await
        .expect("sql info");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(batches[0].num_rows(), 2);
    let text = crate::pretty(&batches);
    assert!(text.contains("strata"), "{text}");

    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("xdbc");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    let names = strings(&batches, "type_name");
    for t in [
        "BIGINT",
        "VARCHAR",
        "DOUBLE",
        "TIMESTAMP",
        "DECIMAL",
        "BOOLEAN",
    ] {
        assert!(names.iter().any(|n| n == t), "{t} in {names:?}");
    }
    server.stop().await;
}

/// strata tables have no keys: the key commands answer with no rows, under the schemas
/// the protocol gives them.
#[tokio::test]
async fn keys_are_empty_with_their_schemas() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let table = |t: &str| {
        (
            Some("strata".to_string()),
            Some("raw".to_string()),
            t.to_string(),
        )
    };
    let (catalog, db_schema, name) = table("sales");
    let infos = [
        client
            .get_primary_keys(CommandGetPrimaryKeys {
                catalog: catalog.clone(),
                db_schema: db_schema.clone(),
                table: name.clone(),
            })
            .await
            .expect("primary keys"),
        client
            .get_exported_keys(CommandGetExportedKeys {
                catalog: catalog.clone(),
                db_schema: db_schema.clone(),
                table: name.clone(),
            })
            .await
            .expect("exported keys"),
        client
            .get_imported_keys(CommandGetImportedKeys {
                catalog: catalog.clone(),
                db_schema: db_schema.clone(),
                table: name.clone(),
            })
            .await
            .expect("imported keys"),
        client
            .get_cross_reference(CommandGetCrossReference {
                pk_catalog: catalog.clone(),
                pk_db_schema: db_schema.clone(),
                pk_table: "products".into(),
                fk_catalog: catalog,
                fk_db_schema: db_schema,
                fk_table: name,
            })
            .await
            .expect("cross reference"),
    ];
    for (i, info) in infos.iter().enumerate() {
        let announced = info.clone().try_decode_schema().expect("schema");
        let first = if i == 0 {
            "catalog_name"
        } else {
            "pk_catalog_name"
        };
        assert_eq!(announced.field(0).name(), first);
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream)
            .await
            .expect("batches");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }
    server.stop().await;
}

/// What an IDE's navigator asks: zones and tables by LIKE patterns, a catalog that is not
/// strata's, one XDBC type by its code, and SQL info beyond the server's name.
#[tokio::test]
async fn patterns_filters_and_info_an_ide_uses() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let schemas = |pattern: &str| CommandGetDbSchemas {
        catalog: None,
        db_schema_filter_pattern: Some(pattern.into()),
    };
    for (pattern, expected) in [
        ("r%", vec!["raw"]),
        ("%e%", vec!["curated", "processed"]),
        ("_aw", vec!["raw"]),
        ("nope%", vec![]),
    ] {
        let info = client
            .get_db_schemas(schemas(pattern))
            .await
            .expect("schemas");
        let batches = fetch(&mut client, &info).await.expect("fetch");
        assert_eq!(strings(&batches, "db_schema_name"), expected, "{pattern}");
    }

    let tables = |catalog: Option<&str>, zone: &str, table: &str| CommandGetTables {
        catalog: catalog.map(str::to_string),
        db_schema_filter_pattern: Some(zone.into()),
        table_name_filter_pattern: Some(table.into()),
        table_types: vec![],
        include_schema: true,
    };
    let info = client
        .get_tables(tables(Some("strata"), "ra_", "s_les"))
        .await
        .expect("tables");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(strings(&batches, "table_name"), vec!["sales"]);
    let schemas = batches[0]
        .column_by_name("table_schema")
        .expect("table_schema");
    let schemas = schemas
        .as_any()
        .downcast_ref::<BinaryArray>()
        .expect("bytes");
    let sales = schema_of(schemas.value(0));
    let (_, rows) = crate::query(&mut client, "SELECT * FROM raw.sales LIMIT 1")
        .await
        .expect("query");
    assert_eq!(
        sales.fields(),
        rows[0].schema().fields(),
        "GetTables gives the rows' schema"
    );
    for catalog in ["other", ""] {
        let info = client
            .get_tables(tables(Some(catalog), "%", "%"))
            .await
            .expect("tables");
        let batches = fetch(&mut client, &info).await.expect("fetch");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }

    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo {
            data_type: Some(arrow_flight::sql::XdbcDataType::XdbcBigint as i32),
        })
        .await
        .expect("xdbc");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(strings(&batches, "type_name"), vec!["BIGINT"]);

    let ids = [
        SqlInfo::FlightSqlServerName,
        SqlInfo::FlightSqlServerVersion,
        SqlInfo::FlightSqlServerReadOnly,
        SqlInfo::SqlIdentifierQuoteChar,
        SqlInfo::SqlKeywords,
        SqlInfo::SqlNumericFunctions,
        SqlInfo::SqlStringFunctions,
        SqlInfo::SqlSystemFunctions,
        SqlInfo::SqlDatetimeFunctions,
        SqlInfo::SqlTransactionsSupported,
        SqlInfo::FlightSqlServerTransaction,
        SqlInfo::SqlSupportedUnions,
        SqlInfo::SqlMaxStatements,
    ];
    let info = client.get_sql_info(ids.to_vec()).await.expect("sql info");
    let batches = fetch(&mut client, &info).await.expect("fetch");
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        ids.len(),
        "every id answered"
    );
    let text = crate::pretty(&batches);
    for word in ["strata", "ABS", "UPPER", "COALESCE", "DATE_TRUNC", "VACUUM"] {
        assert!(text.contains(word), "{word} in {text}");
    }
    server.stop().await;
}
