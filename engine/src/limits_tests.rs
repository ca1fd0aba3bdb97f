//! Queries under a memory limit: `array_agg` counts the strings it holds, and a top-K sort
//! over strings runs under a limit far below its input, with the answers of an unlimited
//! session on the same warehouse.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use strata_catalog::Config;

use crate::Session;
use crate::providers::metrics::PeakMemoryPool;

/// Two sessions on one new warehouse: under `limit`, and unlimited.
async fn sessions(limit: &str) -> (tempfile::TempDir, Session, Session) {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().join("wh").to_string_lossy().to_string();
    let limited = Session::open_with(
        &location,
        &Config {
            memory_limit: Some(limit.into()),
            spill_dir: Some(dir.path().join("spill").to_string_lossy().to_string()),
            ..Config::default()
        },
    )
    .await
    .expect("limited session");
    let unlimited = Session::open_with(&location, &Config::default())
        .await
        .expect("session");
    (dir, limited, unlimited)
}

/// `rows` rows: `id`, `s` (64 characters, unique), `k` (`id % 100`) and `n` (`s`, NULL
/// on every seventh row), as Parquet, which strata reads back as string views.
async fn strings_table(session: &Session, rows: u64) {
    session
        .sql(&format!(
            "CREATE TABLE processed.strs AS \
             SELECT value AS id, \
                    md5(CAST(value AS VARCHAR)) || md5(CAST(value + 1 AS VARCHAR)) AS s, \
                    value % 100 AS k, \
                    CASE WHEN value % 7 = 0 THEN NULL \
                         ELSE md5(CAST(value AS VARCHAR)) END AS n \
             FROM generate_series(1, {rows})"
        ))
        .await
        .expect("table");
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = vec![];
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    rows
}

async fn answer(session: &Session, sql: &str) -> Vec<String> {
    rows(
        &session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    )
}

fn pool(session: &Session) -> Arc<dyn datafusion::execution::memory_pool::MemoryPool> {
    Arc::clone(&session.context().runtime_env().memory_pool)
}

/// The most memory `sql` reserved at once in `session`, and its answer.
async fn peak_of(session: &Session, sql: &str) -> (u64, Vec<String>) {
    let pool = pool(session);
    let peak = pool
        .downcast_ref::<PeakMemoryPool>()
        .expect("sessions measure their peak");
    peak.reset_peak();
    let answer = answer(session, sql).await;
    (peak.peak(), answer)
}

/// `array_agg` reserves at least the bytes of the strings it holds, alone or in structs:
/// 200,000 strings of 64 characters (12.8 MB) were counted at their 16-byte views (3.2 MB)
/// before.
#[tokio::test]
async fn array_agg_counts_the_strings_it_holds() {
    let (_dir, limited, unlimited) = sessions("1GiB").await;
    strings_table(&limited, 200_000).await;
    let strings = 200_000 * 64;
    for sql in [
        "SELECT cardinality(array_agg(s)) AS n FROM processed.strs",
        "SELECT sum(cardinality(a)) AS n FROM \
         (SELECT k, array_agg(s) AS a FROM processed.strs GROUP BY k)",
        // Views inside structs are held as strings too.
        "SELECT cardinality(array_agg(named_struct('s', s, 'k', k))) AS n FROM processed.strs",
    ] {
        let (peak, answer) = peak_of(&limited, sql).await;
        assert_eq!(answer, vec!["200000".to_string()], "{sql}");
        assert!(
            peak >= strings,
            "{sql}: peak {peak} below the strings' {strings} bytes"
        );
        // Without a limit nothing is counted, and DataFusion's array_agg runs.
        assert_eq!(self::answer(&unlimited, sql).await, answer);
    }
}

/// strata's `array_agg` gives DataFusion's answers, of the same types: ordered, distinct,
/// filtered, over NULLs and binaries, as a window function, empty.
#[tokio::test]
async fn array_agg_under_a_limit_answers_as_without() {
    let (_dir, limited, unlimited) = sessions("1GiB").await;
    strings_table(&limited, 3_000).await;
    let queries = [
        "SELECT k, array_agg(s ORDER BY id) AS a, arrow_typeof(array_agg(s)) AS t \
         FROM processed.strs GROUP BY k ORDER BY k",
        "SELECT array_agg(n ORDER BY id DESC) AS a FROM processed.strs WHERE id < 40",
        "SELECT k, array_agg(DISTINCT n ORDER BY n) AS a FROM processed.strs \
         WHERE id < 500 GROUP BY k ORDER BY k",
        "SELECT k, array_sort(array_agg(n) FILTER (WHERE id % 2 = 0)) AS a \
         FROM processed.strs GROUP BY k ORDER BY k",
        "SELECT k, array_sort(array_agg(n IGNORE NULLS)) AS a FROM processed.strs \
         GROUP BY k ORDER BY k",
        "SELECT array_sort(array_agg(CAST(s AS BYTEA))) AS a, \
                arrow_typeof(array_agg(CAST(s AS BYTEA))) AS t \
         FROM processed.strs WHERE id < 20",
        "SELECT id, array_agg(n) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) \
         AS a FROM processed.strs WHERE id < 30 ORDER BY id",
        "SELECT array_agg(s) AS a, arrow_typeof(array_agg(s)) AS t \
         FROM processed.strs WHERE id < 0",
        "SELECT k, array_agg(id ORDER BY id) AS a FROM processed.strs \
         WHERE id < 300 GROUP BY k ORDER BY k",
        "SELECT k, array_agg(named_struct('n', n, 'id', id) ORDER BY id) AS a, \
                arrow_typeof(array_agg(named_struct('n', n))) AS t \
         FROM processed.strs WHERE id < 300 GROUP BY k ORDER BY k",
        "SELECT k % 7 AS g, count(*) AS c, array_sort(array_agg(s)) AS a \
         FROM processed.strs WHERE id < 400 GROUP BY k % 7 ORDER BY g",
    ];
    for sql in queries {
        let expected = answer(&unlimited, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(answer(&limited, sql).await, expected, "{sql}");
    }
}

/// `ORDER BY … LIMIT` over 300,000 strings of 64 characters (19 MB) runs under 4 MiB, with
/// the answer of the unlimited run: the top-K sort keeps the strings of its best rows, not
/// the pages they were read from (see `optimizer::top_k_owned_strings`). It failed under
/// 10 MiB before.
#[tokio::test]
async fn top_k_over_strings_runs_under_a_small_limit() {
    let (_dir, limited, unlimited) = sessions("4MiB").await;
    strings_table(&unlimited, 300_000).await;
    for sql in [
        "SELECT s, id FROM processed.strs ORDER BY s DESC LIMIT 1000",
        "SELECT id, s FROM processed.strs ORDER BY id DESC LIMIT 10",
    ] {
        let expected = answer(&unlimited, sql).await;
        assert_eq!(answer(&limited, sql).await, expected, "{sql}");
    }
    // DataFusion's top-K sort alone holds the pages of its rows, and fails.
    limited
        .sql("SET strata.optimizer.top_k_owned_strings = false")
        .await
        .expect("switch");
    let e = limited
        .sql("SELECT s, id FROM processed.strs ORDER BY s DESC LIMIT 10")
        .await
        .expect_err("the pages of ten rows do not fit in 4 MiB");
    assert!(e.to_string().contains("--memory-limit"), "{e}");
    limited
        .sql("SET strata.optimizer.top_k_owned_strings = true")
        .await
        .expect("switch");
    let plan = crate::test_support::shown(
        &crate::test_support::physical_plan(
            &limited,
            "SELECT s, id FROM processed.strs ORDER BY s DESC LIMIT 1000",
        )
        .await,
    );
    assert!(
        plan.contains("ViewsExec: strings back to string views"),
        "{plan}"
    );
    assert!(plan.contains("CAST(s@"), "{plan}");
}

/// `array_agg` over 100 groups of 6,000 strings of 64 characters (38 MB in all) runs under
/// 32 MiB, one group's list at a time, with the answer of the unlimited run (see
/// `optimizer::list_groups_in_order`). DataFusion's two-step hash aggregate spills all 100
/// lists in one batch and fails to merge them back.
#[tokio::test]
async fn grouped_array_agg_holds_one_group_at_a_time() {
    let (_dir, limited, unlimited) = sessions("32MiB").await;
    strings_table(&unlimited, 600_000).await;
    let sql = "SELECT k, cardinality(array_agg(s)) AS n, max(s) AS m \
               FROM processed.strs GROUP BY k ORDER BY k";
    let expected = answer(&unlimited, sql).await;
    assert_eq!(expected.len(), 100);
    assert_eq!(answer(&limited, sql).await, expected);
    let plan = crate::test_support::shown(&crate::test_support::physical_plan(&limited, sql).await);
    assert!(plan.contains("AggregateExec: mode=Single,"), "{plan}");
    assert!(plan.contains("ordering_mode=Sorted"), "{plan}");
    limited
        .sql("SET strata.optimizer.list_groups_in_order = false")
        .await
        .expect("switch");
    let e = limited
        .sql(sql)
        .await
        .expect_err("all 100 lists in one spilled batch do not fit in 32 MiB");
    assert!(e.to_string().contains("--memory-limit"), "{e}");
}

/// A grouped `array_agg` below a partitioned join on its keys keeps the partitions the
/// join relies on: its rows are repartitioned by the keys and each partition sorted and
/// aggregated on its own, with the answer of the unlimited run.
#[tokio::test]
async fn grouped_array_agg_below_a_partitioned_join_keeps_its_partitions() {
    let (_dir, limited, unlimited) = sessions("256MiB").await;
    strings_table(&unlimited, 20_000).await;
    for setting in [
        "SET datafusion.optimizer.hash_join_single_partition_threshold = 0",
        "SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 0",
        "SET datafusion.execution.target_partitions = 3",
    ] {
        for session in [&limited, &unlimited] {
            session.sql(setting).await.expect(setting);
        }
    }
    let sql = "SELECT a.k, cardinality(a.l) AS n, b.c \
               FROM (SELECT k, array_agg(s) AS l FROM processed.strs GROUP BY k) a \
               JOIN (SELECT k, count(*) AS c FROM processed.strs WHERE id % 3 = 0 GROUP BY k) b \
               ON a.k = b.k ORDER BY a.k";
    let expected = answer(&unlimited, sql).await;
    assert_eq!(expected.len(), 100);
    assert_eq!(answer(&limited, sql).await, expected);
    let plan = crate::test_support::shown(&crate::test_support::physical_plan(&limited, sql).await);
    assert!(plan.contains("mode=Partitioned"), "{plan}");
    assert!(
        plan.contains("AggregateExec: mode=SinglePartitioned"),
        "{plan}"
    );
    assert!(plan.contains("ordering_mode=Sorted"), "{plan}");
}

/// A top-K sort that truly needs more than the limit fails with an error naming the
/// operator, the limit and the setting to raise.
#[tokio::test]
async fn a_top_k_too_large_for_the_limit_says_what_to_raise() {
    let (_dir, limited, unlimited) = sessions("4MiB").await;
    strings_table(&unlimited, 300_000).await;
    let e = limited
        .sql("SELECT s, id FROM processed.strs ORDER BY s LIMIT 200000")
        .await
        .expect_err("200,000 rows of 64 characters do not fit in 4 MiB");
    let e = e.to_string();
    assert!(e.contains("--memory-limit"), "{e}");
    assert!(e.contains("memory_limit in the config file"), "{e}");
    assert!(e.contains("TopK"), "{e}");
}
