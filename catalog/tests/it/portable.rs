//! Warehouses are folders: the catalog stores what lies inside the warehouse relative to it,
//! so a copy is independent and a moved warehouse works in its new place; catalogs of the
//! older format (absolute URLs) are rebased when they were copied or moved.

use std::path::Path;

use strata_catalog::{Action, Catalog, Error, TableEntry, TableFormat, Warehouse, ZoneEntry};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn table(zone: &str, name: &str, location: &str) -> Action {
    Action::PutTable(Box::new(TableEntry::new(
        zone,
        name,
        TableFormat::Parquet,
        location,
    )))
}

fn commit_json(dir: &Path, version: u64) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(format!("_strata/log/{version:020}.json")))
        .expect("read commit");
    serde_json::from_str(&text).expect("commit json")
}

async fn open(dir: &Path) -> Result<std::sync::Arc<Catalog>, Error> {
    Catalog::open(Warehouse::open(&dir.to_string_lossy()).expect("wh")).await
}

/// Zone roots and table locations inside the warehouse are written relative to it; a
/// location elsewhere stays an absolute URL. In memory, both are URLs.
#[tokio::test]
async fn locations_inside_are_stored_relative() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = open(dir.path()).await.expect("open");
    let root = c.warehouse().url().to_string();
    let inside = format!("{root}curated/sales/");
    c.commit("t", |_| {
        Ok(vec![
            table("curated", "sales", &inside),
            table("raw", "ext", "s3://elsewhere/ext/"),
        ])
    })
    .await
    .expect("commit");
    let first = commit_json(dir.path(), 0);
    assert_eq!(first["format_version"], 2);
    let roots: Vec<&str> = first["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["set_zone"]["root"].as_str().expect("root"))
        .collect();
    assert_eq!(roots, vec!["raw/", "processed/", "curated/"]);
    let second = commit_json(dir.path(), 1);
    assert_eq!(
        second["actions"][0]["put_table"]["location"],
        "curated/sales/"
    );
    assert_eq!(
        second["actions"][1]["put_table"]["location"],
        "s3://elsewhere/ext/"
    );
    let s = c.snapshot();
    assert_eq!(s.zone("raw").expect("raw").root, format!("{root}raw/"));
    assert_eq!(s.table("curated", "sales").expect("t").location, inside);
}

/// A copied warehouse resolves every location to itself, and the copy's commits leave the
/// original alone; a moved one (the original removed) opens in its new place, through its
/// checkpoint as well as its log.
#[tokio::test]
async fn copies_are_independent_and_moves_work() {
    let base = tempfile::tempdir().expect("tempdir");
    let a = base.path().join("wh");
    {
        let c = open(&a).await.expect("open");
        let root = c.warehouse().url().to_string();
        for i in 0..strata_catalog::CHECKPOINT_INTERVAL + 2 {
            let location = format!("{root}curated/t{i}/");
            let name = format!("t{i}");
            c.commit("t", |_| Ok(vec![table("curated", &name, &location)]))
                .await
                .expect("commit");
        }
    }
    let b = base.path().join("wh_copy");
    copy_dir(&a, &b);
    let copy = open(&b).await.expect("open copy");
    let copy_root = copy.warehouse().url().to_string();
    assert!(copy_root.ends_with("/wh_copy/"), "{copy_root}");
    let s = copy.snapshot();
    assert_eq!(
        s.zone("curated").expect("zone").root,
        format!("{copy_root}curated/")
    );
    assert_eq!(
        s.table("curated", "t3").expect("t3").location,
        format!("{copy_root}curated/t3/")
    );
    copy.commit("new", |_| {
        Ok(vec![table(
            "curated",
            "only_in_copy",
            &format!("{copy_root}curated/x/"),
        )])
    })
    .await
    .expect("commit in copy");
    let original = open(&a).await.expect("open original");
    assert!(
        original
            .snapshot()
            .table("curated", "only_in_copy")
            .is_err()
    );
    drop(original);

    let moved = base.path().join("moved");
    std::fs::rename(&a, &moved).expect("mv");
    let c = open(&moved).await.expect("open moved");
    let root = c.warehouse().url().to_string();
    assert!(root.ends_with("/moved/"), "{root}");
    assert_eq!(
        c.snapshot().table("curated", "t51").expect("t51").location,
        format!("{root}curated/t51/")
    );
}

/// Writes a catalog the way strata wrote format 1: absolute URLs under the warehouse it was
/// created at, plus a table outside it.
fn write_format_1(dir: &Path, created_at: &str) {
    let log = dir.join("_strata/log");
    std::fs::create_dir_all(&log).expect("mkdir");
    let zones: Vec<String> = ["raw", "processed", "curated"]
        .iter()
        .map(|z| format!(r#"{{"set_zone": {{"name": "{z}", "root": "{created_at}{z}/"}}}}"#))
        .collect();
    let first = format!(
        r#"{{"format_version": 1, "version": 0, "timestamp": "2026-11-22T03:12:45Z",
            "operation": "CREATE WAREHOUSE", "writer": "strata 0.1.0",
            "actions": [{}]}}"#,
        zones.join(",")
    );
    std::fs::write(log.join(format!("{:020}.json", 0)), first).expect("write");
    let entry = |name: &str, location: &str| {
        format!(
            r#"{{"put_table": {{"zone": "curated", "name": "{name}", "format": "delta",
                "location": "{location}", "created_at": "2026-11-22T03:12:45Z",
                "updated_at": "2026-11-22T03:12:45Z"}}}}"#
        )
    };
    let second = format!(
        r#"{{"format_version": 1, "version": 1, "timestamp": "2026-11-22T03:12:46Z",
            "operation": "CTAS", "writer": "strata 0.1.0",
            "actions": [{}, {}]}}"#,
        entry("sales", &format!("{created_at}curated/sales/")),
        entry("ext", "s3://elsewhere/ext/")
    );
    std::fs::write(log.join(format!("{:020}.json", 1)), second).expect("write");
}

/// A format-1 catalog keeps opening where it was made, and one copied or moved elsewhere has
/// its locations under the old root rebased onto the new one, while locations outside the
/// warehouse stay as they were. Its next commits store relative locations.
#[tokio::test]
async fn format_1_catalogs_open_and_are_rebased() {
    let base = tempfile::tempdir().expect("tempdir");
    let here = base.path().join("here");
    std::fs::create_dir_all(&here).expect("mkdir");
    let here_url = Warehouse::open(&here.to_string_lossy())
        .expect("wh")
        .url()
        .to_string();
    write_format_1(&here, &here_url);
    let c = open(&here).await.expect("open in place");
    let s = c.snapshot();
    assert_eq!(
        s.table("curated", "sales").expect("sales").location,
        format!("{here_url}curated/sales/")
    );
    drop(c);

    let old = "file:///somewhere/that/was/lake/";
    let moved = base.path().join("moved");
    std::fs::create_dir_all(&moved).expect("mkdir");
    write_format_1(&moved, old);
    let c = open(&moved).await.expect("open moved");
    let root = c.warehouse().url().to_string();
    let s = c.snapshot();
    assert_eq!(s.zone("raw").expect("raw").root, format!("{root}raw/"));
    assert_eq!(
        s.table("curated", "sales").expect("sales").location,
        format!("{root}curated/sales/")
    );
    assert_eq!(
        s.table("curated", "ext").expect("ext").location,
        "s3://elsewhere/ext/"
    );
    c.commit("t", |_| {
        Ok(vec![table(
            "curated",
            "more",
            &format!("{root}curated/more/"),
        )])
    })
    .await
    .expect("commit");
    assert_eq!(
        commit_json(&moved, 2)["actions"][0]["put_table"]["location"],
        "curated/more/"
    );
    // The mixed log (format 1, then 2) still opens with everything in place.
    let again = open(&moved).await.expect("reopen");
    assert_eq!(again.snapshot().table_count(), 3);
}

/// A zone rooted inside another strata warehouse is refused when the catalog opens, with an
/// error saying what happened and what to do, rather than written through.
#[tokio::test]
async fn roots_inside_another_warehouse_are_refused() {
    let base = tempfile::tempdir().expect("tempdir");
    let other = base.path().join("other");
    let other_url = open(&other)
        .await
        .expect("other")
        .warehouse()
        .url()
        .to_string();
    let mine = base.path().join("mine");
    let c = open(&mine).await.expect("mine");
    c.commit("point curated elsewhere", |_| {
        Ok(vec![Action::SetZone(ZoneEntry {
            name: "curated".into(),
            root: format!("{other_url}curated/"),
        })])
    })
    .await
    .expect("commit");
    drop(c);
    let err = open(&mine).await.expect_err("refused");
    assert!(matches!(err, Error::ForeignZoneRoot { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("zone 'curated'"), "{text}");
    assert!(text.contains(&other_url), "{text}");
}

/// A stored relative location that climbs out of the warehouse is refused.
#[tokio::test]
async fn relative_locations_stay_inside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = open(dir.path()).await.expect("open");
    drop(c);
    let bad = r#"{"format_version": 2, "version": 1, "timestamp": "2026-11-22T03:12:46Z",
        "operation": "x", "writer": "strata", "actions": [{"set_zone":
        {"name": "gold", "root": "../../etc/"}}]}"#;
    std::fs::write(dir.path().join(format!("_strata/log/{:020}.json", 1)), bad).expect("write");
    let err = open(dir.path()).await.expect_err("refused");
    assert!(err.to_string().contains("leaves the warehouse"), "{err}");
}
