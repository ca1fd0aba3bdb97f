//! `strata run`: the retail example pipeline end to end, idempotent reloads, checks that
//! gate publishing, materialized views and lineage.

use std::path::{Path, PathBuf};

use super::{stderr, stdout, strata};

fn example() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/retail/pipeline.sql")
        .to_string_lossy()
        .to_string()
}

fn csv(warehouse: &Path, sql: &str) -> String {
    let o = strata(warehouse, &["--format", "csv", "-c", sql]);
    assert!(o.status.success(), "{sql}: {}", stderr(&o));
    stdout(&o)
}

/// The shipped retail pipeline, month by month: the curated star schema and the daily
/// aggregate are built, loading a month twice leaves one copy of it, the view knows when its
/// sources changed, and lineage reaches back to the raw files.
#[test]
fn retail_pipeline_end_to_end_and_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path();
    let o = strata(wh, &["--demo", "run", &example(), "--var", "month=3"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("[2/"), "{out}");
    assert!(out.contains("rows written"), "{out}");
    assert!(out.contains("finished"), "{out}");

    let expected = |months: &str| {
        csv(
            wh,
            &format!(
                "SELECT count(*) AS n FROM raw.sales WHERE month IN ({months}) AND quantity > 0"
            ),
        )
    };
    let facts = || csv(wh, "SELECT count(*) AS n FROM curated.fact_sales");
    assert_eq!(facts(), expected("3"));
    for _ in 0..2 {
        let o = strata(wh, &["run", &example(), "--var", "month=4"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // Month 4 loaded twice: one copy.
    assert_eq!(facts(), expected("3, 4"));
    assert_eq!(
        csv(wh, "SELECT count(*) AS n FROM processed.sales"),
        expected("3, 4")
    );
    assert_eq!(
        csv(wh, "SELECT sum(sales) AS n FROM curated.daily_sales"),
        expected("3, 4")
    );

    // The view records when it was refreshed, and notices its sources moving on.
    let o = strata(
        wh,
        &[
            "-c",
            "INSERT INTO curated.fact_sales SELECT sale_id + 10000, date_key, product_id, store_id, quantity, revenue, year, month FROM curated.fact_sales WHERE month = 3",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let described = describe(wh, "curated.daily_sales");
    assert!(described.contains("refreshed:"), "{described}");
    assert!(
        described.contains("changed since the refresh: curated.fact_sales"),
        "{described}"
    );
    let o = strata(wh, &["-c", "REFRESH MATERIALIZED VIEW curated.daily_sales"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(describe(wh, "curated.daily_sales").contains("unchanged since the refresh"));

    // Lineage: the view, its fact and dimensions, processed, raw.
    let lineage = csv(wh, "SHOW LINEAGE curated.daily_sales");
    for table in [
        "curated.daily_sales",
        "└─ curated.fact_sales",
        "└─ processed.sales",
        "└─ raw.sales",
        "└─ curated.dim_product",
        "└─ raw.products",
    ] {
        assert!(lineage.contains(table), "{table} in {lineage}");
    }
}

fn describe(warehouse: &Path, table: &str) -> String {
    let o = strata(warehouse, &["-c", &format!("\\d {table}")]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

/// A failing check stops the run at its line, names the check and the value it saw, and
/// readers keep the table as it was before the write.
#[test]
fn failing_check_keeps_the_previous_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path();
    let o = strata(wh, &["--demo", "run", &example(), "--var", "month=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = csv(
        wh,
        "SELECT count(*) AS n, sum(revenue) AS r FROM processed.sales",
    );
    let bad = dir.path().join("bad.sql");
    std::fs::write(
        &bad,
        "-- a load with a broken key\nINSERT INTO processed.sales\nSELECT sale_id + 1000, sold_at, sale_date, NULL, store_id, customer_id, segment, quantity, revenue, year, month\nFROM processed.sales;\nCHECK 'no null keys' EXPECT (SELECT count(*) FROM processed.sales WHERE product_id IS NULL) = 0;\nSELECT 'never runs';\n",
    )
    .expect("write pipeline");
    let o = strata(wh, &["run", &bad.to_string_lossy()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("check 'no null keys' failed"), "{err}");
    assert!(err.contains("saw 20"), "{err}");
    assert!(!stdout(&o).contains("never runs"));
    assert_eq!(
        csv(
            wh,
            "SELECT count(*) AS n, sum(revenue) AS r FROM processed.sales"
        ),
        before
    );
    // Published again, not held: the next write is visible at once.
    let o = strata(wh, &["-c", "DELETE FROM processed.sales WHERE sale_id = 1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(
        csv(
            wh,
            "SELECT count(*) AS n, sum(revenue) AS r FROM processed.sales"
        ),
        before
    );

    // Unknown variables are named with their line before anything runs.
    let o = strata(wh, &["run", &example()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("--var month=value"), "{err}");
    assert!(err.contains(":line 30"), "{err}");
}
