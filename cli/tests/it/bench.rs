//! Benchmark data and runs: `strata ssb gen`, `strata tpch gen` in every format, and
//! `strata bench` generating what it needs and reporting its measurements as JSON.

use std::path::Path;

use super::{bench_query, bench_results, ok, rows_of, stderr, stdout, strata};

fn csv(warehouse: &Path, sql: &str) -> String {
    ok(&strata(warehouse, &["--format", "csv", "-c", sql]))
}

/// `strata ssb gen` at SF 0.01 registers the five tables at SSB's sizes, lineorder in one
/// `year=` folder per year, every fact key inside its dimension's key range.
#[test]
fn ssb_gen_registers_the_five_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ok(&strata(dir.path(), &["ssb", "gen", "--sf", "0.01"]));
    for line in [
        "processed.date: 2557 rows",
        "processed.supplier: 20 rows",
        "processed.customer: 300 rows",
        "processed.part: 2000 rows",
        "processed.lineorder: 60175 rows",
    ] {
        assert!(out.contains(line), "{out}");
    }
    assert_eq!(
        csv(
            dir.path(),
            "SELECT min(c_custkey) AS c0, max(c_custkey) AS c1, (SELECT max(s_suppkey) FROM processed.supplier) AS s1, \
             (SELECT max(p_partkey) FROM processed.part) AS p1, (SELECT min(d_datekey) FROM processed.date) AS d0, \
             (SELECT max(d_datekey) FROM processed.date) AS d1 FROM processed.customer"
        ),
        "c0,c1,s1,p1,d0,d1\n1,300,20,2000,19920101,19981231\n"
    );
    // Every line order finds its customer, supplier, part and dates.
    assert_eq!(
        csv(
            dir.path(),
            "SELECT count(*) AS n, count(DISTINCT lo.year) AS years FROM processed.lineorder lo \
             JOIN processed.customer c ON lo_custkey = c_custkey \
             JOIN processed.supplier s ON lo_suppkey = s_suppkey \
             JOIN processed.part p ON lo_partkey = p_partkey \
             JOIN processed.date d ON lo_orderdate = d_datekey \
             JOIN processed.date d2 ON lo_commitdate = d2.d_datekey"
        ),
        "n,years\n60175,7\n"
    );
    let out = csv(
        dir.path(),
        "SELECT p_mfgr, p_category, p_brand1, c_city, c_nation FROM processed.part, processed.customer \
         WHERE p_partkey = 1 AND c_custkey = 1",
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap_or_default().split(',').collect();
    assert_eq!(row.len(), 5, "{out}");
    assert!(row[0].starts_with("MFGR#") && row[0].len() == 6, "{out}");
    assert!(row[1].starts_with(row[0]) && row[1].len() == 7, "{out}");
    assert!(
        row[2].starts_with(row[1]) && (8..=9).contains(&row[2].len()),
        "{out}"
    );
    assert!(
        row[3].starts_with(&format!("{:<9.9}", row[4])) && row[3].len() == 10,
        "{out}"
    );
    // A filter on the year reads that year's folder only.
    let out = ok(&strata(
        dir.path(),
        &[
            "-c",
            "SELECT count(*) FROM processed.lineorder WHERE year = 1993",
        ],
    ));
    assert!(out.contains("; 1 file, "), "{out}");
    let out = ok(&strata(
        dir.path(),
        &["-c", "SELECT count(*) FROM processed.lineorder"],
    ));
    assert!(out.contains("; 7 files, "), "{out}");
    // Generating again in another format replaces the tables, Delta ones included.
    for format in ["delta", "json"] {
        ok(&strata(
            dir.path(),
            &["ssb", "gen", "--sf", "0.01", "--format", format],
        ));
        assert_eq!(
            csv(dir.path(), "SELECT count(*) AS n FROM processed.lineorder"),
            "n\n60175\n",
            "{format}"
        );
    }
}

/// `strata bench ssb` on an empty warehouse generates the tables first, runs all 13 queries
/// (each as it is in benches/ssb) and writes every measurement to JSON.
#[test]
fn bench_ssb_generates_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("ssb.json");
    let o = strata(
        dir.path(),
        &[
            "bench",
            "ssb",
            "--sf",
            "0.01",
            "--iterations",
            "2",
            "--output",
            results.to_str().unwrap_or_default(),
        ],
    );
    let out = ok(&o);
    assert!(stderr(&o).contains("generating SSB at scale factor 0.01"));
    assert!(
        out.contains("| q1.1 |") && out.contains("| q4.3 |"),
        "{out}"
    );
    let queries = bench_results(&results);
    let ids: Vec<&str> = queries
        .iter()
        .map(|q| q["query"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        [
            "1.1", "1.2", "1.3", "2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "3.4", "4.1", "4.2",
            "4.3"
        ]
    );
    // At SF 0.01 there are 20 suppliers: none in the United States, none in the two
    // British cities, none for brand MFGR#2239 in Europe.
    assert_eq!(
        rows_of(&queries),
        [1, 1, 1, 188, 27, 0, 60, 0, 0, 0, 28, 75, 12]
    );
    for q in &queries {
        for key in [
            "label",
            "cold_ms",
            "warm_best_ms",
            "files",
            "bytes",
            "files_total",
            "files_read",
            "files_pruned",
            "peak_memory_bytes",
        ] {
            assert!(!q[key].is_null(), "{key} missing in {q}");
        }
        assert_eq!(q["warm_ms"].as_array().map(Vec::len), Some(1), "{q}");
        // How the binary was built, which timings depend on: this test's is a debug build.
        let build = q["build"].as_str().unwrap_or_default();
        assert!(
            build.starts_with("debug build, ") && build.contains(std::env::consts::ARCH),
            "{q}"
        );
        assert_eq!(
            (q["suite"].as_str(), q["sf"].as_f64(), q["format"].as_str()),
            (Some("ssb"), Some(0.01), Some("parquet"))
        );
        assert_eq!(
            q["files_read"].as_u64().unwrap_or(0) + q["files_pruned"].as_u64().unwrap_or(0),
            q["files_total"].as_u64().unwrap_or(1),
            "{q}"
        );
    }
    assert!(queries[0]["peak_memory_bytes"].as_u64().unwrap_or(0) > 0);
    // lineorder is in 7 year= folders and `date` is one file. The queries filter on the date
    // dimension, and only the years they select are read: Q1.1 1993, Q1.3 a week of 1994,
    // Q3.1 1992–1997, Q4.2 1997–1998 (with the other tables' files); Q2.1 selects no year.
    let read = |id: &str| {
        queries
            .iter()
            .find(|q| q["query"].as_str() == Some(id))
            .and_then(|q| q["files_read"].as_u64())
    };
    assert_eq!(
        ["1.1", "1.3", "3.1", "4.2", "2.1"].map(read),
        [Some(2), Some(2), Some(9), Some(6), Some(10)],
        "files read by Q1.1, Q1.3, Q3.1, Q4.2, Q2.1"
    );
    // The queries run as they are in the REPL's zone.
    let args = bench_query("processed", "ssb/q1.1.sql");
    let o = strata(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(ok(&o).starts_with("revenue\n"), "{}", stdout(&o));
}

/// `tpch gen --format delta` and `--format json` make tables the TPC-H queries run on, with
/// the answers the Parquet tables give; `bench` regenerates only when asked for another
/// format.
#[test]
fn tpch_gen_delta_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("delta.json");
    let o = strata(
        dir.path(),
        &[
            "bench",
            "tpch",
            "--sf",
            "0.01",
            "--format",
            "delta",
            "--partitioned",
            "--queries",
            "1,6",
            "--iterations",
            "1",
            "--output",
            results.to_str().unwrap_or_default(),
        ],
    );
    ok(&o);
    let v = bench_results(&results);
    assert_eq!(rows_of(&v), vec![4, 1]);
    assert_eq!(v[0]["format"].as_str(), Some("delta"));
    // Q6 reads one year of lineitem's seven.
    assert_eq!(
        (v[1]["files_read"].as_u64(), v[1]["files_pruned"].as_u64()),
        (Some(1), Some(6)),
        "{}",
        v[1]
    );
    let described = ok(&strata(dir.path(), &["-c", "\\d processed.lineitem"]));
    assert!(
        described.contains("format:      DELTA") && described.contains("partitioned: year"),
        "{described}"
    );
    let answer = |zone: &str| {
        let args = bench_query(zone, "tpch/q06.sql");
        ok(&strata(
            dir.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
    };
    assert_eq!(answer("processed"), "revenue\n1193053.2253\n");
    // The tables are there at this scale factor: nothing is generated again.
    let o = strata(
        dir.path(),
        &["bench", "tpch", "--queries", "6", "--iterations", "1"],
    );
    ok(&o);
    assert!(!stderr(&o).contains("generating"), "{}", stderr(&o));

    // NDJSON files land in the raw zone and are read schema-on-read.
    let out = ok(&strata(
        dir.path(),
        &[
            "tpch", "gen", "--sf", "0.01", "--format", "json", "--zone", "raw",
        ],
    ));
    assert!(out.contains("raw.lineitem: 60175 rows"), "{out}");
    // Q1's groups and counts match exactly; its sums are over numbers read as floats
    // (schema-on-read), so they are not compared here.
    let counts = |zone: &str| -> Vec<String> {
        let args = bench_query(zone, "tpch/q01.sql");
        ok(&strata(
            dir.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{}", f[0], f[1], f[f.len() - 1])
        })
        .collect()
    };
    assert_eq!(counts("raw"), counts("processed"));
    let o = strata(
        dir.path(),
        &[
            "bench",
            "tpch",
            "--zone",
            "raw",
            "--queries",
            "1",
            "--iterations",
            "1",
        ],
    );
    assert!(ok(&o).contains("| q01 | "), "{}", stdout(&o));
    assert!(
        ok(&strata(dir.path(), &["-c", "\\d raw.lineitem"])).contains("format:      JSON"),
        "raw.lineitem is NDJSON"
    );
}

/// Scale factors outside 0.01..100 are refused, with the range in the message.
#[test]
fn out_of_range_scale_factors_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["tpch", "gen", "--sf", "0.001"][..],
        &["ssb", "gen", "--sf", "101"],
        &["bench", "ssb", "--sf", "1000"],
    ] {
        let o = strata(dir.path(), args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&o).contains("out of range; use 0.01 to 100"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = strata(dir.path(), &["tpch", "gen", "--format", "orc"]);
    assert!(
        stderr(&o).contains("parquet, delta or json"),
        "{}",
        stderr(&o)
    );
    let o = strata(
        dir.path(),
        &[
            "ssb", "gen", "--sf", "0.01", "--format", "delta", "--zone", "raw",
        ],
    );
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
    // An unknown query is refused before any data is generated.
    let o = strata(dir.path(), &["bench", "ssb", "--queries", "9.9"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("SSB has no query 9.9") && !stderr(&o).contains("generating"),
        "{}",
        stderr(&o)
    );
}
