"""The 13 Star Schema Benchmark queries in benches/ssb give DuckDB's answers on the same
Parquet files that `strata ssb gen` wrote (lineorder in year= folders; numbers within 1e-4
relative, strings exact)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, Strata

sys.path.insert(0, os.path.join(ROOT, "benches"))
import engines  # noqa: E402

SUITE = engines.SUITES["ssb"]
TABLES = {"lineorder", "customer", "supplier", "part"}


@pytest.fixture(scope="module")
def ssb(tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("ssb") / "warehouse")
    out = subprocess.run([s.binary, "--warehouse", s.warehouse] + SUITE.gen_args(0.01),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    tables = engines.zone_tables(s.warehouse)
    assert TABLES <= set(tables), f"ssb gen made {sorted(tables)}"
    assert [k for k, _ in tables["lineorder"].partitions] == ["year"], "lineorder is not in year= folders"
    return s, engines.duckdb_connect(tables)


def test_all_queries_present():
    assert [SUITE.label(q) for q in SUITE.queries] == [
        "q1.1", "q1.2", "q1.3", "q2.1", "q2.2", "q2.3", "q3.1", "q3.2", "q3.3", "q3.4", "q4.1", "q4.2", "q4.3"]


@pytest.mark.parametrize("query", SUITE.queries, ids=[SUITE.label(q) for q in SUITE.queries])
def test_query_matches_duckdb(ssb, query):
    s, con = ssb
    names, theirs = engines.duckdb_answer(con, engines.sql_text(query))
    ours = engines.strata_rows(s.binary, s.warehouse, "processed", query, names)
    # At SF 0.01 a selective query (Q3.4: two cities, one month) may rightly find nothing;
    # then strata must find nothing too.
    assert engines.answers_match(ours, theirs), engines.differs(SUITE.label(query), "strata", ours, theirs)
