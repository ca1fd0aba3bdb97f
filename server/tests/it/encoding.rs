//! How results travel: strings, views, dictionaries, nulls and empty results arrive with
//! the values they have in-process, under the schema the FlightInfo announced (views as
//! plain strings and binaries), and a result sends the bytes of its rows rather than
//! every buffer its views point into.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::DataType;
use arrow_flight::flight_service_client::FlightServiceClient;
use futures::TryStreamExt;

use crate::{TestServer, query};

/// Long and short strings as views (some null), binary views, a dictionary and a plain
/// string, sorted so that each batch's views point into buffers shared by the whole result.
const MIXED: &str = "SELECT value, \
     arrow_cast(CASE WHEN value % 7 = 0 THEN NULL \
         ELSE concat('row number ', value, repeat('-', value % 30)) END, 'Utf8View') AS long_or_null, \
     arrow_cast(concat('r', value % 10), 'Utf8View') AS short, \
     arrow_cast(concat('category ', value % 5), 'Dictionary(Int32, Utf8)') AS category, \
     arrow_cast(CASE WHEN value % 3 = 0 THEN NULL ELSE concat('bytes ', value) END, 'BinaryView') AS bytes, \
     concat('plain ', value) AS plain \
     FROM generate_series(1, 200000) ORDER BY long_or_null DESC NULLS LAST, value";

/// Every kind of column arrives as in-process: the same values and nulls, under the
/// announced schema, which has the in-process types but views as plain arrays.
#[tokio::test]
async fn strings_views_dictionaries_and_nulls_arrive_as_in_process() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (info, batches) = query(&mut client, MIXED).await.expect("query");
    let expected = server.session.sql(MIXED).await.expect("in-process");
    let schema = Arc::new(info.try_decode_schema().expect("schema"));
    let plain = |t: &DataType| match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        t => t.clone(),
    };
    for (announced, local) in schema.fields().iter().zip(expected[0].schema().fields()) {
        assert_eq!(announced.name(), local.name());
        assert_eq!(announced.data_type(), &plain(local.data_type()));
        assert_eq!(announced.is_nullable(), local.is_nullable());
    }
    assert!(
        batches.len() > 1,
        "a large result arrives in several batches"
    );
    for batch in &batches {
        assert_eq!(batch.schema(), schema);
    }
    let got = concat_batches(&schema, &batches).expect("concat");
    let expected = concat_batches(&expected[0].schema(), &expected).expect("concat");
    assert_eq!(got.num_rows(), 200_000);
    for (got, expected) in got.columns().iter().zip(expected.columns()) {
        let expected = cast(expected, got.data_type()).expect("cast");
        assert_eq!(got, &expected);
    }
    assert_eq!(
        got.column_by_name("category")
            .expect("category")
            .data_type(),
        &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    );
    assert_eq!(
        got.column_by_name("long_or_null")
            .expect("column")
            .null_count(),
        200_000 / 7
    );
    server.stop().await;
}

/// An empty result is its schema and no rows.
#[tokio::test]
async fn an_empty_result_is_its_schema() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let sql = format!("SELECT * FROM ({MIXED}) WHERE value < 0");
    let (info, batches) = query(&mut client, &sql).await.expect("query");
    let (full, _) = query(&mut client, MIXED).await.expect("query");
    let announced = info.try_decode_schema().expect("schema");
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    assert_eq!(announced, full.try_decode_schema().expect("schema"));
    for batch in &batches {
        assert_eq!(batch.schema().as_ref(), &announced);
    }
    server.stop().await;
}

/// A result whose views point into buffers shared by all its batches sends the bytes of
/// its rows: about what a compact array of them takes, in messages gRPC clients accept.
#[tokio::test]
async fn views_send_only_their_rows_bytes() {
    let server = TestServer::start().await;
    let sql = "SELECT value, arrow_cast(concat('row number ', value, repeat('-', value % 30)), \
               'Utf8View') AS s FROM generate_series(1, 300000) ORDER BY s DESC";
    let expected = server.session.sql(sql).await.expect("in-process");
    let mut compact = 0;
    for batch in &expected {
        let strings = batch.column(1).as_string_view();
        compact += batch.num_rows() * (8 + 4);
        compact += strings.iter().flatten().map(str::len).sum::<usize>();
    }
    // One connection, so one client: a ticket is fetched by the client it was issued to.
    let channel = server.channel().await;
    let mut sql_client = arrow_flight::sql::client::FlightSqlServiceClient::new(channel.clone());
    let info = sql_client.execute(sql.into(), None).await.expect("info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut flight = FlightServiceClient::new(channel);
    let messages: Vec<_> = flight
        .do_get(ticket)
        .await
        .expect("do_get")
        .into_inner()
        .try_collect()
        .await
        .expect("messages");
    let sizes: Vec<usize> = messages
        .iter()
        .map(|m| m.data_body.len() + m.data_header.len())
        .collect();
    let sent: usize = sizes.iter().sum();
    assert!(
        sent < compact + compact / 4,
        "{sent} bytes sent for {compact} bytes of rows"
    );
    let largest = sizes.iter().max().copied().unwrap_or(0);
    assert!(largest <= 8 << 20, "a message of {largest} bytes");
    server.stop().await;
}
