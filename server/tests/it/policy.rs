//! The server's policy, enforced by the engine where statements run: a read-only server
//! refuses every write through every RPC a Flight SQL client has, even through a ticket the
//! client made up, and any server refuses locations outside the warehouse that the operator
//! did not allow with `--allow-path`.

use arrow_flight::Ticket;
use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use prost::Message;
use strata_engine::{PathPolicy, Policy};
use tonic::Code;

use crate::{TestServer, code, fetch, message, pretty, query};

/// Every kind of write. `{out}` is a folder outside the warehouse.
const WRITES: &[&str] = &[
    "INSERT INTO curated.t VALUES (99)",
    "INSERT OVERWRITE TABLE curated.t SELECT 1",
    "UPDATE curated.t SET id = 0",
    "DELETE FROM curated.t",
    "MERGE INTO curated.t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "COPY (SELECT 1 AS a) TO '{out}/copy.csv'",
    "CREATE TABLE curated.u AS SELECT 1 AS id",
    "CREATE EXTERNAL TABLE raw.x STORED AS CSV LOCATION '{out}'",
    "CREATE VIEW curated.v AS SELECT 1 AS a",
    "DROP TABLE curated.t",
    "CREATE MATERIALIZED VIEW curated.mv AS SELECT 1 AS n",
    "REFRESH ZONE raw",
    "OPTIMIZE curated.t",
    "VACUUM curated.t RETAIN 0 HOURS FORCE",
    "RESTORE TABLE curated.t TO VERSION AS OF 0",
    "RELEASE HOLD curated.t",
    "EXPLAIN ANALYZE INSERT INTO curated.t VALUES (5)",
];

/// The rows, versions and tables a read-only server must leave as they were.
async fn state(server: &TestServer) -> String {
    let rows = server
        .session
        .sql("SELECT count(*) AS n, sum(id) AS s FROM curated.t")
        .await
        .expect("rows");
    let history = server
        .session
        .sql("DESCRIBE HISTORY curated.t")
        .await
        .expect("history");
    let versions: usize = history.iter().map(|b| b.num_rows()).sum();
    let snapshot = server.session.catalog().snapshot();
    let tables: Vec<String> = ["raw", "processed", "curated"]
        .iter()
        .flat_map(|z| snapshot.table_names(z))
        .collect();
    format!("{}\n{versions} versions\n{tables:?}", pretty(&rows))
}

/// A ticket as a client could make one up: strata's ticket layout, holding a statement.
#[derive(Clone, PartialEq, prost::Message)]
struct MadeUpTicket {
    #[prost(string, tag = "1")]
    magic: String,
    #[prost(string, tag = "2")]
    id: String,
    #[prost(string, repeated, tag = "3")]
    queries: Vec<String>,
}

fn made_up_ticket(sql: &str) -> Ticket {
    let handle = MadeUpTicket {
        magic: "strata/1".into(),
        id: "made-up".into(),
        queries: vec![sql.to_string()],
    }
    .encode_to_vec();
    let any: Any = TicketStatementQuery {
        statement_handle: handle.into(),
    }
    .as_any();
    Ticket {
        ticket: any.encode_to_vec().into(),
    }
}

#[tokio::test]
async fn a_read_only_server_refuses_every_write_through_every_rpc() {
    let server = TestServer::start_with(
        strata_server::Options {
            read_only: true,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    // The table is made by the operator, outside the server's policy.
    let policy = server.session.policy();
    server.session.set_policy(Policy::default());
    server
        .session
        .sql("CREATE TABLE curated.t AS SELECT value AS id FROM generate_series(1, 10)")
        .await
        .expect("table");
    server.session.set_policy((*policy).clone());
    let out = tempfile::tempdir().expect("tempdir");
    let out_path = out.path().to_string_lossy().to_string();
    let before = state(&server).await;
    let mut client = server.client().await;

    for sql in WRITES {
        let sql = sql.replace("{out}", &out_path);
        // Statement query: GetFlightInfo, then DoGet.
        let err = query(&mut client, &sql).await.expect_err(&sql);
        assert_eq!(code(&err), Code::PermissionDenied, "query {sql}: {err}");
        // Statement update: DoPut.
        let err = client
            .execute_update(sql.clone(), None)
            .await
            .expect_err(&sql);
        assert_eq!(code(&err), Code::PermissionDenied, "update {sql}: {err}");
        // Prepared statement, as a query and as an update.
        match client.prepare(sql.clone(), None).await {
            Err(err) => assert_eq!(code(&err), Code::PermissionDenied, "prepare {sql}: {err}"),
            Ok(mut prepared) => {
                let err = match prepared.execute().await {
                    Ok(info) => fetch(&mut client, &info).await.expect_err(&sql),
                    Err(err) => err,
                };
                assert_eq!(code(&err), Code::PermissionDenied, "prepared {sql}: {err}");
                let err = prepared.execute_update().await.expect_err(&sql);
                assert_eq!(code(&err), Code::PermissionDenied, "prepared {sql}: {err}");
                let _ = prepared.close().await;
            }
        }
        // A ticket the client made up, holding the statement: it does not run.
        let result = match client.do_get(made_up_ticket(&sql)).await {
            Ok(stream) => futures::TryStreamExt::try_collect::<Vec<_>>(stream)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        let err = result.expect_err(&sql);
        assert!(
            matches!(code(&err), Code::PermissionDenied | Code::NotFound),
            "made-up ticket for {sql}: {err}"
        );
    }
    assert_eq!(state(&server).await, before);
    assert!(!out.path().join("copy.csv").exists());
    // Reads still run.
    let (_, batches) = query(&mut client, "SELECT count(*) AS n FROM curated.t")
        .await
        .expect("a query");
    assert!(pretty(&batches).contains("10"));
    server.stop().await;
}

#[tokio::test]
async fn a_server_refuses_locations_outside_the_warehouse_unless_allowed() {
    let outside = tempfile::tempdir().expect("tempdir");
    let files = outside.path().join("files");
    std::fs::create_dir_all(&files).expect("folder");
    std::fs::write(files.join("a.csv"), "a\n1\n").expect("csv");
    let files = files.to_string_lossy().to_string();

    let server = TestServer::start().await;
    let mut client = server.client().await;
    for sql in [
        "CREATE EXTERNAL TABLE raw.passwd STORED AS CSV LOCATION '/etc'".to_string(),
        format!("CREATE EXTERNAL TABLE raw.files STORED AS CSV LOCATION '{files}'"),
        format!(
            "COPY (SELECT 1 AS a) TO '{}/copied.csv'",
            outside.path().to_string_lossy()
        ),
    ] {
        let err = client
            .execute_update(sql.clone(), None)
            .await
            .expect_err(&sql);
        assert_eq!(code(&err), Code::PermissionDenied, "{sql}: {err}");
        assert!(message(&err).contains("--allow-path"), "{}", message(&err));
        let err = query(&mut client, &sql).await.expect_err(&sql);
        assert_eq!(code(&err), Code::PermissionDenied, "{sql}: {err}");
    }
    assert!(!outside.path().join("copied.csv").exists());
    assert!(
        server
            .session
            .catalog()
            .snapshot()
            .table("raw", "passwd")
            .is_err()
    );
    // Inside the warehouse is allowed.
    client
        .execute_update("CREATE TABLE curated.inside AS SELECT 1 AS a".into(), None)
        .await
        .expect("a table in the warehouse");
    server.stop().await;

    let server = TestServer::start_with(
        strata_server::Options {
            allow_paths: vec![outside.path().to_string_lossy().to_string()],
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let mut client = server.client().await;
    client
        .execute_update(
            format!("CREATE EXTERNAL TABLE raw.files STORED AS CSV LOCATION '{files}'"),
            None,
        )
        .await
        .expect("an allowed path");
    let (_, batches) = query(&mut client, "SELECT a FROM raw.files")
        .await
        .expect("read the allowed files");
    assert!(pretty(&batches).contains('1'));
    let err = client
        .execute_update(
            "CREATE EXTERNAL TABLE raw.passwd STORED AS CSV LOCATION '/etc'".into(),
            None,
        )
        .await
        .expect_err("/etc is still outside");
    assert_eq!(code(&err), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn allowed_paths_that_are_not_locations_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = std::sync::Arc::new(
        strata_engine::Session::open(&dir.path().join("wh").to_string_lossy())
            .await
            .expect("session"),
    );
    let options = strata_server::Options {
        allow_paths: vec![String::new()],
        ..Default::default()
    };
    assert!(strata_server::Server::new(session, options).is_err());
    assert!(matches!(
        PathPolicy::restricted(["/data"]),
        Ok(PathPolicy::Restricted(_))
    ));
}
