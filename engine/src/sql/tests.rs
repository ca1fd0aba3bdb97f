//! The parser: each statement family, time travel, and where syntax errors point.

use super::*;

fn one(sql: &str) -> Statement {
    parse_one(sql).expect("parses").statement
}

#[test]
fn create_table_as_with_format_and_partitions() {
    let Statement::CreateTableAs(c) = one(
        "CREATE TABLE curated.Fact STORED AS delta PARTITIONED BY (year, \"Month\") AS SELECT * FROM raw.sales",
    ) else {
        panic!("not a CTAS")
    };
    assert_eq!(name_parts(&c.name), vec!["curated", "fact"]);
    assert_eq!(c.format.as_deref(), Some("DELTA"));
    assert_eq!(c.partition_by, vec!["year", "Month"]);
    assert_eq!(c.query.to_string(), "SELECT * FROM raw.sales");
    assert!(!c.materialized && !c.or_replace);

    let Statement::CreateTableAs(c) = one(
        "CREATE TABLE curated.t (a INT, \"B\" DECIMAL(10, 2)) STORED AS DELTA PARTITIONED BY (a)",
    ) else {
        panic!("not a CTAS")
    };
    assert_eq!(
        c.query.to_string(),
        "SELECT CAST(NULL AS INT) AS \"a\", CAST(NULL AS DECIMAL(10,2)) AS \"B\" WHERE false"
    );
    let Statement::CreateTableAs(c) =
        one("create or replace table p as with x as (select 1) select * from x")
    else {
        panic!("not a CTAS")
    };
    assert!(c.or_replace);
    assert_eq!(c.query.to_string(), "WITH x AS (SELECT 1) SELECT * FROM x");
    let Statement::CreateTableAs(c) =
        one("CREATE MATERIALIZED VIEW curated.daily PARTITIONED BY (day) AS SELECT 1 AS day")
    else {
        panic!("not a materialized view")
    };
    assert!(c.materialized);
    assert_eq!(c.partition_by, vec!["day"]);
    // DataFusion's own CREATE statements stay DataFusion's.
    assert!(matches!(
        one("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 'x'"),
        Statement::DataFusion(_)
    ));
    assert!(matches!(
        one("CREATE VIEW v AS SELECT 1"),
        Statement::DataFusion(_)
    ));
}

#[test]
fn checks_split_their_subject_from_the_expectation() {
    let Statement::Check(c) =
        one("CHECK 'no nulls' EXPECT (SELECT count(*) FROM t WHERE k IS NULL) = 0;")
    else {
        panic!("not a check")
    };
    assert_eq!(c.name, "no nulls");
    assert_eq!(
        c.subject.map(|q| q.to_string()).as_deref(),
        Some("SELECT count(*) FROM t WHERE k IS NULL")
    );
    assert_eq!(c.expectation, "= 0");
    let Statement::Check(c) = one("check 'rows' expect (select count(*) from t) between 1 and 10")
    else {
        panic!("not a check")
    };
    assert_eq!(c.expectation, "between 1 and 10");
    let Statement::Check(c) = one("CHECK 'plain' EXPECT 1 < 2") else {
        panic!("not a check")
    };
    assert!(c.subject.is_none());
    assert_eq!(c.expectation, "1 < 2");
    let e = parse_one("CHECK no_quotes EXPECT 1 = 1").expect_err("needs a quoted name");
    assert!(
        e.to_string()
            .contains("write a check as CHECK 'name' EXPECT"),
        "{e}"
    );
}

#[test]
fn strata_statements() {
    assert!(matches!(one("SHOW ZONES"), Statement::ShowZones));
    assert!(
        matches!(one("show lineage curated.b"), Statement::ShowLineage(n) if name_parts(&n) == ["curated", "b"])
    );
    assert!(matches!(one("USE ZONE Raw"), Statement::Use(z) if normalize(&z) == "raw"));
    assert!(matches!(one("use processed;"), Statement::Use(z) if z.value == "processed"));
    assert!(matches!(one("REFRESH ZONE raw"), Statement::RefreshZone(_)));
    assert!(matches!(
        one("REFRESH TABLE raw.t"),
        Statement::RefreshTable(_)
    ));
    assert!(matches!(
        one("REFRESH MATERIALIZED VIEW curated.v"),
        Statement::RefreshMaterializedView(_)
    ));
    assert!(matches!(
        one("DROP MATERIALIZED VIEW IF EXISTS curated.v"),
        Statement::DropMaterializedView {
            if_exists: true,
            ..
        }
    ));
    assert!(matches!(
        one("DROP TABLE curated.v"),
        Statement::DataFusion(_)
    ));
    assert!(matches!(
        one("DESCRIBE HISTORY curated.t"),
        Statement::DescribeHistory(_)
    ));
    assert!(matches!(
        one("DESCRIBE curated.t"),
        Statement::DataFusion(_)
    ));
    let Statement::Optimize(o) =
        one("OPTIMIZE curated.t WHERE year = 2024 AND m = '01' ZORDER BY (a, b)")
    else {
        panic!("not OPTIMIZE")
    };
    assert_eq!(
        o.filters,
        vec![("year".into(), "2024".into()), ("m".into(), "01".into())]
    );
    assert_eq!(o.zorder, vec!["a", "b"]);
    let Statement::Vacuum(v) = one("VACUUM curated.t RETAIN 0 HOURS DRY RUN FORCE") else {
        panic!("not VACUUM")
    };
    assert_eq!((v.retain_hours, v.dry_run, v.force), (Some(0), true, true));
    let Statement::Restore(r) = one("RESTORE TABLE curated.t TO VERSION AS OF 2") else {
        panic!("not RESTORE")
    };
    assert_eq!(r.to, AsOfClause::Version(2));
    let Statement::Restore(r) = one("RESTORE TABLE t TO TIMESTAMP AS OF '2026-01-01'") else {
        panic!("not RESTORE")
    };
    assert_eq!(r.to, AsOfClause::Timestamp("2026-01-01".into()));
    assert!(matches!(
        one("UPDATE curated.t SET a = 1"),
        Statement::Update(_)
    ));
    assert!(matches!(
        one("DELETE FROM curated.t WHERE a = 1"),
        Statement::Delete(_)
    ));
    assert!(matches!(
        one("INSERT OVERWRITE TABLE curated.t SELECT 1"),
        Statement::Insert(_)
    ));
    assert!(matches!(
        one("MERGE INTO curated.t USING s ON t.a = s.a WHEN MATCHED THEN DELETE"),
        Statement::Merge(_)
    ));
}

#[test]
fn time_travel_is_part_of_the_table_reference() {
    let q = |sql: &str| match one(sql) {
        Statement::DataFusion(s) => s.to_string(),
        other => panic!("not a query: {other:?}"),
    };
    assert_eq!(
        q("SELECT * FROM curated.Sales VERSION AS OF 3 WHERE x = 1"),
        "SELECT * FROM curated.\"sales@v3\" WHERE x = 1"
    );
    assert_eq!(
        q("select * from t timestamp as of '2026-01-01 00:00:00' s"),
        "SELECT * FROM \"t@t2026-01-01 00:00:00\" s"
    );
    assert_eq!(
        q("SELECT 'VERSION AS OF 3'"),
        "SELECT 'VERSION AS OF 3' AS \"'VERSION AS OF 3'\""
    );
    assert_eq!(
        q("SELECT \"a\"\"b\" FROM t VERSION AS OF 1 WHERE name = 'it''s'"),
        "SELECT \"a\"\"b\" FROM \"t@v1\" WHERE name = 'it''s'"
    );
}

#[test]
fn statements_keep_their_own_text_and_line() {
    let all =
        parse("SELECT 1;\n\n  CREATE TABLE curated.t AS\n SELECT 2 ;SHOW ZONES").expect("parses");
    let texts: Vec<(&str, u64)> = all.iter().map(|p| (p.text.as_str(), p.line)).collect();
    assert_eq!(
        texts,
        vec![
            ("SELECT 1", 1),
            ("CREATE TABLE curated.t AS\n SELECT 2", 3),
            ("SHOW ZONES", 4)
        ]
    );
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let Err(Error::Syntax {
        line,
        column,
        message,
    }) = parse("SELECT 1;\nSELEC 2")
    else {
        panic!("a syntax error")
    };
    assert_eq!((line, column), (Some(2), Some(1)), "{message}");
    let Err(Error::Syntax { line, column, .. }) = parse("SELECT a FROM t WHERE") else {
        panic!("a syntax error")
    };
    assert_eq!(line, Some(1));
    assert!(column.is_some());
    assert!(parse_one("SELECT 1; SELECT 2").is_err());
    assert!(parse_one("  ;").is_err());
}

#[test]
fn effects_tell_reads_from_writes() {
    let effect = |sql: &str| one(sql).effect();
    assert_eq!(effect("SELECT 1"), Effect::Query);
    assert_eq!(effect("EXPLAIN SELECT 1"), Effect::Query);
    assert_eq!(effect("EXPLAIN ANALYZE SELECT 1"), Effect::Read);
    assert_eq!(effect("SHOW TABLES"), Effect::Query);
    assert_eq!(effect("SHOW ZONES"), Effect::Read);
    assert_eq!(effect("SHOW LINEAGE curated.b"), Effect::Read);
    assert_eq!(effect("DESCRIBE HISTORY curated.b"), Effect::Read);
    assert_eq!(effect("USE raw"), Effect::Session);
    assert_eq!(
        effect("SET datafusion.execution.batch_size = 1"),
        Effect::Session
    );
    assert_eq!(effect("INSERT INTO curated.t SELECT 1"), Effect::Write);
    assert_eq!(effect("CREATE TABLE curated.t AS SELECT 1"), Effect::Write);
    assert_eq!(effect("COPY (SELECT 1) TO 'x.csv'"), Effect::Write);
    assert_eq!(effect("OPTIMIZE curated.t"), Effect::Write);
    assert_eq!(
        effect("EXPLAIN ANALYZE INSERT INTO curated.t SELECT 1"),
        Effect::Write
    );
}
