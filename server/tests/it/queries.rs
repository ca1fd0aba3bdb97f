//! Statement queries and updates: results as in-process, streaming, many clients at once,
//! affected rows, and statements that run once whatever the fetches.

use arrow::array::{Array, Int64Array};
use arrow::datatypes::DataType;
use arrow_flight::sql::CommandStatementUpdate;
use futures::StreamExt;

use crate::{TestServer, code, message, pretty, query};

const STAR_QUERY: &str = "SELECT p.category, st.region, count(*) AS sales, round(sum(s.amount), 2) AS revenue \
     FROM raw.sales s JOIN raw.products p ON s.product_id = p.product_id \
     JOIN raw.stores st ON s.store_id = st.store_id \
     GROUP BY p.category, st.region ORDER BY p.category, st.region";

/// A star-schema query over Flight returns what the same query returns in-process, under
/// the schema its FlightInfo announced.
#[tokio::test]
async fn query_results_match_in_process() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (info, batches) = query(&mut client, STAR_QUERY).await.expect("query");
    let expected = server.session.sql(STAR_QUERY).await.expect("in-process");
    assert_eq!(pretty(&batches), pretty(&expected));
    let announced = info.try_decode_schema().expect("schema");
    assert_eq!(&announced, batches[0].schema().as_ref());
    server.stop().await;
}

/// Batches arrive while the query is still producing them: a query that would never end
/// delivers its first batches, so nothing is collected before it is sent.
#[tokio::test]
async fn results_stream_as_they_are_produced() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let info = client
        .execute(
            "SELECT value FROM generate_series(1, 9000000000000000000)".into(),
            None,
        )
        .await
        .expect("flight info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let mut rows = 0;
    while rows < 100_000 {
        let batch = stream.next().await.expect("more batches").expect("a batch");
        rows += batch.num_rows();
    }
    assert_eq!(server.running.count(), 1);
    drop(stream);
    crate::wait_idle(&server.running).await;
    server.stop().await;
}

/// Sixteen clients querying at once each get their own right answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_at_once() {
    let server = TestServer::start().await;
    let mut tasks = vec![];
    for i in 0..16 {
        let mut client = server.client().await;
        let month = i % 6 + 1;
        let sql = format!(
            "SELECT s.month, p.category, count(*) AS n, sum(s.quantity) AS units \
             FROM raw.sales s JOIN raw.products p ON s.product_id = p.product_id \
             WHERE s.month = {month} AND s.quantity >= {} GROUP BY 1, 2 ORDER BY 1, 2",
            i / 6
        );
        let expected = pretty(&server.session.sql(&sql).await.expect("in-process"));
        tasks.push(tokio::spawn(async move {
            let (_, batches) = query(&mut client, &sql).await.expect("query");
            (pretty(&batches), expected)
        }));
    }
    for task in tasks {
        let (got, expected) = task.await.expect("client task");
        assert_eq!(got, expected);
    }
    server.stop().await;
}

/// DDL and DML sent as updates report the rows they changed: Delta CTAS, UPDATE, DELETE,
/// INSERT and MERGE.
#[tokio::test]
async fn updates_return_affected_rows() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut update = async |sql: &str| {
        client
            .execute_update(sql.to_string(), None)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(
        update("CREATE TABLE curated.dim_product AS SELECT * FROM raw.products").await,
        0
    );
    assert_eq!(
        update("UPDATE curated.dim_product SET unit_price = unit_price * 2 WHERE category = 'tea'")
            .await,
        count(
            &server,
            "SELECT count(*) FROM raw.products WHERE category = 'tea'"
        )
        .await
    );
    assert_eq!(
        update("DELETE FROM curated.dim_product WHERE product_id <= 2").await,
        2
    );
    assert_eq!(
        update("INSERT INTO curated.dim_product SELECT * FROM raw.products WHERE product_id = 1")
            .await,
        1
    );
    // Product 2 comes back; every other product matches and is updated.
    let products = count(&server, "SELECT count(*) FROM raw.products").await;
    assert_eq!(
        update(
            "MERGE INTO curated.dim_product t USING raw.products s ON t.product_id = s.product_id \
             WHEN MATCHED THEN UPDATE SET name = s.name \
             WHEN NOT MATCHED THEN INSERT (product_id, name, category, unit_price) \
             VALUES (s.product_id, s.name, s.category, s.unit_price)"
        )
        .await,
        products
    );
    assert_eq!(
        count(&server, "SELECT count(*) FROM curated.dim_product").await,
        products
    );
    server.stop().await;
}

/// A statement that is not a query, sent the way ADBC sends everything (GetFlightInfo,
/// then DoGet), runs when its ticket is first fetched, and once, however often the ticket
/// is fetched; its result says how many rows it changed.
#[tokio::test]
async fn statements_sent_as_queries_run_once() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    query(
        &mut client,
        "CREATE TABLE curated.t AS SELECT * FROM raw.stores",
    )
    .await
    .expect("create");
    let stores = count(&server, "SELECT count(*) FROM raw.stores").await;
    let info = client
        .execute(
            "INSERT INTO curated.t SELECT * FROM raw.stores WHERE region = 'north'".into(),
            None,
        )
        .await
        .expect("insert");
    assert_eq!(info.total_records, -1);
    // Nothing ran yet.
    assert_eq!(
        count(&server, "SELECT count(*) FROM curated.t").await,
        stores
    );
    let north = count(
        &server,
        "SELECT count(*) FROM raw.stores WHERE region = 'north'",
    )
    .await;
    for _ in 0..2 {
        let batches = crate::fetch(&mut client, &info).await.expect("fetch");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        let changed = arrow::compute::cast(batches[0].column(0), &DataType::Int64).expect("cast");
        let changed = changed
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int64");
        assert_eq!(changed.value(0), north);
    }
    assert_eq!(
        count(&server, "SELECT count(*) FROM curated.t").await,
        stores + north
    );
    // strata's own statements answer the same way.
    let (_, zones) = query(&mut client, "SHOW ZONES").await.expect("show zones");
    assert_eq!(zones[0].num_rows(), 3);
    server.stop().await;
}

/// Settings of the runtime every client shares (memory limit, spill folder) cannot be
/// changed from a session, however the statement is sent.
#[tokio::test]
async fn runtime_settings_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let sql = "SET datafusion.runtime.memory_limit = '1K'";
    let err = query(&mut client, sql).await.expect_err("refused");
    assert_eq!(code(&err), tonic::Code::PermissionDenied);
    assert!(message(&err).contains("server"), "{}", message(&err));
    let update = CommandStatementUpdate {
        query: sql.into(),
        transaction_id: None,
    };
    let err = client
        .execute_update(update.query, None)
        .await
        .expect_err("refused");
    assert_eq!(code(&err), tonic::Code::PermissionDenied);
    server.stop().await;
}

/// The single count a query returns, in-process.
async fn count(server: &TestServer, sql: &str) -> i64 {
    let batches = server.session.sql(sql).await.expect("count");
    let column = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64)
        .expect("cast");
    let values = column.as_any().downcast_ref::<Int64Array>().expect("int64");
    assert_eq!(values.len(), 1);
    values.value(0)
}
