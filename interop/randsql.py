"""Seeded random SQL over the TPC-H tables, run by strata and by DuckDB on the same Parquet or
Delta files, and the comparison of their answers.

`Generator(seed, samples)` makes queries from `random.Random(seed)`: the same seed and the
same data (same scale factor) give the same queries. Literals are values drawn from the data
(`sample_values`), not the standard TPC-H parameters, so that `=`, IN lists and LIKE patterns
hit rows. The shapes:

- filters on decimal, integer, date and string columns with =, <>, <, <=, >, >=, BETWEEN,
  IN / NOT IN lists (sometimes holding NULL), LIKE / NOT LIKE, IS [NOT] NULL, column against
  column, combined with AND, OR and NOT;
- IN / NOT IN / EXISTS / NOT EXISTS subqueries, uncorrelated and correlated (equality on a
  key, sometimes a range), whose outer or inner side can be NULL (NULLIF, CASE without ELSE,
  columns of a LEFT JOIN) or needs a cast, placed at the top level, inside OR, under NOT and
  in the SELECT list; NOT IN over a UNION ALL;
- scalar subqueries (aggregates, so they return one row), uncorrelated and correlated;
- inner and left joins on keys (a left join sometimes with an extra ON condition, so its
  columns are NULL on some rows);
- GROUP BY with sum, avg, min, max, count, count(DISTINCT), HAVING;
- CASE (with and without ELSE), COALESCE, NULLIF, CAST, EXTRACT, string functions;
- +, - and * on decimals and integers, including products that overflow INT and BIGINT;
- UNION ALL, with and without an aggregate over it;
- ORDER BY ... LIMIT only over every output column, with NULLS FIRST/LAST spelled out, so
  the order is total and the limited rows are the same in both engines.

Queries that return rows from lineitem, orders, partsupp, part or customer keep to a window
of keys, so each query stays cheap at SF 0.01-1. Two shapes are kept small because strata
plans them slowly today (seconds to minutes at SF 0.1, where DuckDB takes milliseconds), not
because their answers differ: an uncorrelated EXISTS reads nation or region (it runs as a
nested loop join against every outer row), and an IN subquery or correlation on a column
with many duplicates (a date, a flag, a nation) over a big table carries a key window (the
semi join meets thousands of matches per row).

Differences by design between DataFusion's dialect and DuckDB's, and how they are handled:

- `/` is left out: DuckDB's `/` gives DOUBLE for integers and decimals, DataFusion's keeps
  integer division and decimal types. avg covers division (next point).
- avg of a decimal is DOUBLE in DuckDB and a decimal of scale s in DataFusion: a float and
  a decimal compare equal within one unit of the decimal's last place (or 1e-9 relative).
- sum of BIGINT widens to HUGEINT in DuckDB; when its answer is outside BIGINT and strata
  reports an overflow, the two agree (SQL allows either). An overflow DuckDB raises where
  strata answers is a wrong answer: strata wrapped.
- Output column names and types are not compared, only values: integers and decimals as
  exact numbers, floats with a relative tolerance of 1e-9, dates, strings, booleans, NULL.
- NULL ordering is spelled out in every ORDER BY (DataFusion puts NULLs first in DESC, as
  PostgreSQL does; DuckDB puts them last).
- Scalar subqueries are aggregates, so neither engine meets a subquery returning more than
  one row (DuckDB and DataFusion treat that differently).

Nothing is left out because strata gets it wrong today.
"""
import datetime
import decimal
import math
import random

INT, DEC, DATE, STR = "int", "dec", "date", "str"

# table -> (alias, rows at SF 1, key column for windows, columns: (name, type, domain))
# Columns of one domain hold overlapping values, so IN subqueries and correlations between
# them are meaningful.
TABLES = {
    "lineitem": ("l", 6_000_000, "l_orderkey", [
        ("l_orderkey", INT, "orderkey"), ("l_partkey", INT, "partkey"), ("l_suppkey", INT, "suppkey"),
        ("l_linenumber", INT, "small"), ("l_quantity", DEC, "small"), ("l_extendedprice", DEC, "price"),
        ("l_discount", DEC, "rate"), ("l_tax", DEC, "rate"), ("l_returnflag", STR, "flag"),
        ("l_linestatus", STR, "flag"), ("l_shipdate", DATE, "date"), ("l_commitdate", DATE, "date"),
        ("l_receiptdate", DATE, "date"), ("l_shipinstruct", STR, "instruct"), ("l_shipmode", STR, "shipmode"),
    ]),
    "orders": ("o", 1_500_000, "o_orderkey", [
        ("o_orderkey", INT, "orderkey"), ("o_custkey", INT, "custkey"), ("o_orderstatus", STR, "flag"),
        ("o_totalprice", DEC, "price"), ("o_orderdate", DATE, "date"), ("o_orderpriority", STR, "priority"),
        ("o_clerk", STR, "clerk"), ("o_shippriority", INT, "zero"),
    ]),
    "customer": ("c", 150_000, "c_custkey", [
        ("c_custkey", INT, "custkey"), ("c_name", STR, "cname"), ("c_nationkey", INT, "nationkey"),
        ("c_phone", STR, "phone"), ("c_acctbal", DEC, "acctbal"), ("c_mktsegment", STR, "segment"),
    ]),
    "part": ("p", 200_000, "p_partkey", [
        ("p_partkey", INT, "partkey"), ("p_name", STR, "pname"), ("p_mfgr", STR, "mfgr"),
        ("p_brand", STR, "brand"), ("p_type", STR, "ptype"), ("p_size", INT, "small"),
        ("p_container", STR, "container"), ("p_retailprice", DEC, "price"),
    ]),
    "partsupp": ("ps", 800_000, "ps_partkey", [
        ("ps_partkey", INT, "partkey"), ("ps_suppkey", INT, "suppkey"), ("ps_availqty", INT, "availqty"),
        ("ps_supplycost", DEC, "cost"),
    ]),
    "supplier": ("s", 10_000, None, [
        ("s_suppkey", INT, "suppkey"), ("s_name", STR, "sname"), ("s_nationkey", INT, "nationkey"),
        ("s_phone", STR, "phone"), ("s_acctbal", DEC, "acctbal"),
    ]),
    "nation": ("n", 25, None, [
        ("n_nationkey", INT, "nationkey"), ("n_name", STR, "nname"), ("n_regionkey", INT, "regionkey"),
    ]),
    "region": ("r", 5, None, [("r_regionkey", INT, "regionkey"), ("r_name", STR, "rname")]),
}

# Foreign keys (child column, parent table, parent column): the joins of a FROM clause.
LINKS = [
    ("lineitem", "l_orderkey", "orders", "o_orderkey"),
    ("lineitem", "l_partkey", "part", "p_partkey"),
    ("lineitem", "l_suppkey", "supplier", "s_suppkey"),
    ("orders", "o_custkey", "customer", "c_custkey"),
    ("customer", "c_nationkey", "nation", "n_nationkey"),
    ("supplier", "s_nationkey", "nation", "n_nationkey"),
    ("nation", "n_regionkey", "region", "r_regionkey"),
    ("partsupp", "ps_partkey", "part", "p_partkey"),
    ("partsupp", "ps_suppkey", "supplier", "s_suppkey"),
]

# Key windows (width in key units) that keep row-returning queries on big tables small.
WINDOWS = {"l_orderkey": 1200, "o_orderkey": 2400, "ps_partkey": 150, "p_partkey": 400, "c_custkey": 400}

# Domains of keys: few rows share a value.
KEY_DOMAINS = ("orderkey", "partkey", "suppkey", "custkey")

# Domains with few distinct values: grouping by them gives few groups.
SMALL_DOMAINS = ("flag", "shipmode", "priority", "segment", "nname", "rname", "nationkey", "regionkey", "small",
                 "mfgr", "container", "instruct", "rate", "zero")

COLUMNS = {name: (table, ty, dom) for table, (_, _, _, cols) in TABLES.items() for name, ty, dom in cols}


def named(items):
    """A SELECT list with every column named c1, c2, ...: DataFusion refuses two output columns
    of the same name, DuckDB allows them."""
    return ", ".join(f"{s} AS c{i + 1}" for i, s in enumerate(items))


def sample_values(con, per_column=60):
    """Literal pools drawn from the data through DuckDB: per column, its minimum, maximum and
    about `per_column` distinct values spread evenly over its sorted distinct values."""
    samples = {}
    for name, (table, _, _) in COLUMNS.items():
        values = [r[0] for r in con.execute(
            f"SELECT DISTINCT {name} FROM {table} WHERE {name} IS NOT NULL ORDER BY 1").fetchall()]
        if len(values) > per_column:
            step = (len(values) - 1) / (per_column - 1)
            values = [values[round(i * step)] for i in range(per_column)]
        samples[name] = values
    return samples


def lit(value):
    """A SQL literal both engines read the same way (decimals as written: 556.18)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class Scope:
    """The tables of one FROM clause: (alias, table, nullable) where nullable marks the right
    side of a LEFT JOIN."""

    def __init__(self, items, outer=None):
        self.items = items
        self.outer = outer

    def columns(self, ty=None):
        out = []
        for alias, table, nullable in self.items:
            for name, cty, dom in TABLES[table][3]:
                if ty is None or cty == ty:
                    out.append((f"{alias}.{name}", name, cty, dom, nullable))
        return out


class Generator:
    def __init__(self, seed, samples):
        self.rng = random.Random(seed)
        self.samples = samples
        self.aliases = 0
        self.windows_made = set()  # the key windows of the query being made

    # ---- helpers -----------------------------------------------------------------------------

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, seq):
        return self.rng.choice(seq)

    def weighted(self, options):
        total = sum(w for w, _ in options)
        x = self.rng.random() * total
        for w, f in options:
            x -= w
            if x < 0:
                return f
        return options[-1][1]

    def alias(self, table):
        self.aliases += 1
        return f"{TABLES[table][0]}{self.aliases}"

    def value(self, column):
        return self.pick(self.samples[column])

    def window(self, alias, table):
        """A key range keeping the rows of a big table few, or None for a small table."""
        key = TABLES[table][2]
        if key is None:
            return None
        lo = self.value(key)
        w = f"{alias}.{key} BETWEEN {lo} AND {lo + WINDOWS[key]}"
        self.windows_made.add(w)
        return w

    # ---- FROM --------------------------------------------------------------------------------

    def from_clause(self, table=None, max_joins=2, bounded=False):
        """(sql, scope, windows) of a table and up to `max_joins` joins along keys. With
        `bounded`, `windows` holds a key range for the first table when it is big, and a join
        from a table without one down to a big table (orders to lineitem) carries a range in
        its ON clause, so the rows stay few."""
        table = table or self.weighted([(4, "lineitem"), (3, "orders"), (2, "customer"), (2, "part"),
                                        (2, "partsupp"), (2, "supplier"), (1, "nation"), (1, "region")])
        a = self.alias(table)
        items = [(a, table, False)]
        sql = f"{table} {a}"
        windows = []
        if bounded:
            w = self.window(a, table)
            if w:
                windows.append(w)
        limited = {a} if windows else set()
        parents = set()  # reached by a join up to a parent: joining down again multiplies rows
        down = False  # one join down to children (orders to lineitem) at most: two multiply
        for _ in range(self.rng.randint(0, max_joins)):
            options = []
            for alias, t, nullable in items:
                for child, ccol, parent, pcol in LINKS:
                    if child == t:
                        options.append((alias, ccol, parent, pcol, "up"))
                    if parent == t and alias not in parents and not down and \
                            child in ("orders", "lineitem", "customer", "supplier", "nation"):
                        options.append((alias, pcol, child, ccol, "down"))
            if not options:
                break
            alias, col, other, ocol, direction = self.pick(options)
            b = self.alias(other)
            left = direction == "down" or self.chance(0.3)
            on = f"{b}.{ocol} = {alias}.{col}"
            if left and self.chance(0.6):
                on += " AND " + self.simple_pred(Scope([(b, other, False)]))
            if direction == "up":
                parents.add(b)
                if alias in limited:
                    limited.add(b)
            elif direction == "down":
                down = True
            if direction == "down" and bounded:
                if alias not in limited and TABLES[other][2]:
                    on += " AND " + self.window(b, other)
                limited.add(b)
            sql += f" {'LEFT JOIN' if left else 'JOIN'} {other} {b} ON {on}"
            items.append((b, other, left or any(n for x, _, n in items if x == alias)))
        return sql, Scope(items), windows

    # ---- expressions -------------------------------------------------------------------------

    def column(self, scope, ty=None):
        cols = scope.columns(ty)
        return self.pick(cols) if cols else None

    def nullable(self, sql, ty, source_col, scope):
        """`sql` made NULL on some rows: NULLIF with a value from the data, or CASE without ELSE."""
        if self.chance(0.5):
            return f"NULLIF({sql}, {lit(self.value(source_col))})"
        return f"CASE WHEN {self.simple_pred(scope)} THEN {sql} END"

    def num_expr(self, scope, depth=0):
        """(sql, type, sample column) of a numeric expression."""
        c = self.column(scope, self.pick([INT, DEC, DEC]))
        if c is None:
            c = self.column(scope, INT)
        sql, name, ty = c[0], c[1], c[2]
        if depth > 1:
            return sql, ty, name
        kind = self.weighted([(5, "col"), (2, "arith_lit"), (2, "arith_col"), (1, "case"), (1, "coalesce"),
                              (1, "nullif"), (1, "cast"), (1, "extract")])
        if kind == "arith_lit":
            if ty == DEC and self.chance(0.5):
                k = lit(self.value(name)) if self.chance(0.5) else self.pick(["1.5", "0.01", "100", "2", "0.95"])
            else:
                k = str(self.rng.randint(1, 100))
            op = self.pick(["+", "-", "*"])
            return f"({sql} {op} {k})", ty, name
        if kind == "arith_col":
            o_sql, o_ty, _ = self.num_expr(scope, depth + 1)
            op = self.pick(["+", "-", "*"]) if (ty == DEC) + (o_ty == DEC) < 2 else self.pick(["+", "-"])
            if ty == DEC and o_ty == DEC and self.chance(0.5):
                # TPC-H's own products of decimals: price * (1 - discount) * (1 + tax)
                return f"({sql} * (1 - {o_sql}))", DEC, name
            return f"({sql} {op} {o_sql})", DEC if DEC in (ty, o_ty) else INT, name
        if kind == "case":
            other, o_ty, _ = self.num_expr(scope, depth + 1)
            if self.chance(0.5):
                return f"CASE WHEN {self.simple_pred(scope)} THEN {sql} ELSE {other} END", \
                    DEC if DEC in (ty, o_ty) else INT, name
            return f"CASE WHEN {self.simple_pred(scope)} THEN {sql} END", ty, name
        if kind == "coalesce":
            return f"COALESCE({self.nullable(sql, ty, name, scope)}, {lit(self.value(name))})", ty, name
        if kind == "nullif":
            return self.nullable(sql, ty, name, scope), ty, name
        if kind == "cast":
            if ty == INT:
                return f"CAST({sql} AS {self.pick(['BIGINT', 'INT', 'DECIMAL(18,2)'])})", ty, name
            return f"CAST({sql} AS DECIMAL(18,2))", ty, name
        if kind == "extract":
            d = self.column(scope, DATE)
            if d:
                return f"EXTRACT({self.pick(['YEAR', 'MONTH', 'DAY'])} FROM {d[0]})", INT, None
        return sql, ty, name

    def str_expr(self, scope):
        c = self.column(scope, STR)
        if c is None:
            return None
        kind = self.weighted([(6, "col"), (1, "upper"), (1, "substr"), (1, "concat"), (1, "coalesce")])
        if kind == "upper":
            return f"{self.pick(['upper', 'lower'])}({c[0]})"
        if kind == "substr":
            return f"substr({c[0]}, 1, {self.rng.randint(1, 6)})"
        if kind == "concat":
            d = self.column(scope, STR)
            return f"({c[0]} || '-' || {d[0]})"
        if kind == "coalesce":
            return f"COALESCE({self.nullable(c[0], STR, c[1], scope)}, 'none')"
        return c[0]

    # ---- predicates --------------------------------------------------------------------------

    def simple_pred(self, scope):
        """A comparison of a column with literals drawn from that column."""
        sql, name, ty, _, _ = self.column(scope)
        return self.compare(sql, name, ty)

    def compare(self, sql, name, ty):
        kind = self.weighted([(5, "cmp"), (2, "between"), (2, "in"), (2 if ty == STR else 0, "like")])
        if kind == "between":
            a, b = sorted([self.value(name), self.value(name)])
            neg = "NOT " if self.chance(0.2) else ""
            return f"{sql} {neg}BETWEEN {lit(a)} AND {lit(b)}"
        if kind == "in":
            values = [lit(self.value(name)) for _ in range(self.rng.randint(1, 5))]
            if self.chance(0.15):
                values.append("NULL")
            neg = "NOT " if self.chance(0.35) else ""
            return f"{sql} {neg}IN ({', '.join(values)})"
        if kind == "like":
            v = str(self.value(name))
            i = self.rng.randint(0, max(0, len(v) - 1))
            j = self.rng.randint(i, len(v))
            piece = v[i:j].replace("%", "").replace("_", "")
            pattern = self.pick([f"{piece}%", f"%{piece}", f"%{piece}%", f"{piece}%{v[-1:]}", f"_{v[1:j]}%"])
            neg = "NOT " if self.chance(0.25) else ""
            return f"{sql} {neg}LIKE {lit(pattern)}"
        op = self.pick(["=", "<>", "<", "<=", ">", ">="])
        return f"{sql} {op} {lit(self.value(name))}"

    def pred(self, scope, depth=0, subqueries=True):
        options = [(6, "simple"), (2, "expr_cmp"), (1, "col_col"), (1, "isnull")]
        if depth < 2:
            options += [(3, "and"), (3, "or"), (1.5, "not")]
        if subqueries and depth < 3:
            options += [(4, "subquery")]
        kind = self.weighted(options)
        if kind == "and":
            return f"({self.pred(scope, depth + 1, subqueries)} AND {self.pred(scope, depth + 1, subqueries)})"
        if kind == "or":
            return f"({self.pred(scope, depth + 1, subqueries)} OR {self.pred(scope, depth + 1, subqueries)})"
        if kind == "not":
            return f"NOT ({self.pred(scope, depth + 1, subqueries)})"
        if kind == "subquery":
            return self.subquery_pred(scope)
        if kind == "expr_cmp":
            sql, ty, name = self.num_expr(scope)
            if name is None:
                return f"{sql} {self.pick(['=', '<', '>'])} {self.rng.randint(1, 28)}"
            return self.compare(sql, name, ty)
        if kind == "col_col":
            c = self.column(scope)
            same = [d for d in scope.columns(c[2]) if d[0] != c[0] and (c[2] != STR or d[3] == c[3])]
            if same:
                d = self.pick(same)
                return f"{c[0]} {self.pick(['=', '<>', '<', '>=', '>'])} {d[0]}"
        if kind == "isnull":
            c = self.column(scope)
            expr = c[0] if c[4] else self.nullable(c[0], c[2], c[1], scope)
            return f"{expr} IS {'NOT ' if self.chance(0.4) else ''}NULL"
        return self.simple_pred(scope)

    def guard(self, alias, table, domain):
        """[a key window] for a big table joined on a column with many duplicates (dates,
        nations, flags), else []. Without it a semi join on such a column meets thousands of
        matches per row."""
        if TABLES[table][1] > 10_000 and domain not in KEY_DOMAINS and TABLES[table][2]:
            return [self.window(alias, table)]
        return []

    def correlation(self, inner_alias, inner_table, scope):
        """[conditions]: an equality (or, with nation or region inside, now and then a range or
        <>) between the inner table and an outer column of the same domain, plus a key window
        when the domain has many duplicates; [] when the two share no domain."""
        pairs = []
        for name, ty, dom in TABLES[inner_table][3]:
            if dom in ("small", "flag", "rate", "zero"):
                continue
            for osql, oname, oty, odom, _ in scope.columns():
                if odom == dom and oty == ty:
                    pairs.append((f"{inner_alias}.{name}", osql, ty, dom))
        if not pairs:
            return []
        i, o, ty, dom = self.pick(pairs)
        op = "="
        if inner_table in ("nation", "region") and self.chance(0.3):
            op = self.pick(["<", ">", "<>"])
        return [f"{i} {op} {o}"] + self.guard(inner_alias, inner_table, dom)

    def subquery_pred(self, scope):
        kind = self.weighted([(4, "in"), (3, "exists"), (2, "scalar")])
        neg = self.chance(0.5)
        if kind == "exists":
            return self.exists(scope, neg)
        if kind == "scalar":
            return self.scalar_cmp(scope)
        return self.in_subquery(scope, neg)

    def inner_table(self, dom):
        """A table with a column of domain `dom`, preferring small ones; (table, column, type)."""
        cands = [(t, n, ty) for t, (_, _, _, cols) in TABLES.items() for n, ty, d in cols if d == dom]
        return self.pick(cands)

    def in_subquery(self, scope, neg):
        cols = [c for c in scope.columns() if c[3] not in ("rate", "zero")]
        c = self.pick(cols)
        osql, oname, oty, odom, onull = c
        outer = osql
        kind = self.weighted([(5, "plain"), (2, "nullable"), (1, "cast"), (1, "expr")])
        if kind == "nullable":
            outer = self.nullable(osql, oty, oname, scope)
        elif kind == "cast" and oty == INT:
            outer = f"CAST({osql} AS {self.pick(['INT', 'BIGINT'])})"
        elif kind == "expr" and oty in (INT, DEC):
            outer = f"({osql} + {self.rng.randint(0, 2)})"
        table, icol, ity = self.inner_table(odom)
        b = self.alias(table)
        inner_scope = Scope([(b, table, False)], scope)
        select = f"{b}.{icol}"
        if self.chance(0.3):
            select = self.nullable(select, ity, icol, inner_scope)
        elif ity == INT and self.chance(0.15):
            select = f"CAST({select} AS {self.pick(['INT', 'BIGINT'])})"
        where = []
        if self.chance(0.45):
            where += self.correlation(b, table, scope)
        if self.chance(0.8):
            where.append(self.pred(inner_scope, 1, subqueries=False))
        if not any(w in self.windows_made for w in where):
            where += self.guard(b, table, odom)
        if not where and self.chance(0.5) and TABLES[table][2]:
            where.append(self.window(b, table))
        body = f"SELECT {select} FROM {table} {b}" + (f" WHERE {' AND '.join(where)}" if where else "")
        if self.chance(0.12):
            # a UNION ALL, sometimes with a NULL row
            second = "SELECT NULL" if self.chance(0.5) else f"SELECT {lit(self.value(icol))}"
            body = f"{body} UNION ALL {second}"
        return f"{outer} {'NOT ' if neg else ''}IN ({body})"

    def exists(self, scope, neg):
        """[NOT] EXISTS, correlated along a key, or now and then uncorrelated over nation or
        region (DataFusion runs an uncorrelated EXISTS as a nested loop join against every
        outer row, which is slow over big tables)."""
        if self.chance(0.1):
            table = self.pick(["nation", "region"])
            b = self.alias(table)
            inner = self.pred(Scope([(b, table, False)], scope), 1, subqueries=False)
            return f"{'NOT ' if neg else ''}EXISTS (SELECT 1 FROM {table} {b} WHERE {inner})"
        a, t, _ = self.pick(scope.items)
        options = []
        for child, ccol, parent, pcol in LINKS:
            if parent == t:
                options.append((child, ccol, pcol))
            if child == t:
                options.append((parent, pcol, ccol))
        table, icol, ocol = self.pick(options)
        b = self.alias(table)
        inner_scope = Scope([(b, table, False)], scope)
        where = [f"{b}.{icol} = {a}.{ocol}"]
        if self.chance(0.8):
            where.append(self.pred(inner_scope, 1, subqueries=self.chance(0.2)))
        if self.chance(0.2):
            where += self.correlation(b, table, scope)
        return f"{'NOT ' if neg else ''}EXISTS (SELECT 1 FROM {table} {b} WHERE {' AND '.join(where)})"

    def scalar(self, scope):
        """(sql, type, sample column) of an aggregate subquery, correlated or not."""
        table = self.weighted([(3, "lineitem"), (2, "orders"), (2, "partsupp"), (2, "customer"),
                               (1, "supplier"), (1, "part"), (1, "nation")])
        b = self.alias(table)
        inner_scope = Scope([(b, table, False)], scope)
        num = [(n, ty) for n, ty, _ in TABLES[table][3] if ty in (INT, DEC)]
        col, ty = self.pick(num)
        agg = self.pick(["max", "min", "sum", "count"])
        sql = f"{agg}({b}.{col})"
        if agg == "count":
            ty = INT
        where = []
        corr = self.correlation(b, table, scope) if self.chance(0.6) else []
        where += corr
        if not corr and table in ("lineitem", "orders", "partsupp"):
            where.append(self.window(b, table))
        if self.chance(0.6):
            where.append(self.pred(inner_scope, 1, subqueries=False))
        body = f"SELECT {sql} FROM {table} {b}" + (f" WHERE {' AND '.join(where)}" if where else "")
        return f"({body})", ty, col

    def scalar_cmp(self, scope):
        sql, ty, col = self.scalar(scope)
        if ty == INT and col is not None and not sql.startswith("(SELECT count"):
            others = scope.columns(INT) or scope.columns()
        else:
            others = scope.columns(DEC) + scope.columns(INT)
        o = self.pick(others)
        return f"{o[0]} {self.pick(['=', '<', '>', '<=', '>=', '<>'])} {sql}"

    # ---- queries -----------------------------------------------------------------------------

    def where(self, scope, windows, p=0.9):
        parts = list(windows)
        if self.chance(p) or not parts:
            parts.append(self.pred(scope))
        return " WHERE " + " AND ".join(parts)

    def select_item(self, scope):
        """(sql, orderable) of a non-aggregate output column."""
        kind = self.weighted([(5, "col"), (3, "num"), (1, "str"), (1, "subquery_flag"), (1, "scalar")])
        if kind == "num":
            sql, ty, _ = self.num_expr(scope)
            return sql, "1.5" not in sql and "0.01" not in sql and "0.95" not in sql
        if kind == "str":
            s = self.str_expr(scope)
            if s:
                return s, True
        if kind == "subquery_flag":
            p = self.subquery_pred(scope)
            if self.chance(0.5):
                return f"CASE WHEN {p} THEN 1 ELSE 0 END", True
            return f"({p})", True
        if kind == "scalar":
            return self.scalar(scope)[0], True
        return self.column(scope)[0], True

    def agg_item(self, scope):
        """(sql, orderable) of an aggregate."""
        kind = self.weighted([(3, "count"), (4, "sum"), (2, "avg"), (3, "minmax"), (2, "count_distinct"),
                              (0.4, "overflow")])
        if kind == "count":
            if self.chance(0.5):
                return "count(*)", True
            return f"count({self.column(scope)[0]})", True
        if kind == "count_distinct":
            return f"count(DISTINCT {self.column(scope)[0]})", True
        if kind == "minmax":
            c = self.column(scope)
            return f"{self.pick(['min', 'max'])}({c[0]})", True
        if kind == "overflow":
            c = self.column(scope, INT)
            if c:
                if self.chance(0.5):
                    k = self.rng.randint(300_000, 2_147_483_647)
                    return f"sum(CAST({c[0]} AS INT) * CAST({k} AS INT))", True
                k = self.rng.randint(3 * 10 ** 13, 9 * 10 ** 15)
                return f"sum({c[0]} * {k})", True
        sql, ty, _ = self.num_expr(scope)
        if kind == "avg":
            return f"avg({sql})", False
        exact = "1.5" not in sql and "0.01" not in sql and "0.95" not in sql
        return f"sum({sql})", exact

    def having(self, scope):
        """A comparison of an aggregate with a literal of its size."""
        kind = self.pick(["count", "count_distinct", "sum", "avg", "minmax"])
        if kind == "count":
            return f"count(*) {self.pick(['>', '>=', '<', '='])} {self.rng.randint(0, 50)}"
        if kind == "count_distinct":
            return f"count(DISTINCT {self.column(scope)[0]}) {self.pick(['>', '<', '='])} {self.rng.randint(0, 20)}"
        if kind == "sum" and self.chance(0.5):
            c = self.column(scope, DEC) or self.column(scope, INT)
            sql, ty, name = c[0], c[2], c[1]
        else:
            sql, ty, name = self.num_expr(scope)
        value = self.value(name) if name else self.rng.randint(1, 28)
        if kind == "sum":
            return f"sum({sql}) {self.pick(['>', '<', '>=', '<>'])} {lit(value * self.rng.randint(1, 200))}"
        if kind == "avg":
            return f"avg({sql}) {self.pick(['>', '<', '>=', '<='])} {lit(value)}"
        return f"{self.pick(['min', 'max'])}({sql}) {self.pick(['>', '<', '=', '<>'])} {lit(value)}"

    def group_key(self, scope, few=False):
        """A grouping expression; with `few`, one of few distinct values."""
        c = self.column(scope)
        if few:
            small = [d for d in scope.columns() if d[3] in SMALL_DOMAINS]
            if small and self.chance(0.8):
                return self.pick(small)[0]
            d = self.column(scope, DATE)
            return f"EXTRACT(YEAR FROM {d[0]})" if d else "1"
        if c[3] in SMALL_DOMAINS:
            return c[0]
        kind = self.weighted([(2, "extract"), (1, "substr"), (2, "column")])
        d = self.column(scope, DATE)
        if kind == "extract" and d:
            return f"EXTRACT(YEAR FROM {d[0]})"
        s = self.column(scope, STR)
        if kind == "substr" and s:
            return f"substr({s[0]}, 1, 2)"
        return c[0]

    def order_limit(self, n_out, orderable):
        if not all(orderable) or not self.chance(0.5):
            return "", False
        keys = ", ".join(f"{i + 1} {self.pick(['ASC', 'DESC'])} NULLS {self.pick(['FIRST', 'LAST'])}"
                         for i in range(n_out))
        return f" ORDER BY {keys} LIMIT {self.rng.randint(1, 20)}", True

    def q_rows(self):
        """Rows of a filtered (joined) table within key windows."""
        f, scope, windows = self.from_clause(bounded=True)
        items = [self.select_item(scope) for _ in range(self.rng.randint(1, 4))]
        sql = f"SELECT {named(s for s, _ in items)} FROM {f}{self.where(scope, windows)}"
        tail, ordered = self.order_limit(len(items), [o for _, o in items])
        return sql + tail, ordered

    def q_count(self):
        """A global aggregate over a filter: the cheapest check of a predicate."""
        f, scope, windows = self.from_clause(bounded=self.chance(0.4))
        items = [("count(*)", True)] + [self.agg_item(scope) for _ in range(self.rng.randint(0, 2))]
        return f"SELECT {named(s for s, _ in items)} FROM {f}{self.where(scope, windows, 1.0)}", False

    def q_group(self):
        f, scope, windows = self.from_clause(bounded=True)
        keys = list(dict.fromkeys(self.group_key(scope) for _ in range(self.rng.randint(1, 2))))
        aggs = [self.agg_item(scope) for _ in range(self.rng.randint(1, 3))]
        if windows and self.chance(0.4) and all(k.split(".")[-1] not in COLUMNS or COLUMNS[k.split(".")[-1]][2]
                                                 in SMALL_DOMAINS for k in keys):
            windows = []  # few groups: the whole table
        sql = f"SELECT {named(keys + [a for a, _ in aggs])} FROM {f}"
        sql += self.where(scope, windows, 0.8)
        sql += f" GROUP BY {', '.join(keys)}"
        if self.chance(0.5):
            having = self.having(scope)
            if having.startswith("sum(") and not any("DISTINCT" in a for a, _ in aggs) and self.chance(0.4):
                # one DISTINCT aggregate beside others: DataFusion rewrites it to a double GROUP BY
                aggs.append((f"count(DISTINCT {self.column(scope)[0]})", True))
                sql = f"SELECT {named(keys + [a for a, _ in aggs])} FROM {f}" + sql.split(f" FROM {f}", 1)[1]
            sql += " HAVING " + having
        tail, ordered = self.order_limit(len(keys) + len(aggs), [True] * len(keys) + [o for _, o in aggs])
        return sql + tail, ordered

    def q_union(self):
        """UNION ALL of two filters of one table, directly or under an aggregate."""
        table = self.pick(list(TABLES))
        parts = []
        cols = None
        for _ in range(2):
            f, scope, windows = self.from_clause(table, max_joins=0, bounded=True)
            if cols is None:
                cols = [self.pick(TABLES[table][3])[0] for _ in range(self.rng.randint(1, 3))]
            alias = scope.items[0][0]
            sel = named(f"{alias}.{c}" for c in cols)
            parts.append(f"SELECT {sel} FROM {f}{self.where(scope, windows, 1.0)}")
        body = " UNION ALL ".join(parts)
        if self.chance(0.5):
            return "SELECT count(*) AS c1, count(DISTINCT c1) AS c2, min(c1) AS c3, max(c1) AS c4 " \
                f"FROM ({body}) u", False
        return body, False

    def q_select_subquery(self):
        """Subquery predicates and scalar subqueries in the SELECT list, grouped outside."""
        f, scope, windows = self.from_clause(max_joins=1, bounded=self.chance(0.6))
        key = self.group_key(scope, few=not windows)
        if self.chance(0.7):
            flag = self.subquery_pred(scope)
            if self.chance(0.3):
                flag = f"CASE WHEN {flag} THEN 'yes' WHEN NOT ({flag}) THEN 'no' END"
        else:
            flag = self.scalar(scope)[0]
        sql = (f"SELECT k, flag, count(*) FROM (SELECT {key} AS k, {flag} AS flag FROM {f}"
               f"{self.where(scope, windows, 0.5)}) t GROUP BY k, flag")
        return sql, False

    def query(self):
        """(sql, ordered): ordered when the answer's row order is total and must match."""
        self.aliases = 0
        self.windows_made = set()
        kind = self.weighted([(3, self.q_count), (3, self.q_rows), (3, self.q_group), (1, self.q_union),
                              (1, self.q_select_subquery)])
        return kind()


# ---- answers ---------------------------------------------------------------------------------

def _norm(v):
    if isinstance(v, datetime.datetime):
        return v.date() if v.time() == datetime.time() else v
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return decimal.Decimal(v)
    return v


def _scale(d):
    return max(0, -d.as_tuple().exponent)


def same_value(a, b):
    """One value of strata (a) against DuckDB's (b)."""
    a, b = _norm(a), _norm(b)
    if a is None or b is None:
        return a is None and b is None
    num = (decimal.Decimal, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
            return a == b
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        tol = 1e-9 * max(abs(fa), abs(fb), 1e-3)
        for d in (a, b):
            if isinstance(d, decimal.Decimal):
                tol = max(tol, 10.0 ** -_scale(d))  # the decimal's rounding of a float's value
        return abs(fa - fb) <= tol
    return type(a) is type(b) and a == b


def _sort_key(row):
    out = []
    for v in row:
        v = _norm(v)
        if v is None:
            out.append((0, ""))
        elif isinstance(v, (decimal.Decimal, float)) and not isinstance(v, bool):
            out.append((1, f"{float(v):.6e}"))
        else:
            out.append((2, str(v)))
    return out


def same_rows(ours, theirs, ordered):
    """Rows of strata against DuckDB's: in order when `ordered`, else as multisets."""
    if len(ours) != len(theirs) or (ours and len(ours[0]) != len(theirs[0])):
        return False
    eq = lambda x, y: all(same_value(p, q) for p, q in zip(x, y))  # noqa: E731
    if ordered:
        return all(eq(x, y) for x, y in zip(ours, theirs))
    a, b = sorted(ours, key=_sort_key), sorted(theirs, key=_sort_key)
    if all(eq(x, y) for x, y in zip(a, b)):
        return True
    if len(a) > 3000:
        return False
    left = list(b)  # numbers rounding across a sort key boundary: match row by row
    for x in a:
        for i, y in enumerate(left):
            if eq(x, y):
                del left[i]
                break
        else:
            return False
    return True


def arrow_rows(table):
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [list(r) for r in zip(*columns)]


def out_of_bigint(rows):
    return any(isinstance(v, (int, decimal.Decimal)) and not isinstance(v, bool)
               and abs(v) > 2 ** 63 - 1 for r in rows for v in r)


def classify(ours, ours_err, theirs, theirs_err, ordered):
    """agree, wrong, strata_failed, both_failed or duckdb_failed."""
    if theirs_err is not None:
        if ours_err is not None:
            return "both_failed"
        if "overflow" in theirs_err.lower() or "out of range" in theirs_err.lower():
            return "wrong"  # DuckDB refuses an overflow that strata wrapped
        return "duckdb_failed"
    if ours_err is not None:
        if "overflow" in ours_err.lower() and out_of_bigint(theirs):
            return "agree"  # DuckDB widened a BIGINT sum to HUGEINT; strata refused it
        return "strata_failed"
    return "agree" if same_rows(ours, theirs, ordered) else "wrong"


# ---- running ---------------------------------------------------------------------------------

class StrataServer:
    """`strata serve` on a free port of 127.0.0.1 over a warehouse, queried through the ADBC
    Flight SQL driver; started again when a query kills it or runs past `timeout` seconds."""

    def __init__(self, binary, warehouse, zone="processed", timeout=60):
        self.binary, self.warehouse, self.zone, self.timeout = binary, warehouse, zone, timeout
        self.proc = None
        self.conn = None
        self.start()

    def start(self):
        import subprocess
        import tempfile

        import adbc_driver_flightsql.dbapi as flight_sql

        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [self.binary, "--warehouse", self.warehouse, "--zone", self.zone, "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("strata serve: listening on "):
            self.proc.kill()
            self.stderr.seek(0)
            raise RuntimeError(f"strata serve did not start: {line!r} {self.stderr.read()}")
        address = line.rsplit(" ", 1)[1].strip()
        t = str(self.timeout)
        self.conn = flight_sql.connect(f"grpc://{address}", autocommit=True, db_kwargs={
            "adbc.flight.sql.rpc.timeout_seconds.query": t,
            "adbc.flight.sql.rpc.timeout_seconds.fetch": t,
            "adbc.flight.sql.rpc.timeout_seconds.update": t,
        })

    def stop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def query(self, sql):
        """(rows, None) or (None, error message). A query without an answer after `timeout`
        seconds (and 15 more for the driver's own deadline) stops the server, which is
        started again: a server stuck in a loop would hold every later query."""
        import threading

        done = {}
        worker = threading.Thread(target=lambda: done.setdefault("r", self._query(sql)), daemon=True)
        worker.start()
        worker.join(self.timeout + 15)
        if worker.is_alive():
            self.proc.kill()
            self.proc.wait()
            worker.join(30)
            self.proc = None
            self.stop()
            self.start()
            return None, f"no answer in {self.timeout + 15:g}s; strata serve was stopped and started again"
        rows, msg, restart = done["r"]
        if restart:
            self.stop()
            self.start()
        return rows, msg

    def _query(self, sql):
        """(rows, error message, whether the server must be started again)."""
        try:
            cur = self.conn.cursor()
            try:
                cur.execute(sql)
                return arrow_rows(cur.fetch_arrow_table()), None, False
            finally:
                try:
                    cur.close()
                except Exception:
                    pass
        except Exception as e:  # the driver's errors carry the server's message
            msg = str(e).strip()
            proc = self.proc
            if proc is not None and proc.poll() is not None:
                self.stderr.seek(0)
                tail = self.stderr.read()[-2000:]
                return None, f"strata serve exited with {proc.returncode}: {tail.strip()}", True
            if any(w in msg.lower() for w in ("deadline", "timeout", "timed out")):
                return None, f"timed out after {self.timeout:g}s: {msg}", True
            return None, msg, False


def duckdb_query(con, sql, timeout=60):
    """(rows, None) or (None, error message) of DuckDB, interrupted after `timeout` seconds."""
    import threading

    timer = threading.Timer(timeout, con.interrupt)
    timer.start()
    try:
        return [list(r) for r in con.execute(sql).fetchall()], None
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        timer.cancel()


def show(rows, limit=8):
    if rows is None:
        return "(error)"
    head = [tuple(r) for r in rows[:limit]]
    more = f" ... {len(rows)} rows" if len(rows) > limit else ""
    return f"{head}{more}"
