//! Authentication, read-only servers, and TLS.

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetTables, SqlInfo};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::{TestServer, code, query};

fn options(token: Option<&str>, read_only: bool) -> strata_server::Options {
    strata_server::Options {
        auth_token: token.map(str::to_string),
        read_only,
        ..Default::default()
    }
}

/// With a token, calls without `authorization: Bearer <token>` are UNAUTHENTICATED; a
/// handshake with the token as password (any user) hands out a session token that
/// authorizes later calls.
#[tokio::test]
async fn a_configured_token_is_required() {
    let server = TestServer::start_with(options(Some("s3cret"), false), Default::default()).await;
    let mut client = server.client().await;
    let err = query(&mut client, "SELECT 1").await.expect_err("no token");
    assert_eq!(code(&err), Code::Unauthenticated);
    let err = client.get_catalogs().await.expect_err("no token");
    assert_eq!(code(&err), Code::Unauthenticated);
    let err = client
        .get_tables(CommandGetTables::default())
        .await
        .expect_err("no token");
    assert_eq!(code(&err), Code::Unauthenticated);

    let err = client
        .handshake("alice", "wrong")
        .await
        .expect_err("wrong password");
    assert!(err.to_string().contains("Unauthenticated") || err.to_string().contains("wrong"));

    client.set_token("wrong".into());
    let err = query(&mut client, "SELECT 1")
        .await
        .expect_err("wrong token");
    assert_eq!(code(&err), Code::Unauthenticated);

    client.clear_token();
    client
        .handshake("alice", "s3cret")
        .await
        .expect("handshake");
    // The handshake hands out a session token of its own, not the server's token.
    let session_token = client.token().cloned().expect("a session token");
    assert_ne!(session_token, "s3cret");
    assert_eq!(session_token.len(), 32);
    query(&mut client, "SELECT 1").await.expect("authenticated");
    // A client may also send the configured token without a handshake.
    let mut direct = server.client().await;
    direct.set_token("s3cret".into());
    let info = direct
        .get_sql_info(vec![SqlInfo::FlightSqlServerName])
        .await
        .expect("sql info");
    crate::fetch(&mut direct, &info).await.expect("fetch");
    server.stop().await;
}

/// Without a token, a handshake with any credentials succeeds and its token works.
#[tokio::test]
async fn handshake_without_a_configured_token() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let token = client
        .handshake("bob", "anything")
        .await
        .expect("handshake");
    assert!(!token.is_empty());
    query(&mut client, "SELECT 1").await.expect("query");
    server.stop().await;
}

/// A read-only server runs queries and refuses the rest with PERMISSION_DENIED, however
/// they are sent.
#[tokio::test]
async fn read_only_refuses_all_but_queries() {
    let server = TestServer::start_with(options(None, true), Default::default()).await;
    let mut client = server.client().await;
    query(&mut client, "SELECT count(*) FROM raw.sales")
        .await
        .expect("a query");
    query(&mut client, "SHOW ZONES").await.expect("a read");
    for sql in [
        "CREATE TABLE curated.t AS SELECT 1 AS a",
        "DROP TABLE raw.sales",
        "REFRESH ZONE raw",
        "EXPLAIN ANALYZE INSERT INTO curated.t VALUES (1)",
    ] {
        let err = client
            .execute_update(sql.into(), None)
            .await
            .expect_err("refused update");
        assert_eq!(code(&err), Code::PermissionDenied, "{sql}");
        let err = query(&mut client, sql)
            .await
            .expect_err("refused query path");
        assert_eq!(code(&err), Code::PermissionDenied, "{sql}");
        let err = client
            .prepare(sql.into(), None)
            .await
            .expect_err("refused prepare");
        assert_eq!(code(&err), Code::PermissionDenied, "{sql}");
    }
    let tables = server.session.catalog().snapshot().table_names("raw");
    assert_eq!(tables.len(), 3);
    server.stop().await;
}

/// With a certificate and key the server speaks TLS.
#[tokio::test]
async fn serves_tls() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data");
    let tls = strata_server::Tls::from_files(&data.join("server.pem"), &data.join("server.key"))
        .expect("certificate");
    let server = TestServer::start_with(
        strata_server::Options {
            tls: Some(tls),
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let ca = std::fs::read(data.join("ca.pem")).expect("ca");
    let channel = Endpoint::from_shared(format!("https://{}", server.addr))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost"),
        )
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS");
    let mut client = FlightSqlServiceClient::new(channel);
    let (_, batches) = query(&mut client, "SELECT 41 + 1 AS answer")
        .await
        .expect("query over TLS");
    assert!(crate::pretty(&batches).contains("42"));
    // A plain-text client gets nowhere.
    let plain = Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .connect()
        .await;
    if let Ok(channel) = plain {
        let mut plain = FlightSqlServiceClient::new(channel);
        assert!(query(&mut plain, "SELECT 1").await.is_err());
    }
    server.stop().await;
}
