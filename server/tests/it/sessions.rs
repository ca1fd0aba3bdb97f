//! Sessions and tickets: each client has its own session (zone, settings, storage
//! counters), and a ticket is a handle only the client it was issued to can fetch, until it
//! expires; nothing in a ticket is run as SQL.

use std::time::Duration;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, Ticket};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;

use crate::{TestServer, code, fetch, message, query, wait_idle};

/// Fetches a ticket; the error of the call or of its stream.
async fn do_get(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    ticket: Ticket,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    client.do_get(ticket).await?.try_collect().await
}

fn statement_ticket(handle: impl Into<bytes::Bytes>) -> Ticket {
    let statement = TicketStatementQuery {
        statement_handle: handle.into(),
    };
    Ticket::new(statement.as_any().encode_to_vec())
}

/// Tickets the server did not issue are NOT_FOUND, and nothing in them runs: random bytes,
/// a handle that looks like the server's, SQL text (as tickets held before), and commands
/// the server does not know.
#[tokio::test]
async fn forged_tickets_are_not_found() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // A real ticket first, so the client has a session with tickets in it.
    query(&mut client, "SELECT 1").await.expect("a query");
    let random_id = format!("{:032x}", rand::random::<u128>());
    let forged = [
        statement_ticket(vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]),
        statement_ticket(random_id.into_bytes()),
        statement_ticket("CREATE TABLE curated.forged AS SELECT 1 AS a"),
        statement_ticket(Vec::new()),
        Ticket::new(
            arrow_flight::sql::CommandStatementQuery {
                query: "CREATE TABLE curated.forged AS SELECT 1 AS a".into(),
                transaction_id: None,
            }
            .as_any()
            .encode_to_vec(),
        ),
        Ticket::new(
            Any {
                type_url: "type.googleapis.com/strata.Forged".into(),
                value: b"CREATE TABLE curated.forged AS SELECT 1 AS a"
                    .to_vec()
                    .into(),
            }
            .encode_to_vec(),
        ),
    ];
    for ticket in forged {
        let err = do_get(&mut client, ticket).await.expect_err("forged");
        // A handle the server never issued is NOT_FOUND; a command where a ticket belongs is
        // a malformed request. Either way the message points to GetFlightInfo.
        assert!(
            matches!(code(&err), Code::NotFound | Code::InvalidArgument),
            "{:?}: {}",
            code(&err),
            message(&err)
        );
        assert!(message(&err).contains("FlightInfo"), "{}", message(&err));
    }
    let err = server
        .session
        .sql("SELECT * FROM curated.forged")
        .await
        .expect_err("nothing ran");
    assert!(err.to_string().contains("forged"), "{err}");
    assert_eq!(server.running.count(), 0);
    server.stop().await;
}

/// A ticket issued to one client is NOT_FOUND for another (another connection, so another
/// session); its own client can fetch it again and again until it expires.
#[tokio::test]
async fn tickets_belong_to_their_client() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let mut bob = server.client().await;
    let info = alice
        .execute("SELECT count(*) AS n FROM raw.sales".into(), None)
        .await
        .expect("info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let err = do_get(&mut bob, ticket.clone())
        .await
        .expect_err("not bob's");
    assert_eq!(code(&err), Code::NotFound);
    // Bob cannot cancel it either.
    let cancel = CancelFlightInfoRequest::new(info.clone());
    let err = bob
        .do_action(Action::new("CancelFlightInfo", cancel.encode_to_vec()))
        .await
        .expect_err("not bob's");
    assert_eq!(code(&err), Code::NotFound);
    let first = do_get(&mut alice, ticket.clone()).await.expect("alice's");
    let again = do_get(&mut alice, ticket).await.expect("again");
    assert_eq!(first, again);
    assert_eq!(first[0].num_rows(), 1);
    server.stop().await;
}

/// An expired ticket is NOT_FOUND (here tickets expire as soon as they are issued).
#[tokio::test]
async fn expired_tickets_are_not_found() {
    let server = TestServer::start_with(
        strata_server::Options {
            ticket_expiry: Duration::ZERO,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let mut client = server.client().await;
    let info = client
        .execute("CREATE TABLE curated.late AS SELECT 1 AS a".into(), None)
        .await
        .expect("info");
    let err = fetch(&mut client, &info).await.expect_err("expired");
    assert_eq!(code(&err), Code::NotFound);
    assert!(message(&err).contains("expired"), "{}", message(&err));
    assert!(
        server
            .session
            .sql("SELECT * FROM curated.late")
            .await
            .is_err()
    );
    server.stop().await;
}

/// The one string value of a result.
fn text(batches: &[RecordBatch]) -> String {
    let column = arrow::compute::cast(
        batches[0].column(batches[0].num_columns() - 1),
        &arrow::datatypes::DataType::Utf8,
    )
    .expect("cast");
    let column = column.as_any().downcast_ref::<StringArray>().expect("text");
    column.value(0).to_string()
}

/// USE and SET change the session of the client that sends them, not the others'.
#[tokio::test]
async fn use_and_set_are_per_client() {
    let server = TestServer::start().await;
    let mut alice = server.client().await;
    let mut bob = server.client().await;
    query(&mut alice, "USE raw").await.expect("use raw");
    bob.execute_update("USE processed".into(), None)
        .await
        .expect("use processed");
    query(&mut bob, "CREATE TABLE stores AS SELECT 1 AS only_bobs")
        .await
        .expect("processed.stores");
    let (_, rows) = query(&mut alice, "SELECT count(*) FROM stores")
        .await
        .expect("raw.stores");
    let (_, bobs) = query(&mut bob, "SELECT * FROM stores")
        .await
        .expect("processed.stores");
    assert_eq!(bobs[0].schema().field(0).name(), "only_bobs");
    assert_eq!(rows[0].num_rows(), 1);

    query(&mut alice, "SET datafusion.execution.batch_size = 77")
        .await
        .expect("set");
    let show = "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'";
    let (_, a) = query(&mut alice, show).await.expect("alice's");
    let (_, b) = query(&mut bob, show).await.expect("bob's");
    assert_eq!(text(&a), "77");
    assert_eq!(text(&b), "8192");
    query(&mut alice, "RESET datafusion.execution.batch_size")
        .await
        .expect("reset");
    let (_, a) = query(&mut alice, show).await.expect("alice's");
    assert_eq!(text(&a), "8192");
    // The server's own session is untouched.
    assert_eq!(server.session.current_zone(), strata_catalog::DEFAULT_ZONE);
    server.stop().await;
}

/// Sixteen clients each read their own table at once: the storage counters of each
/// (EXPLAIN ANALYZE's last row) count its own files only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storage_counters_are_per_client() {
    let server = TestServer::start().await;
    const CLIENTS: usize = 16;
    for i in 0..CLIENTS {
        server
            .session
            .sql(&format!(
                "CREATE TABLE curated.t{i} STORED AS PARQUET PARTITIONED BY (p) AS \
                 SELECT value AS v, value % {} AS p FROM generate_series(1, 200)",
                i + 1
            ))
            .await
            .expect("create");
    }
    // The files each table's scan opens, read alone in a session of its own.
    let mut files = vec![];
    for i in 0..CLIENTS {
        let alone = server.session.fork().expect("fork");
        alone
            .sql(&format!("SELECT * FROM curated.t{i}"))
            .await
            .expect("read alone");
        files.push(alone.counters().files_opened().len());
    }
    assert!(files.iter().any(|&n| n != files[0]), "{files:?}");
    let mut tasks = vec![];
    for i in 0..CLIENTS {
        let mut client = server.client().await;
        tasks.push(tokio::spawn(async move {
            let sql = format!("EXPLAIN ANALYZE SELECT * FROM curated.t{i}");
            let (_, batches) = query(&mut client, &sql).await.expect("explain analyze");
            (i, batches)
        }));
    }
    for task in tasks {
        let (i, batches) = task.await.expect("task");
        let last = batches.last().expect("rows");
        let storage = text(std::slice::from_ref(&last.slice(last.num_rows() - 1, 1)));
        let files = files[i];
        let expected = format!("; {files} file{}", if files == 1 { "," } else { "s," });
        assert!(storage.contains(&expected), "t{i}: {storage}");
    }
    server.stop().await;
}

/// Forked sessions count what they read apart, and do not change each other's zone.
#[tokio::test]
async fn forks_count_apart() {
    let server = TestServer::start().await;
    let a = server.session.fork().expect("fork");
    let b = server.session.fork().expect("fork");
    a.sql("SELECT count(*) FROM raw.sales").await.expect("a");
    assert!(!a.counters().files_opened().is_empty());
    assert!(b.counters().files_opened().is_empty());
    b.sql("SELECT count(*) FROM raw.stores").await.expect("b");
    assert!(
        a.counters()
            .files_opened()
            .iter()
            .all(|f| f.contains("sales"))
    );
    assert!(
        b.counters()
            .files_opened()
            .iter()
            .all(|f| f.contains("stores"))
    );
    a.use_zone("curated").await.expect("use");
    assert_eq!(a.current_zone(), "curated");
    assert_eq!(b.current_zone(), server.session.current_zone());
    server.stop().await;
}

/// DDL sent as a query runs in DoGet, where CancelFlightInfo stops it: the call ends with
/// CANCELLED, the statement leaves the server, and no table is made.
#[tokio::test]
async fn ddl_can_be_cancelled_while_it_runs() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let info = client
        .execute(
            "CREATE TABLE curated.endless AS SELECT value FROM generate_series(1, 9000000000000000000)"
                .into(),
            None,
        )
        .await
        .expect("info");
    assert_eq!(info.total_records, -1);
    let mut fetching = client.clone();
    let fetch_info = info.clone();
    let running = tokio::spawn(async move { fetch(&mut fetching, &fetch_info).await });
    tokio::time::timeout(Duration::from_secs(30), server.running.at_least(1))
        .await
        .expect("the statement starts");
    let cancel = CancelFlightInfoRequest::new(info.clone());
    let results: Vec<arrow_flight::Result> = client
        .do_action(Action::new("CancelFlightInfo", cancel.encode_to_vec()))
        .await
        .expect("cancel")
        .try_collect()
        .await
        .expect("cancel result");
    let result = CancelFlightInfoResult::decode(results[0].body.as_ref()).expect("result");
    assert_eq!(result.status, CancelStatus::Cancelled as i32);
    let err = running.await.expect("task").expect_err("cancelled");
    assert_eq!(code(&err), Code::Cancelled);
    wait_idle(&server.running).await;
    // A second fetch gets the same outcome; the statement does not run again.
    let err = fetch(&mut client, &info).await.expect_err("cancelled");
    assert_eq!(code(&err), Code::Cancelled);
    assert!(
        server
            .session
            .sql("SELECT * FROM curated.endless")
            .await
            .is_err()
    );
    server.stop().await;
}

/// CloseSession ends the client's session: its tickets are gone with it.
#[tokio::test]
async fn close_session_drops_tickets() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let info = client
        .execute("SELECT 1 AS one".into(), None)
        .await
        .expect("info");
    let results: Vec<arrow_flight::Result> = client
        .do_action(Action::new("CloseSession", Vec::<u8>::new()))
        .await
        .expect("close")
        .try_collect()
        .await
        .expect("close result");
    assert_eq!(results.len(), 1);
    let err = fetch(&mut client, &info).await.expect_err("closed");
    assert_eq!(code(&err), Code::NotFound);
    query(&mut client, "SELECT 1").await.expect("a new session");
    server.stop().await;
}

/// A client that sends back the `strata_session` cookie the server set is the same client
/// on any connection: it can fetch the tickets its session was given.
#[tokio::test]
async fn the_session_cookie_names_the_client() {
    let server = TestServer::start().await;
    let mut raw =
        arrow_flight::flight_service_client::FlightServiceClient::new(server.channel().await);
    let command = arrow_flight::sql::CommandStatementQuery {
        query: "SELECT 5 AS five".into(),
        transaction_id: None,
    };
    let descriptor = arrow_flight::FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
    let response = raw.get_flight_info(descriptor).await.expect("info");
    let cookie = response
        .metadata()
        .get("set-cookie")
        .expect("a cookie")
        .to_str()
        .expect("text")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    assert!(cookie.starts_with("strata_session="), "{cookie}");
    let info = response.into_inner();

    let mut stranger = server.client().await;
    let err = fetch(&mut stranger, &info)
        .await
        .expect_err("not its ticket");
    assert_eq!(code(&err), Code::NotFound);
    let mut same = server.client().await;
    same.set_header("cookie", cookie);
    let batches = fetch(&mut same, &info).await.expect("the same session");
    assert_eq!(batches[0].num_rows(), 1);
    server.stop().await;
}

/// A session unused for longer than the idle time ends, with its tickets (here the idle
/// time is zero, so every call finds its session gone).
#[tokio::test]
async fn idle_sessions_end_with_their_tickets() {
    let server = TestServer::start_with(
        strata_server::Options {
            session_idle: Duration::ZERO,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let mut client = server.client().await;
    let info = client
        .execute("SELECT 1 AS one".into(), None)
        .await
        .expect("info");
    let err = fetch(&mut client, &info).await.expect_err("session ended");
    assert_eq!(code(&err), Code::NotFound);
    server.stop().await;
}
