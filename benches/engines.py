"""Shared by the side-by-side benchmark (`benches/compare.py`) and the answer checks in
`interop/`: the benchmark suites, the tables of a zone as DuckDB and DataFusion see them, the
engines' answers, and comparing answers (numbers within 1e-4 relative, since engines round
decimal averages differently; strings exact; rows tied on the ORDER BY keys in any order).

DataFusion is imported only when asked for, so the interop checks need only DuckDB.
"""
import datetime
import decimal
import glob
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Suite:
    """A benchmark suite: its SQL files, how strata generates its data and names its queries."""

    def __init__(self, name, title, pattern, bench_id, partitioned_by_default):
        self.name = name
        self.title = title
        self.queries = sorted(glob.glob(os.path.join(ROOT, "benches", name, pattern)), key=self._order)
        self._bench_id = bench_id
        self._partitioned_by_default = partitioned_by_default
        # The layout of `strata SUITE gen` without flags (see layout_of).
        self.default_layout = "partitioned" if partitioned_by_default else "parquet"

    @staticmethod
    def _order(path):
        return [int(p) for p in os.path.basename(path)[1:-4].split(".")]

    @staticmethod
    def label(path):
        """How tables and charts name a query: q01, q1.1."""
        return os.path.basename(path)[:-4]

    def bench_id(self, path):
        """The query's number for `strata bench SUITE --queries`: 1 for q01.sql, 1.1 for q1.1.sql."""
        return self._bench_id(os.path.basename(path)[1:-4])

    def gen_args(self, sf, layout=None):
        """`strata --warehouse W <these>` generates the suite's tables at scale factor `sf` in
        `layout` (parquet, partitioned, delta, delta-partitioned; default: the suite's own)."""
        layout = layout or self.default_layout
        args = [self.name, "gen", "--sf", f"{sf:g}"]
        partitioned = "partitioned" in layout
        if partitioned and not self._partitioned_by_default:
            args.append("--partitioned")
        if not partitioned and self._partitioned_by_default:
            args.append("--unpartitioned")
        if layout.startswith("delta"):
            args += ["--format", "delta"]
        return args


SUITES = {
    # `tpch gen --partitioned` puts lineitem and orders in year= folders.
    "tpch": Suite("tpch", "TPC-H", "q[0-9][0-9].sql", lambda n: str(int(n)), partitioned_by_default=False),
    # `ssb gen` puts lineorder in year= folders unless --unpartitioned.
    "ssb": Suite("ssb", "SSB", "q[0-9].[0-9].sql", lambda n: n, partitioned_by_default=True),
}


# ---- the tables of a zone, as files ----------------------------------------------------------

def _data_files(folder):
    """Parquet files under `folder`, skipping hidden and `_` folders (`_delta_log`)."""
    found = []
    for base, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found += [os.path.join(base, f) for f in sorted(files)
                  if f.endswith(".parquet") and not f.startswith((".", "_"))]
    return found


class Table:
    """One table folder: its Parquet files, hive partition columns and whether it is Delta."""

    def __init__(self, name, folder):
        self.name = name
        self.folder = folder
        self.delta = os.path.isdir(os.path.join(folder, "_delta_log"))
        if self.delta:
            from deltalake import DeltaTable  # the live files, not every file ever written
            uris = DeltaTable(folder).file_uris()
            self.files = [u[len("file://"):] if u.startswith("file://") else u for u in uris]
        else:
            self.files = _data_files(folder)
        if not self.files:
            raise RuntimeError(f"table {name}: no Parquet files under {folder}")
        rel = os.path.relpath(os.path.dirname(self.files[0]), folder)
        keys = [p.split("=", 1)[0] for p in rel.split(os.sep) if "=" in p]
        self.partitions = []
        for i, key in enumerate(keys):
            values = {os.path.relpath(f, folder).split(os.sep)[i].split("=", 1)[1] for f in self.files}
            numeric = all(v.lstrip("-").isdigit() for v in values)
            self.partitions.append((key, "bigint" if numeric else "varchar"))


def zone_tables(warehouse, zone="processed"):
    """Every table folder of a zone of a local warehouse, by name."""
    root = os.path.join(warehouse, zone)
    return {d: Table(d, os.path.join(root, d)) for d in sorted(os.listdir(root))
            if os.path.isdir(os.path.join(root, d)) and not d.startswith((".", "_"))}


def layout_of(tables):
    """parquet, partitioned (hive folders), delta or delta-partitioned."""
    delta = any(t.delta for t in tables.values())
    parts = any(t.partitions for t in tables.values())
    return {(False, False): "parquet", (False, True): "partitioned",
            (True, False): "delta", (True, True): "delta-partitioned"}[(delta, parts)]


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def duckdb_connect(tables, threads=None):
    """A DuckDB connection with a view per table over its files (hive columns included)."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for t in tables.values():
        files = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in t.files) + "]"
        hive = ", hive_partitioning = true" if t.partitions else ""
        con.execute(f"CREATE VIEW {_quote(t.name)} AS SELECT * FROM read_parquet({files}{hive})")
    return con


def datafusion_context(tables, threads=None):
    """A DataFusion SessionContext (default settings but the partition count) with every table
    registered: Parquet folders as listing tables, hive columns declared; Delta tables through
    the deltalake package's table provider."""
    import datafusion
    import pyarrow as pa

    config = datafusion.SessionConfig()
    if threads:
        config = config.with_target_partitions(int(threads))
    ctx = datafusion.SessionContext(config)
    for t in tables.values():
        cols = [(k, pa.int64() if ty == "bigint" else pa.string()) for k, ty in t.partitions]
        if t.delta:
            from deltalake import DeltaTable  # its DataFusion table provider

            ctx.register_table(t.name, DeltaTable(t.folder))
        else:
            ctx.register_parquet(t.name, t.folder, table_partition_cols=cols or None)
    return ctx


# ---- answers ---------------------------------------------------------------------------------

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


def answers_match(ours, theirs):
    """Same rows in the same order; rows tied on the ORDER BY keys may come in any order."""
    if rows_equal(ours, theirs):
        return True
    key = lambda r: [str(v) for v in r]  # noqa: E731
    return rows_equal(sorted(ours, key=key), sorted(theirs, key=key))


def arrow_rows(table):
    """Normalized rows of a pyarrow Table."""
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [[normalize(v) for v in row] for row in zip(*columns)]


def sql_text(path):
    """A query file's SQL as one statement (DataFusion's Python API takes one)."""
    return open(path).read().strip().rstrip(";")


def duckdb_answer(con, sql):
    """(column names, normalized rows) of a query on DuckDB."""
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return names, [[normalize(v) for v in row] for row in result.fetchall()]


def strata_rows(binary, warehouse, zone, query_file, names):
    """Normalized rows of a query file run by the strata CLI, columns in the order of `names`
    (looked up by name; when the names differ from `names`, by position: each JSON object
    holds every column, NULL ones included)."""
    out = subprocess.run([binary, "--warehouse", warehouse, "--zone", zone, "--format", "ndjson",
                          "-f", query_file], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"strata exited with {out.returncode}")
    objs = [json.loads(line) for line in out.stdout.splitlines() if line]
    if objs and not set(objs[0]) <= set(names) and len(objs[0]) == len(names):
        return [[normalize(v) for v in o.values()] for o in objs]
    return [[normalize(o.get(n)) for n in names] for o in objs]


def differs(label, engine, ours, theirs):
    """A message naming the first rows of two differing answers."""
    return f"{label} differs:\n{engine}: {ours[:5]}\nduckdb: {theirs[:5]}"
