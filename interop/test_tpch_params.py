"""`benches/tpch_params.py`: the substitution parameters follow the TPC-H specification's rules,
its word lists are the values the generator writes, and the queries with other parameters
give DuckDB's answers on the same files, as the standard ones do (test_tpch.py)."""
import datetime
import os
import subprocess
import sys

import pytest

from conftest import ROOT, Strata

sys.path.insert(0, os.path.join(ROOT, "benches"))
import engines  # noqa: E402
import tpch_params as tp  # noqa: E402

SEEDS = [1, 7, 11, 29, 101]


def test_seed_zero_is_the_files():
    for name, sql in tp.queries(0, 1).items():
        assert sql == open(os.path.join(ROOT, "benches", "tpch", name + ".sql")).read()


@pytest.mark.parametrize("seed", SEEDS)
def test_other_seeds_change_the_text(seed):
    standard, standard_params = tp.queries(0, 1), tp.parameters(0, 1)
    drawn, params = tp.queries(seed, 1), tp.parameters(seed, 1)
    assert sorted(drawn) == [f"q{n:02d}" for n in range(1, 23)]
    for name, sql in drawn.items():
        # A seed may draw a query's standard values by chance (Q14's month: 1 in 60).
        if params[name] != standard_params[name]:
            assert sql != standard[name], f"{name}: seed {seed} drew {params[name]} but left the standard text"
    assert tp.queries(seed, 1) == drawn, "the same seed must give the same queries"


def test_every_query_takes_other_values():
    standard = tp.queries(0, 1)
    for name in standard:
        assert any(tp.queries(seed, 1)[name] != standard[name] for seed in SEEDS), name


def test_a_missing_fragment_is_an_error(tmp_path):
    for name in tp.QUERIES:
        text = open(os.path.join(ROOT, "benches", "tpch", name + ".sql")).read()
        (tmp_path / (name + ".sql")).write_text(text.replace("'BUILDING'", "'MACHINERY'"))
    with pytest.raises(ValueError, match="q03"):
        tp.queries(5, 1, str(tmp_path))


@pytest.mark.parametrize("seed", range(1, 60))
def test_parameters_follow_the_rules(seed):
    p = tp.parameters(seed, 10)
    nations = dict(tp.NATIONS)
    assert 60 <= p["q01"]["DELTA"] <= 120
    assert 1 <= p["q02"]["SIZE"] <= 50 and p["q02"]["TYPE"] in tp.TYPE_SYLLABLE_3
    assert p["q03"]["DATE"].year == 1995 and p["q03"]["DATE"].month == 3
    assert datetime.date(1993, 1, 1) <= p["q04"]["DATE"] <= datetime.date(1997, 10, 1)
    assert p["q04"]["DATE"].day == 1 and p["q15"]["DATE"].day == 1
    for q in ("q05", "q06", "q12", "q20"):
        assert p[q]["DATE"].month == 1 and p[q]["DATE"].day == 1 and 1993 <= p[q]["DATE"].year <= 1997
    assert p["q06"]["DISCOUNT"] in [f"0.0{d}" for d in range(2, 10)] and p["q06"]["QUANTITY"] in (24, 25)
    assert p["q07"]["NATION1"] != p["q07"]["NATION2"]
    assert tp.REGIONS[nations[p["q08"]["NATION"]]] == p["q08"]["REGION"]
    assert datetime.date(1993, 2, 1) <= p["q10"]["DATE"] <= datetime.date(1995, 1, 1)
    assert p["q11"]["FRACTION"] == "0.00001"
    assert p["q12"]["SHIPMODE1"] != p["q12"]["SHIPMODE2"]
    assert 1993 <= p["q14"]["DATE"].year <= 1997
    sizes = p["q16"]["SIZES"]
    assert len(set(sizes)) == 8 and all(1 <= s <= 50 for s in sizes)
    assert len(p["q16"]["TYPE"].split()) == 2
    assert 312 <= p["q18"]["QUANTITY"] <= 315
    q19 = p["q19"]
    assert 1 <= q19["QUANTITY1"] <= 10 and 10 <= q19["QUANTITY2"] <= 20 and 20 <= q19["QUANTITY3"] <= 30
    for brand in (q19["BRAND1"], q19["BRAND2"], q19["BRAND3"], p["q16"]["BRAND"], p["q17"]["BRAND"]):
        assert brand[:6] == "Brand#" and brand[6] in "12345" and brand[7] in "12345"
    codes = p["q22"]["CODES"]
    assert len(set(codes)) == 7 and all(10 <= c <= 34 for c in codes)


@pytest.fixture(scope="module")
def tpch(tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("tpch") / "warehouse")
    out = subprocess.run([s.binary, "--warehouse", s.warehouse, "tpch", "gen", "--sf", "0.01"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return s, engines.duckdb_connect(engines.zone_tables(s.warehouse))


def test_word_lists_are_the_generated_values(tpch):
    _, con = tpch

    def values(sql):
        return {r[0] for r in con.execute(sql).fetchall()}

    assert values("SELECT DISTINCT c_mktsegment FROM customer") == set(tp.SEGMENTS)
    assert values("SELECT DISTINCT l_shipmode FROM lineitem") == set(tp.SHIP_MODES)
    assert {tuple(r) for r in con.execute(
        "SELECT n_name, n_regionkey FROM nation").fetchall()} == set(tp.NATIONS)
    assert [r[0] for r in con.execute("SELECT r_name FROM region ORDER BY r_regionkey").fetchall()] == tp.REGIONS
    words = values("SELECT DISTINCT unnest(string_split(p_name, ' ')) FROM part")
    assert words == set(tp.COLORS)
    types = values("SELECT DISTINCT p_type FROM part")
    assert types <= {f"{a} {b} {c}" for a in tp.TYPE_SYLLABLE_1 for b in tp.TYPE_SYLLABLE_2
                     for c in tp.TYPE_SYLLABLE_3}
    assert len(types) > 140  # 2,000 parts cover nearly all 150 types
    containers = values("SELECT DISTINCT p_container FROM part")
    assert containers == {f"{a} {b}" for a in tp.CONTAINER_SYLLABLE_1 for b in tp.CONTAINER_SYLLABLE_2}
    codes = values("SELECT DISTINCT CAST(substring(c_phone, 1, 2) AS INTEGER) FROM customer")
    assert codes == set(tp.COUNTRY_CODES)


@pytest.mark.parametrize("query", list(tp.QUERIES))
def test_seeded_query_matches_duckdb(tpch, query, tmp_path):
    s, con = tpch
    sql = tp.queries(7, 0.01)[query]
    path = tmp_path / (query + ".sql")
    path.write_text(sql)
    names, theirs = engines.duckdb_answer(con, sql.strip().rstrip(";"))
    ours = engines.strata_rows(s.binary, s.warehouse, "processed", str(path), names)
    assert engines.answers_match(ours, theirs), engines.differs(query, "strata", ours, theirs)
