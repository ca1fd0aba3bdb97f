//! Cancellation: CancelFlightInfo, the older CancelQuery action, and a client that drops
//! its stream all stop the query's work.

use arrow_flight::FlightInfo;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{ActionCancelQueryRequest, ActionCancelQueryResult, Any, ProstMessageExt};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

use crate::{TestServer, code, wait_idle};

const ENDLESS: &str =
    "SELECT value, value * 2 AS twice FROM generate_series(1, 9000000000000000000)";

/// Starts a query that never ends and reads its first batch.
async fn start_endless(
    server: &TestServer,
    client: &mut FlightSqlServiceClient<Channel>,
) -> (FlightInfo, FlightRecordBatchStream) {
    let info = client.execute(ENDLESS.into(), None).await.expect("info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = client.do_get(ticket).await.expect("do_get");
    stream.next().await.expect("a batch").expect("a batch");
    assert_eq!(server.running.count(), 1);
    (info, stream)
}

/// CancelFlightInfo stops a query while it streams: the stream ends with CANCELLED and the
/// query leaves the server.
#[tokio::test]
async fn cancel_flight_info_stops_a_running_query() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (info, mut stream) = start_endless(&server, &mut client).await;

    let request = CancelFlightInfoRequest {
        info: Some(info.clone()),
    };
    let action = Action::new("CancelFlightInfo", request.encode_to_vec());
    let results: Vec<arrow_flight::Result> = client
        .do_action(action)
        .await
        .expect("cancel")
        .try_collect()
        .await
        .expect("cancel result");
    let result = CancelFlightInfoResult::decode(results[0].body.as_ref()).expect("result");
    assert_eq!(result.status, CancelStatus::Cancelled as i32);

    let err = loop {
        match stream.next().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the stream ended without saying it was cancelled"),
        }
    };
    assert_eq!(code(&err), Code::Cancelled);
    wait_idle(&server.running).await;
    server.stop().await;
}

/// A ticket cancelled before it is fetched does not run; the Flight SQL CancelQuery action
/// does the same as CancelFlightInfo.
#[tokio::test]
async fn cancelled_before_fetching_does_not_run() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let info = client.execute(ENDLESS.into(), None).await.expect("info");
    let request = ActionCancelQueryRequest {
        info: info.encode_to_vec().into(),
    };
    let action = Action::new("CancelQuery", request.as_any().encode_to_vec());
    let results: Vec<arrow_flight::Result> = client
        .do_action(action)
        .await
        .expect("cancel")
        .try_collect()
        .await
        .expect("cancel result");
    let result: ActionCancelQueryResult = Any::decode(results[0].body.as_ref())
        .expect("any")
        .unpack()
        .expect("unpack")
        .expect("a result");
    assert_eq!(result.result, CancelStatus::Cancelled as i32);
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let err = match client.do_get(ticket).await {
        Err(e) => e,
        Ok(stream) => stream.try_collect::<Vec<_>>().await.expect_err("cancelled"),
    };
    assert_eq!(code(&err), Code::Cancelled);
    server.stop().await;
}

/// A client that drops its stream mid-query stops the query: it leaves the server, and the
/// DataFusion stream doing its work is dropped with it.
#[tokio::test]
async fn a_dropped_stream_stops_the_query() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (_, stream) = start_endless(&server, &mut client).await;
    drop(stream);
    drop(client);
    wait_idle(&server.running).await;
    // The server carries on.
    let mut client = server.client().await;
    crate::query(&mut client, "SELECT 1")
        .await
        .expect("still serving");
    server.stop().await;
}

/// Shutting the server down cancels what is streaming, so it stops promptly.
#[tokio::test]
async fn shutdown_cancels_running_queries() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (_, mut stream) = start_endless(&server, &mut client).await;
    let running = server.running.clone();
    // The client keeps reading, as a real one would, so the server can finish the stream.
    let drain = tokio::spawn(async move {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                other => return other.map(|r| r.map(|_| ())),
            }
        }
    });
    server.stop().await;
    assert_eq!(running.count(), 0);
    let ended = drain.await.expect("drained");
    assert!(
        ended.is_none() || ended.is_some_and(|r| r.is_err()),
        "the stream ends"
    );
}
