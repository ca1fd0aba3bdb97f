"""TPC-H substitution parameters from a seed, drawn by the rules of the TPC-H specification.

    python benches/tpch_params.py --seed 7 --sf 1 --out DIR    # writes DIR/q01.sql … q22.sql
    python benches/tpch_params.py --seed 7 --sf 10             # prints the parameters only

The query files `benches/tpch/q01.sql … q22.sql` hold the specification's validation
parameters (clause 2.4.N.3 of each query gives them and the rules for other values). A seed
other than 0 draws every parameter of every query by those rules, from the specification's
word lists (segments, regions, nations and their regions, the syllables of part types and
containers, ship modes, the 92 words of part names, Q13's words), and replaces the
validation values in the query text. Seed 0 gives the files unchanged: the standard set.

The replacement is of exact text: each query names the fragments of its text that hold
parameters, written as templates (`INTERVAL '{DELTA}' DAY`). Filled with the validation
values, a fragment must occur in the file, or the script stops with an error naming the
query and the fragment; so a query file that changes cannot silently keep a standard value.
All fragments of a query are replaced in one pass, so a value drawn for one cannot be taken
for another's standard text.

Each query draws from a generator of its own, seeded by the seed and the query's number: the
same seed gives the same parameters on any machine and Python 3 version, and a change to one
query's rule leaves the others' values as they were. Q11's FRACTION is 0.0001 / SF as the
specification says (seed 0 keeps the file's 0.0001 whatever the scale factor).

    import tpch_params
    sql = tpch_params.queries(7, 10)["q05"]
"""
import argparse
import datetime
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
QUERY_DIR = os.path.join(HERE, "tpch")

# ---- the specification's word lists (clause 4.2.2.13 and 4.2.3) ------------------------------

SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "MACHINERY", "HOUSEHOLD"]
REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
# Each nation with its N_REGIONKEY, in N_NATIONKEY order.
NATIONS = [
    ("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1), ("CANADA", 1), ("EGYPT", 4),
    ("ETHIOPIA", 0), ("FRANCE", 3), ("GERMANY", 3), ("INDIA", 2), ("INDONESIA", 2),
    ("IRAN", 4), ("IRAQ", 4), ("JAPAN", 2), ("JORDAN", 4), ("KENYA", 0),
    ("MOROCCO", 0), ("MOZAMBIQUE", 0), ("PERU", 1), ("CHINA", 2), ("ROMANIA", 3),
    ("SAUDI ARABIA", 4), ("VIETNAM", 2), ("RUSSIA", 3), ("UNITED KINGDOM", 3), ("UNITED STATES", 1),
]
TYPE_SYLLABLE_1 = ["STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"]
TYPE_SYLLABLE_2 = ["ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"]
TYPE_SYLLABLE_3 = ["TIN", "NICKEL", "BRASS", "STEEL", "COPPER"]
CONTAINER_SYLLABLE_1 = ["SM", "LG", "MED", "JUMBO", "WRAP"]
CONTAINER_SYLLABLE_2 = ["CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"]
SHIP_MODES = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"]
# The words P_NAME is made of.
COLORS = [
    "almond", "antique", "aquamarine", "azure", "beige", "bisque", "black", "blanched", "blue",
    "blush", "brown", "burlywood", "burnished", "chartreuse", "chiffon", "chocolate", "coral",
    "cornflower", "cornsilk", "cream", "cyan", "dark", "deep", "dim", "dodger", "drab",
    "firebrick", "floral", "forest", "frosted", "gainsboro", "ghost", "goldenrod", "green",
    "grey", "honeydew", "hot", "indian", "ivory", "khaki", "lace", "lavender", "lawn", "lemon",
    "light", "lime", "linen", "magenta", "maroon", "medium", "metallic", "midnight", "mint",
    "misty", "moccasin", "navajo", "navy", "olive", "orange", "orchid", "pale", "papaya",
    "peach", "peru", "pink", "plum", "powder", "puff", "purple", "red", "rose", "rosy", "royal",
    "saddle", "salmon", "sandy", "seashell", "sienna", "sky", "slate", "smoke", "snow",
    "spring", "steel", "tan", "thistle", "tomato", "turquoise", "violet", "wheat", "white",
    "yellow",
]
Q13_WORD_1 = ["special", "pending", "unusual", "express"]
Q13_WORD_2 = ["packages", "requests", "accounts", "deposits"]
# C_PHONE's country code is N_NATIONKEY + 10 (clause 4.2.2.9).
COUNTRY_CODES = list(range(10, 35))

assert len(COLORS) == 92 and len(NATIONS) == 25


# ---- drawing ---------------------------------------------------------------------------------

def _year_start(rng):
    """The first of January of a year in [1993, 1997]."""
    return datetime.date(rng.randint(1993, 1997), 1, 1)


def _month_start(rng, first, last):
    """The first day of a month from `first` to `last` (both (year, month), inclusive)."""
    lo, hi = first[0] * 12 + first[1] - 1, last[0] * 12 + last[1] - 1
    m = rng.randint(lo, hi)
    return datetime.date(m // 12, m % 12 + 1, 1)


def _type(rng):
    return f"{rng.choice(TYPE_SYLLABLE_1)} {rng.choice(TYPE_SYLLABLE_2)} {rng.choice(TYPE_SYLLABLE_3)}"


def _brand(rng):
    """Brand#MN, M and N drawn independently in [1, 5]."""
    return f"Brand#{rng.randint(1, 5)}{rng.randint(1, 5)}"


def _nation(rng):
    return rng.choice(NATIONS)[0]


def _q08(rng, sf):
    name, region = rng.choice(NATIONS)
    return {"NATION": name, "REGION": REGIONS[region], "TYPE": _type(rng)}


def _q07(rng, sf):
    n1 = _nation(rng)
    n2 = rng.choice([n for n, _ in NATIONS if n != n1])
    return {"NATION1": n1, "NATION2": n2}


def _q12(rng, sf):
    m1 = rng.choice(SHIP_MODES)
    m2 = rng.choice([m for m in SHIP_MODES if m != m1])
    return {"SHIPMODE1": m1, "SHIPMODE2": m2, "DATE": _year_start(rng)}


def _q16(rng, sf):
    t = _type(rng).rsplit(" ", 1)[0]  # the first two syllables of a type
    return {"BRAND": _brand(rng), "TYPE": t, "SIZES": rng.sample(range(1, 51), 8)}


def _q19(rng, sf):
    return {"QUANTITY1": rng.randint(1, 10), "QUANTITY2": rng.randint(10, 20),
            "QUANTITY3": rng.randint(20, 30),
            "BRAND1": _brand(rng), "BRAND2": _brand(rng), "BRAND3": _brand(rng)}


def _fraction(sf):
    """0.0001 / SF, written without an exponent (the query multiplies a decimal by it)."""
    text = f"{0.0001 / sf:.12f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


class Query:
    """One query's parameters: the validation values, how to draw others, and the fragments
    of its text that hold them (templates over the parameter names)."""

    def __init__(self, standard, draw, fragments):
        self.standard = standard
        self.draw = draw
        self.fragments = fragments


def _iso(d):
    return d.isoformat() if isinstance(d, datetime.date) else d


# Clause 2.4.N.3 of each query: its validation values and its rules.
QUERIES = {
    # DELTA in [60, 120].
    "q01": Query({"DELTA": 90}, lambda r, sf: {"DELTA": r.randint(60, 120)},
                 ["INTERVAL '{DELTA}' DAY"]),
    # SIZE in [1, 50]; TYPE a third syllable of Types; REGION.
    "q02": Query({"SIZE": 15, "TYPE": "BRASS", "REGION": "EUROPE"},
                 lambda r, sf: {"SIZE": r.randint(1, 50), "TYPE": r.choice(TYPE_SYLLABLE_3),
                                "REGION": r.choice(REGIONS)},
                 ["p_size = {SIZE}", "LIKE '%{TYPE}'", "r_name = '{REGION}'"]),
    # SEGMENT; DATE a day in [1995-03-01, 1995-03-31].
    "q03": Query({"SEGMENT": "BUILDING", "DATE": datetime.date(1995, 3, 15)},
                 lambda r, sf: {"SEGMENT": r.choice(SEGMENTS),
                                "DATE": datetime.date(1995, 3, r.randint(1, 31))},
                 ["c_mktsegment = '{SEGMENT}'", "DATE '{DATE}'"]),
    # DATE the first day of a month from January 1993 to October 1997.
    "q04": Query({"DATE": datetime.date(1993, 7, 1)},
                 lambda r, sf: {"DATE": _month_start(r, (1993, 1), (1997, 10))},
                 ["DATE '{DATE}'"]),
    # REGION; DATE the first of January of a year in [1993, 1997].
    "q05": Query({"REGION": "ASIA", "DATE": datetime.date(1994, 1, 1)},
                 lambda r, sf: {"REGION": r.choice(REGIONS), "DATE": _year_start(r)},
                 ["r_name = '{REGION}'", "DATE '{DATE}'"]),
    # DATE the first of January of a year in [1993, 1997]; DISCOUNT in [0.02, 0.09];
    # QUANTITY in [24, 25].
    "q06": Query({"DATE": datetime.date(1994, 1, 1), "DISCOUNT": "0.06", "QUANTITY": 24},
                 lambda r, sf: {"DATE": _year_start(r), "DISCOUNT": f"0.0{r.randint(2, 9)}",
                                "QUANTITY": r.randint(24, 25)},
                 ["DATE '{DATE}'", "BETWEEN {DISCOUNT} - 0.01 AND {DISCOUNT} + 0.01",
                  "l_quantity < {QUANTITY}"]),
    # NATION1; NATION2 another nation.
    "q07": Query({"NATION1": "FRANCE", "NATION2": "GERMANY"}, _q07,
                 ["(n1.n_name = '{NATION1}' AND n2.n_name = '{NATION2}')",
                  "(n1.n_name = '{NATION2}' AND n2.n_name = '{NATION1}')"]),
    # NATION; REGION that nation's region; TYPE a three-syllable type.
    "q08": Query({"NATION": "BRAZIL", "REGION": "AMERICA", "TYPE": "ECONOMY ANODIZED STEEL"}, _q08,
                 ["nation = '{NATION}'", "r_name = '{REGION}'", "p_type = '{TYPE}'"]),
    # COLOR a word of P_NAME.
    "q09": Query({"COLOR": "green"}, lambda r, sf: {"COLOR": r.choice(COLORS)},
                 ["p_name LIKE '%{COLOR}%'"]),
    # DATE the first day of a month from February 1993 to January 1995.
    "q10": Query({"DATE": datetime.date(1993, 10, 1)},
                 lambda r, sf: {"DATE": _month_start(r, (1993, 2), (1995, 1))},
                 ["DATE '{DATE}'"]),
    # NATION; FRACTION 0.0001 / SF.
    "q11": Query({"NATION": "GERMANY", "FRACTION": "0.0001"},
                 lambda r, sf: {"NATION": _nation(r), "FRACTION": _fraction(sf)},
                 ["n_name = '{NATION}'", "* {FRACTION}"]),
    # SHIPMODE1; SHIPMODE2 another mode; DATE the first of January of a year in [1993, 1997].
    "q12": Query({"SHIPMODE1": "MAIL", "SHIPMODE2": "SHIP", "DATE": datetime.date(1994, 1, 1)}, _q12,
                 ["l_shipmode IN ('{SHIPMODE1}', '{SHIPMODE2}')", "DATE '{DATE}'"]),
    # WORD1 in special, pending, unusual, express; WORD2 in packages, requests, accounts, deposits.
    "q13": Query({"WORD1": "special", "WORD2": "requests"},
                 lambda r, sf: {"WORD1": r.choice(Q13_WORD_1), "WORD2": r.choice(Q13_WORD_2)},
                 ["NOT LIKE '%{WORD1}%{WORD2}%'"]),
    # DATE the first day of a month of a year in [1993, 1997].
    "q14": Query({"DATE": datetime.date(1995, 9, 1)},
                 lambda r, sf: {"DATE": _month_start(r, (1993, 1), (1997, 12))},
                 ["DATE '{DATE}'"]),
    # DATE the first day of a month from January 1993 to October 1997.
    "q15": Query({"DATE": datetime.date(1996, 1, 1)},
                 lambda r, sf: {"DATE": _month_start(r, (1993, 1), (1997, 10))},
                 ["DATE '{DATE}'"]),
    # BRAND Brand#MN; TYPE the first two syllables of a type; eight different SIZEs in [1, 50].
    "q16": Query({"BRAND": "Brand#45", "TYPE": "MEDIUM POLISHED", "SIZES": [49, 14, 23, 45, 19, 3, 36, 9]},
                 _q16,
                 ["p_brand <> '{BRAND}'", "NOT LIKE '{TYPE}%'", "p_size IN ({SIZES})"]),
    # BRAND Brand#MN; CONTAINER a two-syllable container.
    "q17": Query({"BRAND": "Brand#23", "CONTAINER": "MED BOX"},
                 lambda r, sf: {"BRAND": _brand(r), "CONTAINER": f"{r.choice(CONTAINER_SYLLABLE_1)} "
                                                                 f"{r.choice(CONTAINER_SYLLABLE_2)}"},
                 ["p_brand = '{BRAND}'", "p_container = '{CONTAINER}'"]),
    # QUANTITY in [312, 315].
    "q18": Query({"QUANTITY": 300}, lambda r, sf: {"QUANTITY": r.randint(312, 315)},
                 ["sum(l_quantity) > {QUANTITY}"]),
    # QUANTITY1 in [1, 10], QUANTITY2 in [10, 20], QUANTITY3 in [20, 30]; BRAND1-3 Brand#MN.
    "q19": Query({"QUANTITY1": 1, "QUANTITY2": 10, "QUANTITY3": 20,
                  "BRAND1": "Brand#12", "BRAND2": "Brand#23", "BRAND3": "Brand#34"}, _q19,
                 ["p_brand = '{BRAND1}'", "l_quantity >= {QUANTITY1} AND l_quantity <= {QUANTITY1} + 10",
                  "p_brand = '{BRAND2}'", "l_quantity >= {QUANTITY2} AND l_quantity <= {QUANTITY2} + 10",
                  "p_brand = '{BRAND3}'", "l_quantity >= {QUANTITY3} AND l_quantity <= {QUANTITY3} + 10"]),
    # COLOR a word of P_NAME; DATE the first of January of a year in [1993, 1997]; NATION.
    "q20": Query({"COLOR": "forest", "DATE": datetime.date(1994, 1, 1), "NATION": "CANADA"},
                 lambda r, sf: {"COLOR": r.choice(COLORS), "DATE": _year_start(r), "NATION": _nation(r)},
                 ["p_name LIKE '{COLOR}%'", "DATE '{DATE}'", "n_name = '{NATION}'"]),
    # NATION.
    "q21": Query({"NATION": "SAUDI ARABIA"}, lambda r, sf: {"NATION": _nation(r)},
                 ["n_name = '{NATION}'"]),
    # I1…I7 seven different country codes in [10, 34].
    "q22": Query({"CODES": [13, 31, 23, 29, 30, 18, 17]},
                 lambda r, sf: {"CODES": r.sample(COUNTRY_CODES, 7)},
                 ["IN ({CODES})"]),
}


def _render(params):
    """Parameter values as they appear in the query text."""
    out = {}
    for k, v in params.items():
        if k == "SIZES":
            out[k] = ", ".join(str(x) for x in v)
        elif k == "CODES":
            out[k] = ", ".join(f"'{x}'" for x in v)
        else:
            out[k] = str(_iso(v))
    return out


def parameters(seed, sf):
    """name -> {parameter: value} of every query for a seed (0: the validation values)."""
    out = {}
    for name, q in QUERIES.items():
        if seed == 0:
            out[name] = dict(q.standard)
        else:
            out[name] = q.draw(random.Random(f"tpch-{seed}-{name}"), sf)
    return out


def substitute(name, text, params):
    """The query text with the validation values of its fragments replaced by `params`'."""
    q = QUERIES[name]
    old, new = _render(q.standard), _render(params)
    mapping = {}
    for fragment in q.fragments:
        was, now = fragment.format(**old), fragment.format(**new)
        if was not in text:
            raise ValueError(f"{name}: the fragment {was!r} is not in its query file; "
                             f"update QUERIES in tpch_params.py to the file's text")
        if mapping.get(was, now) != now:
            raise ValueError(f"{name}: the fragment {was!r} would be replaced two ways")
        mapping[was] = now
    # Longest first, so that a fragment that contains another wins; one pass over the text.
    pattern = re.compile("|".join(re.escape(w) for w in sorted(mapping, key=len, reverse=True)))
    return pattern.sub(lambda m: mapping[m.group(0)], text)


def queries(seed, sf, folder=QUERY_DIR):
    """name (q01…q22) -> SQL text with the parameters of `seed` at scale factor `sf`.
    Seed 0 gives the files' text unchanged."""
    params = parameters(seed, sf)
    out = {}
    for name in QUERIES:
        path = os.path.join(folder, name + ".sql")
        text = open(path).read()
        # Check the fragments even for seed 0, so that a stale table shows at once.
        done = substitute(name, text, params[name])
        out[name] = text if seed == 0 else done
    missing = sorted(set(f[:-4] for f in os.listdir(folder) if re.fullmatch(r"q\d\d\.sql", f)) - set(QUERIES))
    if missing:
        raise ValueError(f"query files without parameter rules: {', '.join(missing)}")
    return out


def table(seed, sf):
    """The chosen parameters as a Markdown table."""
    lines = [f"| query | parameters (seed {seed}, SF {sf:g}) |", "|---|---|"]
    for name, params in parameters(seed, sf).items():
        shown = _render(params)
        lines.append(f"| {name} | " + "; ".join(f"{k} = {shown[k]}" for k in params) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="0: the validation parameters of the files")
    ap.add_argument("--sf", type=float, default=1.0, help="scale factor (Q11's FRACTION is 0.0001 / SF)")
    ap.add_argument("--out", help="write q01.sql … q22.sql into this folder")
    args = ap.parse_args(argv)
    if args.sf <= 0:
        ap.error("--sf must be positive")
    try:
        texts = queries(args.seed, args.sf)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for name, sql in texts.items():
            with open(os.path.join(args.out, name + ".sql"), "w") as f:
                f.write(sql)
    print(table(args.seed, args.sf))
    return 0


if __name__ == "__main__":
    sys.exit(main())
