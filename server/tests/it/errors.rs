//! Errors: their gRPC codes and messages, and a server that keeps serving after them.

use arrow_flight::Ticket;
use arrow_flight::sql::{CommandPreparedStatementQuery, ProstMessageExt, TicketStatementQuery};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;

use crate::{TestServer, code, message, query};

/// SQL errors are INVALID_ARGUMENT with strata's message, which names a missing table; the
/// server keeps answering.
#[tokio::test]
async fn sql_errors_are_invalid_argument_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = query(&mut client, "SELECT * FROM raw.nope")
        .await
        .expect_err("missing table");
    assert_eq!(code(&err), Code::InvalidArgument);
    assert!(message(&err).contains("raw.nope"), "{}", message(&err));
    assert!(
        message(&err).contains("sales"),
        "lists the zone's tables: {}",
        message(&err)
    );

    let err = query(&mut client, "SELEC 1").await.expect_err("syntax");
    assert_eq!(code(&err), Code::InvalidArgument);
    assert!(message(&err).contains("syntax"), "{}", message(&err));

    let err = client
        .execute_update("DROP TABLE raw.nope".into(), None)
        .await
        .expect_err("missing table");
    assert_eq!(code(&err), Code::InvalidArgument);

    let err = query(&mut client, "SELECT no_such_column FROM raw.sales")
        .await
        .expect_err("missing column");
    assert_eq!(code(&err), Code::InvalidArgument);
    assert!(
        message(&err).contains("no_such_column"),
        "{}",
        message(&err)
    );

    let (_, batches) = query(&mut client, "SELECT count(*) AS n FROM raw.sales")
        .await
        .expect("still serving");
    assert_eq!(crate::pretty(&batches).matches("120").count(), 1);
    server.stop().await;
}

/// A query needing more memory than the server's limit fails with RESOURCE_EXHAUSTED, and
/// the next query runs.
#[tokio::test]
async fn over_the_memory_limit_is_resource_exhausted() {
    let config = strata_catalog::Config {
        memory_limit: Some("1MiB".into()),
        ..Default::default()
    };
    let server = TestServer::start_with(strata_server::Options::default(), config).await;
    let mut client = server.client().await;
    let err = query(
        &mut client,
        "SELECT count(*) FROM generate_series(1, 2000000) a JOIN generate_series(1, 2000000) b ON a.value = b.value",
    )
    .await
    .expect_err("over the limit");
    assert_eq!(code(&err), Code::ResourceExhausted, "{err}");
    let (_, batches) = query(&mut client, "SELECT count(*) FROM raw.sales")
        .await
        .expect("still serving");
    assert_eq!(batches[0].num_rows(), 1);
    server.stop().await;
}

/// Tickets and prepared statement handles this server does not know are NOT_FOUND.
#[tokio::test]
async fn unknown_tickets_and_handles_are_not_found() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let garbage = TicketStatementQuery {
        statement_handle: b"no such statement".to_vec().into(),
    };
    let err = do_get(&mut client, Ticket::new(garbage.as_any().encode_to_vec()))
        .await
        .expect_err("unknown ticket");
    assert_eq!(code(&err), Code::NotFound);

    let unknown = CommandPreparedStatementQuery {
        prepared_statement_handle: b"strata-prepared-gone".to_vec().into(),
    };
    let err = do_get(&mut client, Ticket::new(unknown.as_any().encode_to_vec()))
        .await
        .expect_err("unknown handle");
    assert_eq!(code(&err), Code::NotFound);

    let mut prepared = client
        .prepare("SELECT 1 AS one".into(), None)
        .await
        .expect("prepare");
    let info = prepared.execute().await.expect("execute");
    assert_eq!(
        crate::fetch(&mut client, &info).await.expect("fetch").len(),
        1
    );
    prepared.clone().close().await.expect("close");
    let err = prepared.execute().await.expect_err("closed");
    assert_eq!(code(&err), Code::NotFound);
    server.stop().await;
}

async fn do_get(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    ticket: Ticket,
) -> Result<Vec<arrow::array::RecordBatch>, arrow_flight::error::FlightError> {
    client.do_get(ticket).await?.try_collect().await
}

/// Statements nested too deeply to plan (20,000 terms of `+`, `OR` or `||`, 2,000 nested
/// parentheses) are INVALID_ARGUMENT naming the limit, never a crash of the server, which
/// answers chains below the limit and keeps serving. The server runs on worker threads with
/// the stacks `strata serve` gives them (DataFusion formats and walks expressions
/// recursively: a chain of a few hundred terms needs more than the default 2 MiB in a debug
/// build).
#[test]
fn deep_expressions_are_refused_and_the_server_keeps_serving() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(64 * 1024 * 1024)
        .build()
        .expect("runtime")
        .block_on(async {
            // The server and its handlers run on the runtime's workers.
            tokio::spawn(deep_expressions())
                .await
                .expect("the test task");
        });
}

async fn deep_expressions() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let chain = |term: &str, op: &str, n: usize| vec![term; n].join(op);
    let too_deep = [
        format!("SELECT {} AS x", chain("1", "+", 20_000)),
        format!(
            "SELECT count(*) FROM raw.sales WHERE {}",
            chain("month = 2", " OR ", 20_000)
        ),
        format!("SELECT {} AS x", chain("'a'", " || ", 20_000)),
        format!("SELECT {}1{} AS x", "(".repeat(2_000), ")".repeat(2_000)),
    ];
    for sql in &too_deep {
        let err = query(&mut client, sql).await.expect_err("too deep");
        assert_eq!(code(&err), Code::InvalidArgument, "{}", message(&err));
        let text = message(&err);
        assert!(
            text.contains("1000 levels") || text.contains("nests too deeply"),
            "{text}"
        );
    }
    let (_, batches) = query(
        &mut client,
        &format!("SELECT {} AS x", chain("1", "+", 300)),
    )
    .await
    .expect("below the limit");
    assert_eq!(
        crate::pretty(&batches),
        "+-----+\n| x   |\n+-----+\n| 300 |\n+-----+"
    );
    server.stop().await;
}
