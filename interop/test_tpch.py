"""The 22 TPC-H queries in benches/tpch give DuckDB's answers on the same Parquet files that
`strata tpch gen` wrote (numbers within 1e-4 relative, strings exact): plain Parquet,
lineitem and orders in year= folders, and Delta tables partitioned by year (DuckDB reads
the files of their current version, as the deltalake package lists them)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, Strata

sys.path.insert(0, os.path.join(ROOT, "benches"))
import engines  # noqa: E402

SUITE = engines.SUITES["tpch"]
LAYOUTS = ["parquet", "partitioned", "delta-partitioned"]


@pytest.fixture(scope="module", params=LAYOUTS)
def tpch(request, tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("tpch") / "warehouse")
    out = subprocess.run([s.binary, "--warehouse", s.warehouse] + SUITE.gen_args(0.01, request.param),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return s, engines.duckdb_connect(engines.zone_tables(s.warehouse))


@pytest.mark.parametrize("query", SUITE.queries, ids=[SUITE.label(q) for q in SUITE.queries])
def test_query_matches_duckdb(tpch, query):
    s, con = tpch
    names, theirs = engines.duckdb_answer(con, engines.sql_text(query))
    assert theirs, f"{query}: DuckDB returned no rows; the check would prove nothing"
    ours = engines.strata_rows(s.binary, s.warehouse, "processed", query, names)
    assert engines.answers_match(ours, theirs), engines.differs(SUITE.label(query), "strata", ours, theirs)


def test_all_queries_present():
    assert len(SUITE.queries) == 22
