"""Seeded random queries (randsql.py) over TPC-H SF 0.01 give DuckDB's answers on the same
Parquet files: strata runs them through `strata serve` and the ADBC Flight SQL driver.
Every mismatch, and every query strata fails where DuckDB answers, is listed with its seed,
its SQL and both answers. `benches/random_queries.py` is the big run."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, Strata

sys.path.insert(0, os.path.join(ROOT, "benches"))
import engines  # noqa: E402
import randsql  # noqa: E402

SEED = 25
COUNT = 250


@pytest.fixture(scope="module")
def tpch(tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("random") / "warehouse")
    out = subprocess.run([s.binary, "--warehouse", s.warehouse] + engines.SUITES["tpch"].gen_args(0.01, "parquet"),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return s, engines.duckdb_connect(engines.zone_tables(s.warehouse))


def test_random_queries_match_duckdb(tpch):
    s, con = tpch
    gen = randsql.Generator(SEED, randsql.sample_values(con))
    server = randsql.StrataServer(s.binary, s.warehouse)
    outcomes = {}
    failures = []
    try:
        for i in range(COUNT):
            sql, ordered = gen.query()
            theirs, theirs_err = randsql.duckdb_query(con, sql)
            ours, ours_err = server.query(sql)
            outcome = randsql.classify(ours, ours_err, theirs, theirs_err, ordered)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome not in ("agree", "both_failed"):
                failures.append(f"query {i} of seed {SEED}: {outcome}\n{sql};\n"
                                f"  strata: {ours_err or randsql.show(ours)}\n"
                                f"  duckdb: {theirs_err or randsql.show(theirs)}")
    finally:
        server.stop()
    # The run proves something only when most queries are answered by both.
    assert outcomes.get("agree", 0) >= COUNT * 0.6 or failures, outcomes
    assert not failures, f"{len(failures)} of {COUNT} random queries differ from DuckDB " \
        f"({outcomes}):\n\n" + "\n\n".join(failures)
