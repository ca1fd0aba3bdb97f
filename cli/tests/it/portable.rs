//! A warehouse is a folder: a copy made with `cp -r` is independent of the original, and a
//! warehouse moved with `mv` reads and writes Parquet, CSV and Delta tables in its new place.

use std::collections::BTreeSet;
use std::path::Path;

use crate::{copy_dir, ok, stderr, strata};

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside");
                out.insert(rel.to_string_lossy().to_string());
            }
        }
    }
    out
}

/// A warehouse with a Parquet table, a Delta table and a CSV file registered in raw, all
/// inside it.
fn make_warehouse(wh: &Path) {
    let items = wh.join("raw/items");
    std::fs::create_dir_all(&items).expect("mkdir");
    std::fs::write(items.join("items.csv"), "id,name\n1,bolt\n2,nut\n").expect("write");
    let register = format!(
        "CREATE EXTERNAL TABLE raw.items STORED AS CSV LOCATION '{}'",
        items.display()
    );
    ok(&strata(
        wh,
        &[
            "--stop-on-error",
            "-c",
            &register,
            "-c",
            "CREATE TABLE curated.p STORED AS PARQUET AS SELECT id, name FROM raw.items",
            "-c",
            "CREATE TABLE curated.d STORED AS DELTA AS SELECT id, name FROM raw.items",
        ],
    ));
}

/// `count(*)` of each table, as CSV lines.
fn counts(wh: &Path, tables: &[&str]) -> String {
    let q: Vec<String> = tables
        .iter()
        .map(|t| format!("SELECT '{t}' AS t, count(*) AS n, sum(id) AS s FROM {t}"))
        .collect();
    ok(&strata(
        wh,
        &[
            "--format",
            "csv",
            "--stop-on-error",
            "-c",
            &format!("{} ORDER BY t", q.join(" UNION ALL ")),
        ],
    ))
}

/// Writes in a copy (CTAS, INSERT into Parquet and Delta) land in the copy only: the
/// original's files and answers stay as they were.
#[test]
fn a_copied_warehouse_is_independent() {
    let base = tempfile::tempdir().expect("tempdir");
    let original = base.path().join("wh");
    make_warehouse(&original);
    let before = files(&original);
    let copy = base.path().join("wh_copy");
    copy_dir(&original, &copy);

    ok(&strata(
        &copy,
        &[
            "--stop-on-error",
            "-c",
            "CREATE TABLE curated.fresh STORED AS PARQUET AS SELECT id * 10 AS id FROM raw.items",
            "-c",
            "INSERT INTO curated.p VALUES (3, 'washer')",
            "-c",
            "INSERT INTO curated.d VALUES (3, 'washer')",
        ],
    ));
    assert!(copy.join("curated/fresh").is_dir());
    assert_eq!(files(&original), before, "the copy wrote into the original");
    // DuckDB over the same rows: p and d have (1, 2) in the original, (1, 2, 3) in the copy.
    let tables = ["raw.items", "curated.p", "curated.d"];
    assert_eq!(
        counts(&original, &tables),
        "t,n,s\ncurated.d,2,3\ncurated.p,2,3\nraw.items,2,3\n"
    );
    assert_eq!(
        counts(&copy, &["curated.p", "curated.d", "curated.fresh"]),
        "t,n,s\ncurated.d,3,6\ncurated.fresh,2,30\ncurated.p,3,6\n"
    );
    let o = strata(&original, &["-c", "SELECT * FROM curated.fresh"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("curated.fresh"), "{}", stderr(&o));
}

/// A moved warehouse reads its Parquet, CSV and Delta tables in the new place and takes new
/// writes there.
#[test]
fn a_moved_warehouse_reads_and_writes_in_its_new_place() {
    let base = tempfile::tempdir().expect("tempdir");
    let old = base.path().join("wh");
    make_warehouse(&old);
    let new = base.path().join("elsewhere/lake");
    std::fs::create_dir_all(new.parent().expect("parent")).expect("mkdir");
    std::fs::rename(&old, &new).expect("mv");

    let tables = ["raw.items", "curated.p", "curated.d"];
    assert_eq!(
        counts(&new, &tables),
        "t,n,s\ncurated.d,2,3\ncurated.p,2,3\nraw.items,2,3\n"
    );
    ok(&strata(
        &new,
        &[
            "--stop-on-error",
            "-c",
            "INSERT INTO curated.p VALUES (3, 'washer')",
            "-c",
            "INSERT INTO curated.d VALUES (3, 'washer')",
            "-c",
            "CREATE TABLE curated.fresh STORED AS DELTA AS SELECT id FROM curated.d",
        ],
    ));
    assert_eq!(
        counts(&new, &["curated.p", "curated.d", "curated.fresh"]),
        "t,n,s\ncurated.d,3,6\ncurated.fresh,3,6\ncurated.p,3,6\n"
    );
    assert!(new.join("curated/fresh/_delta_log").is_dir());
    assert!(!old.exists(), "nothing was written at the old place");
}
