"""The 22 TPC-H queries in benches/tpch give DuckDB's answers on the same Parquet files that
`strata tpch gen` wrote (numbers within 1e-4 relative, strings exact)."""
import datetime
import decimal
import glob
import json
import os
import subprocess

import duckdb
import pytest

from conftest import ROOT, Strata

QUERIES = sorted(glob.glob(os.path.join(ROOT, "benches", "tpch", "q*.sql")))
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


@pytest.fixture(scope="module")
def tpch(tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("tpch") / "warehouse")
    out = subprocess.run([s.binary, "--warehouse", s.warehouse, "tpch", "gen", "--sf", "0.01"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    con = duckdb.connect()
    for t in TABLES:
        files = os.path.join(s.warehouse, "processed", t, "*.parquet")
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{files}')")
    return s, con


def normalize(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return str(value)


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-4 * max(1.0, abs(a), abs(b))
    return a == b


def rows_equal(ours, theirs):
    return len(ours) == len(theirs) and all(
        len(x) == len(y) and all(same(p, q) for p, q in zip(x, y)) for x, y in zip(ours, theirs)
    )


@pytest.mark.parametrize("query", QUERIES, ids=[os.path.basename(q) for q in QUERIES])
def test_query_matches_duckdb(tpch, query):
    s, con = tpch
    out = subprocess.run([s.binary, "--warehouse", s.warehouse, "--zone", "processed", "--format", "ndjson",
                          "-f", query], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    sql = open(query).read()
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    theirs = [[normalize(v) for v in row] for row in result.fetchall()]
    # JSON output leaves NULL fields out, so columns are looked up by name.
    ours = [[normalize(json.loads(line).get(n)) for n in names] for line in out.stdout.splitlines() if line]
    assert theirs, f"{query}: DuckDB returned no rows; the check would prove nothing"
    if not rows_equal(ours, theirs):
        # Rows tied on the ORDER BY keys may come in any order.
        key = lambda r: [str(v) for v in r]  # noqa: E731
        assert rows_equal(sorted(ours, key=key), sorted(theirs, key=key)), (
            f"{os.path.basename(query)} differs:\nstrata: {ours[:5]}\nduckdb: {theirs[:5]}"
        )
