"""Seeded random queries (randsql.py) over TPC-H SF 0.01 give DuckDB's answers on the same
files, as Parquet and as Delta tables (whose columns are declared NOT NULL, which changes
how NULLs are planned): strata runs them through `strata serve` and the ADBC Flight SQL
driver. Every mismatch, and every query strata fails where DuckDB answers, is listed with
its seed, its SQL and both answers. `benches/random_queries.py` is the big run."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, Strata

sys.path.insert(0, os.path.join(ROOT, "benches"))
import engines  # noqa: E402
import randsql  # noqa: E402

COUNT = 100  # per layout
SEEDS = {"parquet": 25, "delta": 26}


@pytest.fixture(scope="module", params=list(SEEDS))
def tpch(request, tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("random") / "warehouse")
    out = subprocess.run([s.binary, "--warehouse", s.warehouse] + engines.SUITES["tpch"].gen_args(0.01, request.param),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return request.param, s, engines.duckdb_connect(engines.zone_tables(s.warehouse))


def test_random_queries_match_duckdb(tpch):
    layout, s, con = tpch
    seed = SEEDS[layout]
    gen = randsql.Generator(seed, randsql.sample_values(con))
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
                failures.append(f"query {i} of seed {seed} ({layout}): {outcome}\n{sql};\n"
                                f"  strata: {ours_err or randsql.show(ours)}\n"
                                f"  duckdb: {theirs_err or randsql.show(theirs)}")
    finally:
        server.stop()
    assert not failures, f"{len(failures)} of {COUNT} random queries on {layout} differ from DuckDB " \
        f"({outcomes}):\n\n" + "\n\n".join(failures)
    # The run proves something only when most queries are answered by both.
    assert outcomes.get("agree", 0) >= COUNT * 0.9, outcomes


def test_the_comparison_tells_answers_apart():
    from decimal import Decimal as D

    ordered, unordered = True, False
    # decimals exactly, a float against a decimal within the decimal's last digit
    assert randsql.classify([[D("1.10")]], None, [[D("1.1")]], None, unordered) == "agree"
    assert randsql.classify([[D("1.11")]], None, [[D("1.10")]], None, unordered) == "wrong"
    assert randsql.classify([[D("25.771748")]], None, [[25.7717483]], None, unordered) == "agree"
    assert randsql.classify([[D("25.771748")]], None, [[25.7717503]], None, unordered) == "wrong"
    assert randsql.classify([[1.0 + 1e-12]], None, [[1.0]], None, unordered) == "agree"
    assert randsql.classify([[1.0 + 1e-6]], None, [[1.0]], None, unordered) == "wrong"
    # an integer is not the decimal it was truncated from
    assert randsql.classify([[4746]], None, [[D("4746.66")]], None, unordered) == "wrong"
    # NULL is only NULL; strings are not numbers
    assert randsql.classify([[None]], None, [[0]], None, unordered) == "wrong"
    assert randsql.classify([["1"]], None, [[1]], None, unordered) == "wrong"
    # rows as multisets, or in order when the ORDER BY is total
    assert randsql.classify([[1], [2], [2]], None, [[2], [1], [2]], None, unordered) == "agree"
    assert randsql.classify([[1], [2]], None, [[2], [1]], None, ordered) == "wrong"
    assert randsql.classify([[1], [1]], None, [[1]], None, unordered) == "wrong"
    # errors
    assert randsql.classify(None, "plan failed", [[1]], None, unordered) == "strata_failed"
    assert randsql.classify(None, "x", None, "y", unordered) == "both_failed"
    assert randsql.classify([[5]], None, None, "Binder Error: no such column", unordered) == "duckdb_failed"
    assert randsql.classify([[-5]], None, None, "Overflow in multiplication of INT32", unordered) == "wrong"
    assert randsql.classify(None, "integer overflow in sum", [[2 ** 64]], None, unordered) == "agree"
    assert randsql.classify(None, "integer overflow in sum", [[2 ** 62]], None, unordered) == "strata_failed"


def test_the_generator_is_seeded():
    samples = {name: [1, 2, 3] if ty == randsql.INT else
               [randsql.decimal.Decimal("1.50"), randsql.decimal.Decimal("2.25")] if ty == randsql.DEC else
               [randsql.datetime.date(1995, 1, 1)] if ty == randsql.DATE else ["A", "B%_x"]
               for name, (_, ty, _) in randsql.COLUMNS.items()}
    a, b, c = randsql.Generator(7, samples), randsql.Generator(7, samples), randsql.Generator(8, samples)
    queries = [a.query() for _ in range(50)]
    assert queries == [b.query() for _ in range(50)]
    assert queries != [c.query() for _ in range(50)]
