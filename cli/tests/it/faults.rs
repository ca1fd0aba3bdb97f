//! Fault injection over many statements: a warehouse on S3 behind a proxy that fails, drops,
//! truncates and delays a share of requests, written and read statement by statement. Every
//! answer is checked against what the writes that reported success make it, every write
//! that reported success must be in its table afterwards, and a write that reported failure
//! is looked up to tell whether it landed anyway.
//!
//! `STRATA_FAULT_STATEMENTS` sets the number of statements (120 unless set; the figures in
//! `benches/results/` use 400) and `STRATA_FAULT_SEED` the seed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use strata_engine::Session;
use strata_engine::catalog::{Config, S3Options, Secret};
use strata_testkit::{FaultProxy, Faults, S3Server};

const ACCESS_KEY: &str = "fault-access";
const SECRET_KEY: &str = "fault-secret";

/// The faults of a run: 10% of all requests, spread over the four kinds.
fn faults(seed: u64) -> Faults {
    Faults {
        error_rate: 0.03,
        drop_rate: 0.03,
        truncate_rate: 0.03,
        stall_rate: 0.01,
        stall: Duration::from_millis(1500),
        seed,
        ..Faults::none()
    }
}

fn config(endpoint: &str) -> Config {
    Config {
        s3: S3Options {
            endpoint: Some(endpoint.to_string()),
            allow_http: Some(true),
            region: Some("us-east-1".into()),
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(Secret::new(SECRET_KEY)),
            max_retries: Some(10),
            retry_timeout_secs: Some(60.0),
            request_timeout_secs: Some(1.0),
            connect_timeout_secs: Some(1.0),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The rows of a result as text, one string per row.
async fn rows(session: &Session, sql: &str) -> Result<Vec<String>, String> {
    let batches = session.sql(sql).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in &batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            out.push(cells.join("|"));
        }
    }
    Ok(out)
}

/// What a run saw.
#[derive(Debug, Default)]
struct Tally {
    statements: usize,
    reads: usize,
    writes: usize,
    failed_reads: usize,
    failed_writes: usize,
    /// Writes that reported failure but had landed.
    failed_but_landed: usize,
    wrong_answers: usize,
    lost_writes: usize,
    /// Rows present that no write put there, or present twice.
    extra_rows: usize,
}

#[test]
fn faults_give_no_wrong_answers_and_lose_no_writes() {
    let n: usize = std::env::var("STRATA_FAULT_STATEMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let seed: u64 = std::env::var("STRATA_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let root = tempfile::tempdir().expect("tempdir");
    let server = S3Server::start(root.path(), ACCESS_KEY, SECRET_KEY).expect("S3 server");
    server.create_bucket("lake").expect("bucket");
    let retail = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/retail");
    super::copy_dir(&retail, &root.path().join("lake/warehouse/raw"));
    let proxy = FaultProxy::start(&server.endpoint(), Faults::none()).expect("proxy");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tally = runtime.block_on(async {
        let session = Session::open_with("s3://lake/warehouse", &config(&proxy.endpoint()))
            .await
            .expect("open");
        for sql in [
            "REFRESH ZONE raw",
            "CREATE TABLE curated.pq STORED AS PARQUET AS SELECT CAST(0 AS BIGINT) AS k, CAST(0 AS BIGINT) AS v",
            "CREATE TABLE curated.dl STORED AS DELTA AS SELECT CAST(0 AS BIGINT) AS k, CAST(0 AS BIGINT) AS v",
        ] {
            session.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        // Answers of the reads over raw data, without faults.
        let raw_reads = [
            "SELECT month, count(*), round(sum(amount), 2) FROM raw.sales GROUP BY month ORDER BY month",
            "SELECT p.category, count(*), sum(s.quantity) FROM raw.sales s JOIN raw.products p ON s.product_id = p.product_id GROUP BY p.category ORDER BY p.category",
            "SELECT count(*) FROM raw.products",
        ];
        let mut expected_raw = Vec::new();
        for sql in raw_reads {
            expected_raw.push(rows(&session, sql).await.expect("clean read"));
        }

        let mut tally = Tally::default();
        // Keys each table must hold: those of writes that reported success, or that landed.
        let mut keys: BTreeMap<&str, Vec<i64>> = BTreeMap::from([("pq", vec![0]), ("dl", vec![0])]);
        let mut ctas: Vec<(String, usize)> = Vec::new();
        proxy.set_faults(faults(seed));
        for i in 0..n {
            let k = i as i64 + 1;
            tally.statements += 1;
            match i % 8 {
                0 | 4 | 1 | 5 => {
                    let table = if i % 2 == 0 { "pq" } else { "dl" };
                    tally.writes += 1;
                    let sql = format!("INSERT INTO curated.{table} VALUES ({k}, {})", k * 3);
                    if let Err(e) = session.sql(&sql).await {
                        tally.failed_writes += 1;
                        eprintln!("write failed: {sql}: {e}");
                        // Did it land? Look without faults.
                        proxy.set_faults(Faults::none());
                        let found = rows(
                            &session,
                            &format!("SELECT count(*) FROM curated.{table} WHERE k = {k}"),
                        )
                        .await
                        .expect("look-up");
                        proxy.set_faults(faults(seed + i as u64));
                        if found != ["0"] {
                            tally.failed_but_landed += 1;
                            keys.get_mut(table).expect("table").push(k);
                        }
                        continue;
                    }
                    keys.get_mut(table).expect("table").push(k);
                }
                2 | 6 => {
                    let table = if i % 8 == 2 { "pq" } else { "dl" };
                    tally.reads += 1;
                    let sql = format!("SELECT count(*), coalesce(sum(v), 0) FROM curated.{table}");
                    let want = {
                        let ks = &keys[table];
                        vec![format!("{}|{}", ks.len(), ks.iter().map(|k| k * 3).sum::<i64>())]
                    };
                    match rows(&session, &sql).await {
                        Ok(got) if got == want => {}
                        Ok(got) => {
                            tally.wrong_answers += 1;
                            eprintln!("wrong answer: {sql}: {got:?}, expected {want:?}");
                        }
                        Err(e) => {
                            tally.failed_reads += 1;
                            eprintln!("read failed: {sql}: {e}");
                        }
                    }
                }
                3 => {
                    tally.reads += 1;
                    let q = (i / 8) % raw_reads.len();
                    match rows(&session, raw_reads[q]).await {
                        Ok(got) if got == expected_raw[q] => {}
                        Ok(got) => {
                            tally.wrong_answers += 1;
                            eprintln!("wrong answer: {}: {got:?}", raw_reads[q]);
                        }
                        Err(e) => {
                            tally.failed_reads += 1;
                            eprintln!("read failed: {}: {e}", raw_reads[q]);
                        }
                    }
                }
                _ => {
                    // A new Delta or Parquet table from another.
                    tally.writes += 1;
                    let (format, from) = if (i / 8) % 2 == 0 { ("DELTA", "dl") } else { ("PARQUET", "pq") };
                    let name = format!("c{i}");
                    let sql = format!("CREATE TABLE curated.{name} STORED AS {format} AS SELECT * FROM curated.{from}");
                    let count = keys[from].len();
                    if let Err(e) = session.sql(&sql).await {
                        tally.failed_writes += 1;
                        eprintln!("write failed: {sql}: {e}");
                        proxy.set_faults(Faults::none());
                        if rows(&session, &format!("SELECT count(*) FROM curated.{name}")).await.is_ok() {
                            tally.failed_but_landed += 1;
                            ctas.push((name, count));
                        }
                        proxy.set_faults(faults(seed + i as u64));
                        continue;
                    }
                    ctas.push((name, count));
                }
            }
        }
        // Afterwards, without faults, in a new session: every write that reported success is
        // there, once.
        proxy.set_faults(Faults::none());
        let fresh = Session::open_with("s3://lake/warehouse", &config(&server.endpoint()))
            .await
            .expect("reopen");
        for (table, want) in &keys {
            let got: Vec<i64> = rows(&fresh, &format!("SELECT k FROM curated.{table} ORDER BY k"))
                .await
                .expect("final read")
                .iter()
                .map(|r| r.parse().expect("key"))
                .collect();
            let mut want = want.clone();
            want.sort_unstable();
            tally.lost_writes += want.iter().filter(|k| !got.contains(k)).count();
            tally.extra_rows += got.len().saturating_sub(want.len() - want.iter().filter(|k| !got.contains(k)).count());
        }
        for (name, count) in &ctas {
            match rows(&fresh, &format!("SELECT count(*) FROM curated.{name}")).await {
                Ok(got) if got == [count.to_string()] => {}
                Ok(got) => {
                    tally.wrong_answers += 1;
                    eprintln!("curated.{name} holds {got:?} rows, expected {count}");
                }
                Err(e) => {
                    tally.lost_writes += 1;
                    eprintln!("curated.{name} is gone: {e}");
                }
            }
        }
        tally
    });
    let stats = proxy.stats();
    eprintln!("{tally:#?}\n{stats:?}");
    assert!(
        stats.truncations > 0 && stats.drops > 0 && stats.errors > 0,
        "{stats:?}"
    );
    assert_eq!(tally.wrong_answers, 0, "{tally:?}");
    assert_eq!(tally.lost_writes, 0, "{tally:?}");
    assert_eq!(tally.extra_rows, 0, "{tally:?}");
}
