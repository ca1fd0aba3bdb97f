"""Delta tables strata writes are read by the deltalake package, and the other way round;
DuckDB reads the hive-partitioned Parquet strata writes."""
import csv
import io

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_deltalake_reads_strata_tables_after_each_change(strata):
    strata.run(
        "CREATE TABLE curated.fact_sales PARTITIONED BY (month) AS "
        "SELECT sale_id, store_id, quantity, amount, month FROM raw.sales"
    )
    path = strata.path("curated", "fact_sales")
    dt = DeltaTable(path)
    assert dt.metadata().partition_columns == ["month"]
    t = dt.to_pyarrow_table()
    assert t.num_rows == 120
    assert sorted(set(t.column("month").to_pylist())) == [1, 2, 3, 4, 5, 6]

    strata.run("UPDATE curated.fact_sales SET quantity = 0 WHERE month = 1")
    strata.run("DELETE FROM curated.fact_sales WHERE month = 2")
    strata.run(
        "MERGE INTO curated.fact_sales t USING (SELECT 9999 AS sale_id, 10 AS store_id, 1 AS quantity, 5.0 AS amount, 6 AS month) s "
        "ON t.sale_id = s.sale_id WHEN NOT MATCHED THEN INSERT (sale_id, store_id, quantity, amount, month) "
        "VALUES (s.sale_id, s.store_id, s.quantity, s.amount, s.month)"
    )
    strata.run("OPTIMIZE curated.fact_sales")
    ours = rows(strata.run("SELECT count(*) AS n, sum(quantity) AS q FROM curated.fact_sales"))[0]
    t = DeltaTable(path).to_pyarrow_table()
    assert t.num_rows == int(ours["n"]) == 101
    assert sum(t.column("quantity").to_pylist()) == int(ours["q"])
    assert 0 == sum(q for q, m in zip(t.column("quantity").to_pylist(), t.column("month").to_pylist()) if m == 1)
    assert 2 not in set(t.column("month").to_pylist())
    assert DeltaTable(path).version() == int(rows(strata.run("DESCRIBE HISTORY curated.fact_sales"))[0]["version"])


def test_strata_reads_tables_deltalake_wrote_and_changed(strata, tmp_path):
    path = str(tmp_path / "events")
    data = pa.table({
        "id": pa.array(range(10), pa.int64()),
        "kind": pa.array(["a", "b"] * 5),
        "day": pa.array(["2026-01-01"] * 5 + ["2026-01-02"] * 5),
    })
    write_deltalake(path, data, partition_by=["day"])
    dt = DeltaTable(path)
    dt.delete("id < 2")
    dt.update(updates={"kind": "'z'"}, predicate="id = 9")
    strata.run(f"CREATE EXTERNAL TABLE processed.events STORED AS DELTA LOCATION '{path}'")
    got = rows(strata.run("SELECT id, kind, day FROM processed.events ORDER BY id"))
    expected = DeltaTable(path).to_pyarrow_table().sort_by("id").to_pylist()
    assert [(int(r["id"]), r["kind"], r["day"]) for r in got] == [
        (r["id"], r["kind"], r["day"]) for r in expected
    ]
    assert len(got) == 8
    # A later write by the other client is seen without re-registering.
    write_deltalake(path, pa.table({"id": pa.array([100], pa.int64()), "kind": ["n"], "day": ["2026-01-03"]}), mode="append")
    assert rows(strata.run("SELECT count(*) AS n FROM processed.events WHERE day = '2026-01-03'"))[0]["n"] == "1"
    old = rows(strata.run("SELECT count(*) AS n FROM processed.events VERSION AS OF 0"))[0]["n"]
    assert old == "10"


def test_duckdb_reads_strata_parquet(strata):
    strata.run(
        "CREATE TABLE processed.sales PARTITIONED BY (month) AS "
        "SELECT sale_id, store_id, amount, month FROM raw.sales"
    )
    path = strata.path("processed", "sales")
    con = duckdb.connect()
    n, total, months = con.execute(
        f"SELECT count(*), round(sum(amount), 2), count(DISTINCT month) "
        f"FROM read_parquet('{path}/*/*.parquet', hive_partitioning = true)"
    ).fetchone()
    ours = rows(strata.run("SELECT count(*) AS n, round(sum(amount), 2) AS s FROM processed.sales"))[0]
    assert (n, months) == (int(ours["n"]), 6)
    assert abs(total - float(ours["s"])) < 1e-6
