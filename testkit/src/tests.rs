//! Tests against the real server through object_store's S3 client.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, UpdateVersion,
};

use crate::{FaultProxy, Faults, S3Server, closed_endpoint};

const AK: &str = "test-access";
const SK: &str = "test-secret";
const BUCKET: &str = "warehouse";

/// A server on a fresh folder with bucket [`BUCKET`].
fn server() -> (tempfile::TempDir, S3Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = S3Server::start(dir.path(), AK, SK).expect("start server");
    server.create_bucket(BUCKET).expect("create bucket");
    (dir, server)
}

fn fast_retries(max_retries: usize) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            base: 2.0,
        },
        max_retries,
        retry_timeout: Duration::from_secs(60),
    }
}

fn builder(endpoint: &str, secret: &str) -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(BUCKET)
        .with_access_key_id(AK)
        .with_secret_access_key(secret)
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(fast_retries(0))
}

fn store(endpoint: &str) -> AmazonS3 {
    builder(endpoint, SK).build().expect("build store")
}

async fn get_bytes(store: &AmazonS3, path: &Path) -> object_store::Result<Vec<u8>> {
    Ok(store.get(path).await?.bytes().await?.to_vec())
}

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let (_dir, server) = server();
    let store = store(&server.endpoint());

    let a = Path::from("zone/a.json");
    let b = Path::from("zone/sub/b.json");
    store
        .put(&a, PutPayload::from_static(b"hello"))
        .await
        .expect("put a");
    store
        .put(&b, PutPayload::from_static(b"world!"))
        .await
        .expect("put b");

    assert_eq!(get_bytes(&store, &a).await.expect("get a"), b"hello");
    assert_eq!(store.head(&b).await.expect("head b").size, 6);
    let range = store.get_range(&b, 1..4).await.expect("range");
    assert_eq!(&range[..], b"orl");

    let mut listed: Vec<String> = store
        .list(Some(&Path::from("zone")))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(listed, ["zone/a.json", "zone/sub/b.json"]);

    let top = store
        .list_with_delimiter(Some(&Path::from("zone")))
        .await
        .expect("list with delimiter");
    assert_eq!(top.objects.len(), 1);
    assert_eq!(top.common_prefixes, [Path::from("zone/sub")]);

    // Overwrite replaces the content and the ETag.
    let e1 = store.head(&a).await.expect("head").e_tag;
    store
        .put(&a, PutPayload::from_static(b"hello again"))
        .await
        .expect("overwrite");
    assert_eq!(get_bytes(&store, &a).await.expect("get"), b"hello again");
    assert_ne!(store.head(&a).await.expect("head").e_tag, e1);

    // CopyObject, and rename (copy + delete).
    let c = Path::from("zone/c.json");
    store.copy(&a, &c).await.expect("copy");
    assert_eq!(
        get_bytes(&store, &c).await.expect("get copy"),
        b"hello again"
    );
    let d = Path::from("zone/d.json");
    store.rename(&c, &d).await.expect("rename");
    assert!(store.head(&c).await.is_err());
    assert_eq!(
        get_bytes(&store, &d).await.expect("get renamed"),
        b"hello again"
    );

    store.delete(&a).await.expect("delete");
    assert!(matches!(
        store.get(&a).await,
        Err(object_store::Error::NotFound { .. })
    ));
    assert!(server.requests() >= 10, "requests: {}", server.requests());

    // The data lives in the served folder.
    assert!(server.root().join(BUCKET).join("zone/sub/b.json").is_file());
}

#[tokio::test]
async fn multipart_upload() {
    let (_dir, server) = server();
    let store = store(&server.endpoint());
    let path = Path::from("big/part.bin");
    // s3s-fs requires every part but the last to be at least 5 MiB.
    let first: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut upload = store.put_multipart(&path).await.expect("create upload");
    upload.put_part(first.clone().into()).await.expect("part 1");
    upload
        .put_part(PutPayload::from_static(b"tail"))
        .await
        .expect("part 2");
    upload.complete().await.expect("complete");

    let got = get_bytes(&store, &path).await.expect("get");
    assert_eq!(got.len(), first.len() + 4);
    assert!(got.starts_with(&first) && got.ends_with(b"tail"));
}

#[tokio::test]
async fn missing_bucket_is_not_found() {
    let (_dir, server) = server();
    let other = AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_bucket_name("no-such-bucket")
        .with_access_key_id(AK)
        .with_secret_access_key(SK)
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_retry(fast_retries(0))
        .build()
        .expect("build store");
    let path = Path::from("x");
    let put = other.put(&path, PutPayload::from_static(b"x")).await;
    assert!(
        matches!(put, Err(object_store::Error::NotFound { .. })),
        "{put:?}"
    );
    assert!(!server.root().join("no-such-bucket").exists());
    let get = other.get(&path).await;
    assert!(
        matches!(get, Err(object_store::Error::NotFound { .. })),
        "{get:?}"
    );
}

#[tokio::test]
async fn create_if_absent_fails_on_existing_key() {
    let (_dir, server) = server();
    let store = store(&server.endpoint());
    let path = Path::from("_log/00000.json");
    let create = PutOptions::from(PutMode::Create);

    store
        .put_opts(&path, PutPayload::from_static(b"first"), create.clone())
        .await
        .expect("first create");
    let second = store
        .put_opts(&path, PutPayload::from_static(b"second"), create)
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "{second:?}"
    );
    assert_eq!(get_bytes(&store, &path).await.expect("get"), b"first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_if_absent_has_exactly_one_winner() {
    let (_dir, server) = server();
    let store = Arc::new(store(&server.endpoint()));

    for round in 0..3 {
        let path = Path::from(format!("_log/{round:05}.json"));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&store);
                let path = path.clone();
                tokio::spawn(async move {
                    let payload = PutPayload::from(format!("writer {i}"));
                    let result = store
                        .put_opts(&path, payload, PutOptions::from(PutMode::Create))
                        .await;
                    (i, result)
                })
            })
            .collect();

        let mut winners = Vec::new();
        for task in tasks {
            let (i, result) = task.await.expect("task");
            match result {
                Ok(_) => winners.push(i),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => panic!("writer {i}: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = get_bytes(&store, &path).await.expect("get");
        assert_eq!(stored, format!("writer {}", winners[0]).into_bytes());
    }
}

#[tokio::test]
async fn conditional_update_and_conditional_get() {
    let (_dir, server) = server();
    let store = store(&server.endpoint());
    let path = Path::from("pointer.json");

    let v1 = store
        .put_opts(
            &path,
            PutPayload::from_static(b"v1"),
            PutMode::Create.into(),
        )
        .await
        .expect("create");
    let v1 = UpdateVersion::from(v1);
    let v2 = store
        .put_opts(
            &path,
            PutPayload::from_static(b"v2"),
            PutMode::Update(v1.clone()).into(),
        )
        .await
        .expect("update with current etag");
    let stale = store
        .put_opts(
            &path,
            PutPayload::from_static(b"v3"),
            PutMode::Update(v1.clone()).into(),
        )
        .await;
    assert!(
        matches!(stale, Err(object_store::Error::Precondition { .. })),
        "{stale:?}"
    );
    assert_eq!(get_bytes(&store, &path).await.expect("get"), b"v2");

    let if_match_stale = GetOptions {
        if_match: v1.e_tag.clone(),
        ..GetOptions::default()
    };
    let r = store.get_opts(&path, if_match_stale).await;
    assert!(
        matches!(r, Err(object_store::Error::Precondition { .. })),
        "{r:?}"
    );

    let if_match_current = GetOptions {
        if_match: v2.e_tag.clone(),
        ..GetOptions::default()
    };
    let r = store
        .get_opts(&path, if_match_current)
        .await
        .expect("if-match current");
    assert_eq!(&r.bytes().await.expect("bytes")[..], b"v2");

    let if_none_match_current = GetOptions {
        if_none_match: v2.e_tag.clone(),
        ..GetOptions::default()
    };
    let r = store.get_opts(&path, if_none_match_current).await;
    assert!(
        matches!(r, Err(object_store::Error::NotModified { .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn wrong_secret_is_rejected() {
    let (_dir, server) = server();
    let bad = builder(&server.endpoint(), "not-the-secret")
        .build()
        .expect("build store");
    let path = Path::from("secret.txt");
    let put = bad.put(&path, PutPayload::from_static(b"x")).await;
    assert!(
        matches!(put, Err(object_store::Error::PermissionDenied { .. })),
        "{put:?}"
    );
    let get = bad.get(&path).await;
    assert!(
        matches!(get, Err(object_store::Error::PermissionDenied { .. })),
        "{get:?}"
    );
    assert!(!server.root().join(BUCKET).join("secret.txt").exists());
}

/// Works without any tokio runtime in the test, and rejects unsigned requests.
#[test]
fn unsigned_request_from_plain_test_is_denied() {
    let (_dir, server) = server();
    let addr = server.endpoint().replace("http://", "");
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        conn,
        "GET /{BUCKET}/x HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("AccessDenied"), "{response}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn dropping_the_server_stops_it() {
    let (_dir, server) = server();
    let addr = server.endpoint().replace("http://", "");
    std::net::TcpStream::connect(&addr).expect("connect while running");
    drop(server);
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

#[test]
fn bucket_names_are_validated() {
    let (_dir, server) = server();
    server
        .create_bucket(BUCKET)
        .expect("existing bucket is fine");
    for bad in ["../escape", "a/b", "UPPER", "x"] {
        assert!(server.create_bucket(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn closed_endpoint_refuses_connections() {
    let store = store(&closed_endpoint());
    let r = store.get(&Path::from("x")).await;
    assert!(r.is_err());
}

#[tokio::test]
async fn proxy_without_faults_is_transparent() {
    let (_dir, server) = server();
    let proxy = FaultProxy::start(&server.endpoint(), Faults::none()).expect("proxy");
    let store = store(&proxy.endpoint());
    let path = Path::from("dir/file with spaces & ünïcode.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    store.put(&path, data.clone().into()).await.expect("put");
    assert_eq!(get_bytes(&store, &path).await.expect("get"), data);
    assert_eq!(store.head(&path).await.expect("head").size, 200_000);
    let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].location, path);
    let stats = proxy.stats();
    assert_eq!(stats.requests, 4);
    assert_eq!((stats.errors, stats.drops, stats.stalls), (0, 0, 0));
    assert_eq!(server.requests(), 4);
}

#[tokio::test]
async fn retries_get_through_errors_and_drops() {
    let (_dir, server) = server();
    let proxy = FaultProxy::start(&server.endpoint(), Faults::none()).expect("proxy");
    let store = builder(&proxy.endpoint(), SK)
        .with_retry(fast_retries(10))
        .build()
        .expect("build store");

    proxy.set_faults(Faults {
        error_rate: 0.3,
        drop_rate: 0.1,
        seed: 7,
        ..Faults::none()
    });
    for i in 0..50 {
        let path = Path::from(format!("data/{i:03}.bin"));
        store
            .put(&path, PutPayload::from(format!("payload {i}")))
            .await
            .expect("put");
    }
    for i in 0..50 {
        let path = Path::from(format!("data/{i:03}.bin"));
        let got = get_bytes(&store, &path).await.expect("get");
        assert_eq!(got, format!("payload {i}").into_bytes());
    }

    let stats = proxy.stats();
    assert!(stats.errors > 0, "{stats:?}");
    assert!(stats.drops > 0, "{stats:?}");
    assert_eq!(stats.stalls, 0);
    // Faulted requests never reach the server.
    assert_eq!(
        server.requests(),
        stats.requests - stats.errors - stats.drops,
        "{stats:?}"
    );
}

/// A body cut short (the connection closed before `Content-Length` bytes) is an error the
/// client sees, and object_store's GET re-requests the rest of the object: every read still
/// returns the whole object.
#[tokio::test]
async fn truncated_bodies_are_retried() {
    let (_dir, server) = server();
    let proxy = FaultProxy::start(&server.endpoint(), Faults::none()).expect("proxy");
    let store = builder(&proxy.endpoint(), SK)
        .with_retry(fast_retries(10))
        .build()
        .expect("build store");
    let payload = |i: usize| format!("payload {i} ").repeat(1000).into_bytes();
    for i in 0..20 {
        let path = Path::from(format!("big/{i:03}.bin"));
        store
            .put(&path, PutPayload::from(payload(i)))
            .await
            .expect("put");
    }
    proxy.set_faults(Faults {
        truncate_rate: 0.4,
        seed: 3,
        ..Faults::none()
    });
    for i in 0..20 {
        let path = Path::from(format!("big/{i:03}.bin"));
        let got = get_bytes(&store, &path).await.expect("get");
        assert_eq!(got, payload(i));
    }
    assert!(proxy.stats().truncations > 0, "{:?}", proxy.stats());

    // Without retries the cut is seen, never a short object taken for the whole.
    let no_retry = builder(&proxy.endpoint(), SK)
        .with_retry(fast_retries(0))
        .build()
        .expect("build store");
    proxy.set_faults(Faults {
        truncate_rate: 1.0,
        ..Faults::none()
    });
    let path = Path::from("big/000.bin");
    assert!(get_bytes(&no_retry, &path).await.is_err());
}

#[tokio::test]
async fn faults_apply_only_to_listed_methods() {
    let (_dir, server) = server();
    let proxy = FaultProxy::start(&server.endpoint(), Faults::none()).expect("proxy");
    let store = store(&proxy.endpoint());
    let path = Path::from("k");
    store
        .put(&path, PutPayload::from_static(b"v"))
        .await
        .expect("setup put");

    proxy.set_faults(Faults {
        error_rate: 1.0,
        methods: vec!["put".to_owned()],
        ..Faults::none()
    });
    assert_eq!(
        get_bytes(&store, &path).await.expect("get unaffected"),
        b"v"
    );
    let put = store.put(&path, PutPayload::from_static(b"w")).await;
    assert!(put.is_err(), "{put:?}");

    proxy.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::none()
    });
    let before = server.requests();
    assert!(store.get(&path).await.is_err());
    assert_eq!(server.requests(), before);

    proxy.set_faults(Faults::none());
    assert_eq!(get_bytes(&store, &path).await.expect("get"), b"v");
    let stats = proxy.stats();
    assert_eq!((stats.errors, stats.drops), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn stalls_trigger_client_timeouts() {
    let (_dir, server) = server();
    let proxy = FaultProxy::start(&server.endpoint(), Faults::none()).expect("proxy");
    let store = builder(&proxy.endpoint(), SK)
        // Replaces all client options, so allow http again.
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_timeout(Duration::from_millis(300)),
        )
        .with_retry(fast_retries(2))
        .build()
        .expect("build store");
    let path = Path::from("slow");
    store
        .put(&path, PutPayload::from_static(b"v"))
        .await
        .expect("setup put");

    proxy.set_faults(Faults {
        stall_rate: 1.0,
        stall: Duration::from_secs(2),
        ..Faults::none()
    });
    let started = Instant::now();
    let err = store
        .get(&path)
        .await
        .expect_err("stalled get must time out");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}: {err}");
    let message = format!("{err:?}").to_lowercase();
    assert!(
        message.contains("timeout") || message.contains("timed out"),
        "{message}"
    );
    assert_eq!(proxy.stats().stalls, 3, "{:?}", proxy.stats());
}

#[test]
fn proxy_rejects_bad_upstream() {
    for bad in [
        "127.0.0.1:9",
        "https://127.0.0.1:9",
        "http://127.0.0.1:9/path",
        "not a url",
    ] {
        assert!(FaultProxy::start(bad, Faults::none()).is_err(), "{bad}");
    }
}
