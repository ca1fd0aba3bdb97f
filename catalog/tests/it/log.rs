//! Restarts, checkpoints and the commit file format.

use strata_catalog::{Action, CHECKPOINT_INTERVAL, Catalog, Error, Warehouse};

use crate::put;

/// A restart sees every table and drop made before it, and the three zones.
#[tokio::test]
async fn restart_sees_committed_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().to_string();
    {
        let c = Catalog::open(Warehouse::open(&root).expect("wh"))
            .await
            .expect("open");
        c.commit("a", |_| Ok(vec![put("raw", "a"), put("curated", "b")]))
            .await
            .expect("commit");
        c.commit("drop", |_| {
            Ok(vec![Action::DropTable {
                zone: "raw".into(),
                name: "a".into(),
            }])
        })
        .await
        .expect("commit");
    }
    let c = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let s = c.snapshot();
    assert_eq!(s.zone_names(), vec!["raw", "processed", "curated"]);
    assert!(s.table_names("raw").is_empty());
    assert_eq!(s.table_names("curated"), vec!["b"]);
    let err = s.table("curated", "nope").expect_err("missing table");
    assert!(
        err.to_string().contains("tables in zone 'curated': b"),
        "{err}"
    );
    let err = s.zone("gold").expect_err("missing zone");
    assert!(err.to_string().contains("raw, processed, curated"), "{err}");
}

/// A second handle sees the first one's tables after a refresh.
#[tokio::test]
async fn refresh_sees_other_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().to_string();
    let a = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let b = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    a.commit("t", |_| Ok(vec![put("processed", "x")]))
        .await
        .expect("commit");
    assert!(b.snapshot().table("processed", "x").is_err());
    assert!(
        b.refresh()
            .await
            .expect("refresh")
            .table("processed", "x")
            .is_ok()
    );
}

/// Opening reads the last checkpoint and only the commits after it: with every commit
/// before the checkpoint deleted, opening still sees all tables.
#[tokio::test]
async fn open_starts_from_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().to_string();
    let n = CHECKPOINT_INTERVAL + 7;
    {
        let c = Catalog::open(Warehouse::open(&root).expect("wh"))
            .await
            .expect("open");
        for i in 1..n {
            let name = format!("t{i}");
            c.commit("t", |_| Ok(vec![put("raw", &name)]))
                .await
                .expect("commit");
        }
    }
    let log = dir.path().join("_strata/log");
    for v in 0..CHECKPOINT_INTERVAL {
        std::fs::remove_file(log.join(format!("{v:020}.json"))).expect("remove old commit");
    }
    let c = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let s = c.snapshot();
    assert_eq!(s.version, Some(n - 1));
    assert_eq!(s.table_names("raw").len() as u64, n - 1);
}

/// A commit from a newer format version is refused with an error saying to upgrade, rather
/// than misread.
#[tokio::test]
async fn newer_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().to_string();
    Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let future = r#"{"format_version": 99, "version": 1, "timestamp": "2030-01-01T00:00:00Z",
        "operation": "x", "writer": "strata 9", "actions": []}"#;
    std::fs::write(
        dir.path().join(format!("_strata/log/{:020}.json", 1)),
        future,
    )
    .expect("write");
    let err = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect_err("newer format");
    assert!(
        matches!(err, Error::UnsupportedFormatVersion { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade strata"));
}

/// Commits are format version 2, with or without table entries listing their files (a
/// version-1 reader would read the whole folder instead, or take relative locations for
/// something else, so it must refuse them), and an entry's file list reads back.
#[tokio::test]
async fn commits_are_format_2_and_file_lists_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().to_string();
    let c = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let plain = c
        .commit("plain", |_| Ok(vec![put("processed", "a")]))
        .await
        .expect("commit")
        .expect("version");
    let listed = c
        .commit("listed", |_| {
            let Action::PutTable(mut entry) = put("processed", "b") else {
                unreachable!()
            };
            entry.files = Some(vec![strata_catalog::DataFile {
                path: "k=1/strata-1-a.parquet".into(),
                size: 10,
            }]);
            Ok(vec![Action::PutTable(entry)])
        })
        .await
        .expect("commit")
        .expect("version");
    let version_of = |v: u64| {
        let text = std::fs::read_to_string(dir.path().join(format!("_strata/log/{v:020}.json")))
            .expect("commit file");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["format_version"]
            .as_u64()
            .expect("format_version")
    };
    assert_eq!(version_of(plain), 2);
    assert_eq!(version_of(listed), 2);
    let again = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let files = again
        .snapshot()
        .table("processed", "b")
        .expect("b")
        .files
        .clone()
        .expect("files");
    assert_eq!(files[0].path, "k=1/strata-1-a.parquet");
    assert_eq!(
        again.snapshot().table("processed", "a").expect("a").files,
        None
    );
}
