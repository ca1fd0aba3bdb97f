//! Prepared statements with parameters bound through DoPut, for queries and updates.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::{TestServer, fetch, pretty};

fn params(columns: Vec<(&str, Arc<dyn arrow::array::Array>)>) -> RecordBatch {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).expect("params")
}

/// `?` parameters of a query, bound through DoPut, give what the query with those values
/// written in gives; binding again gives the new values' rows.
#[tokio::test]
async fn prepared_query_with_parameters() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut prepared = client
        .prepare(
            "SELECT sale_id, amount, customer['segment'] AS segment FROM raw.sales \
             WHERE month = ? AND store_id = ? AND customer['segment'] <> '?' ORDER BY sale_id"
                .into(),
            None,
        )
        .await
        .expect("prepare");
    let parameters = prepared
        .parameter_schema()
        .expect("parameter schema")
        .clone();
    assert_eq!(parameters.fields().len(), 2);
    // Typed as the columns they are compared with (month is a partition column).
    assert!(
        parameters.field(0).data_type().is_integer(),
        "{parameters:?}"
    );
    let dataset = prepared.dataset_schema().expect("dataset schema").clone();
    assert_eq!(dataset.field(0).name(), "sale_id");

    for (month, store) in [(3i64, 10i64), (5, 12)] {
        prepared
            .set_parameters(params(vec![
                ("month", Arc::new(Int64Array::from(vec![month]))),
                ("store", Arc::new(Int64Array::from(vec![store]))),
            ]))
            .expect("bind");
        let info = prepared.execute().await.expect("execute");
        let batches = fetch(&mut client, &info).await.expect("fetch");
        let expected = server
            .session
            .sql(&format!(
                "SELECT sale_id, amount, customer['segment'] AS segment FROM raw.sales \
                 WHERE month = {month} AND store_id = {store} AND customer['segment'] <> '?' ORDER BY sale_id"
            ))
            .await
            .expect("in-process");
        assert!(expected.iter().map(|b| b.num_rows()).sum::<usize>() > 0);
        assert_eq!(pretty(&batches), pretty(&expected));
        assert_eq!(batches[0].schema().as_ref(), &dataset);
    }
    prepared.close().await.expect("close");
    server.stop().await;
}

/// String parameters are bound as literals, quotes and all: no injection.
#[tokio::test]
async fn string_parameters_are_quoted() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut prepared = client
        .prepare(
            "SELECT count(*) AS n FROM raw.products WHERE category = $1".into(),
            None,
        )
        .await
        .expect("prepare");
    for (value, expected) in [("tea", "tea"), ("tea' OR '1'='1", "nothing")] {
        prepared
            .set_parameters(params(vec![(
                "category",
                Arc::new(StringArray::from(vec![value])),
            )]))
            .expect("bind");
        let info = prepared.execute().await.expect("execute");
        let batches = fetch(&mut client, &info).await.expect("fetch");
        let n = arrow::compute::cast(batches[0].column(0), &DataType::Int64).expect("cast");
        let n = n
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int")
            .value(0);
        if expected == "tea" {
            assert!(n > 0);
        } else {
            assert_eq!(n, 0);
        }
    }
    server.stop().await;
}

/// Prepared updates with parameters change the rows they name and count them; several rows
/// of parameters run the statement once per row.
#[tokio::test]
async fn prepared_updates_with_parameters() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .execute_update(
            "CREATE TABLE curated.prices AS SELECT product_id, unit_price FROM raw.products".into(),
            None,
        )
        .await
        .expect("create");
    let mut update = client
        .prepare(
            "UPDATE curated.prices SET unit_price = ? WHERE product_id = ?".into(),
            None,
        )
        .await
        .expect("prepare update");
    update
        .set_parameters(params(vec![
            ("price", Arc::new(Float64Array::from(vec![1.25, 2.5]))),
            ("id", Arc::new(Int64Array::from(vec![1, 2]))),
        ]))
        .expect("bind");
    assert_eq!(update.execute_update().await.expect("update"), 2);
    let got = server
        .session
        .sql("SELECT product_id, unit_price FROM curated.prices WHERE product_id <= 2 ORDER BY 1")
        .await
        .expect("read back");
    let prices = arrow::compute::cast(got[0].column(1), &DataType::Float64).expect("cast");
    let prices = prices.as_any().downcast_ref::<Float64Array>().expect("f64");
    assert_eq!(prices.values().to_vec(), vec![1.25, 2.5]);

    let mut insert = client
        .prepare("INSERT INTO curated.prices VALUES (?, ?)".into(), None)
        .await
        .expect("prepare insert");
    insert
        .set_parameters(params(vec![
            ("id", Arc::new(Int64Array::from(vec![100, 101, 102]))),
            ("price", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
        ]))
        .expect("bind");
    assert_eq!(insert.execute_update().await.expect("insert"), 3);
    let n = server
        .session
        .sql("SELECT count(*) FROM curated.prices WHERE product_id >= 100")
        .await
        .expect("count");
    assert_eq!(pretty(&n).matches(" 3 ").count(), 1, "{}", pretty(&n));
    server.stop().await;
}
