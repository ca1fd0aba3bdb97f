"""TPC-H on Parquet files any writer made: strata against DuckDB and plain DataFusion in one
run, with the standard substitution parameters and with others drawn from seeds.

    tpchgen-cli parquet -s 1 -o DATA         # older releases: tpchgen-cli -s 1 --format parquet --output-dir DATA
    pip install duckdb datafusion pyarrow deltalake
    python benches/tpch_any.py --strata target/release/strata --data DATA --sf 1 --seeds 0,7
    python benches/tpch_any.py --strata target/release/strata --data DATA --sf 1 \\
        --tables parquet,delta-strata,delta-python --out benches/results/tpch-any-sf1.md

DATA holds a folder (`lineitem/…`) or a file (`lineitem.parquet`) per TPC-H table. The queries
are `benches/tpch/q01.sql … q22.sql` with the parameters of each seed of --seeds
(`tpch_params.py`: seed 0 is the standard set, any other draws values by the rules of the
TPC-H specification).

strata reads the tables from a warehouse this script makes (in a temporary folder, or the
--warehouse folder, kept and reused: what it already holds is not made again):
- parquet: the files themselves, `CREATE EXTERNAL TABLE raw.<t> STORED AS PARQUET LOCATION`;
- delta-strata: Delta copies made by strata, `CREATE TABLE curated.<t> STORED AS DELTA AS
  SELECT * FROM raw.<t>`;
- delta-python: Delta tables written by the `deltalake` package (`write_deltalake`, default
  settings, from the Parquet files read with pyarrow) into `<warehouse>/pydelta/<t>`, and
  registered with `CREATE EXTERNAL TABLE processed.<t> STORED AS DELTA LOCATION`.
--tables takes one or more of them; each is a column of its own.

DuckDB (views over `read_parquet`) and DataFusion (the `datafusion` Python package, default
settings, `register_parquet`; left out with a note when it is not installed) read the Parquet
files, whichever --tables strata reads, and run the same query text.

Method: query by query the engines take turns, the order rotating from one query to the next.
Each runs the query in a process of its own: strata as `strata -w WH --maxrows 0 -f SCRIPT`,
the script being `USE zone;` and the query 1 + --warm times, timed by strata's footers (the
query and printing its rows, not process start-up); DuckDB and DataFusion in a small Python
child that registers the tables, then runs the query 1 + --warm times, each timed around
running it and fetching the result as Arrow. The best warm time counts (the cold one with
--warm 0); --rounds N makes the pass N times and keeps each engine's best of all. Every process
runs under `/usr/bin/time -f %M`: the peak memory is the process's maximum resident set, the
same measure for all three (for the Python children it includes the interpreter and modules;
the report gives each engine's peak for `SELECT 1` as the floor).

Answers: strata's (a separate, untimed run with `--format ndjson`) and DataFusion's rows are
compared with DuckDB's by `engines.answers_match` (numbers within 1e-4 relative, strings exact,
rows tied on the ORDER BY keys in any order). A differing answer shows as WRONG in the table and
makes the exit code 1, as does a strata error.

Prints, per seed, a Markdown table (per query each engine's ms, strata/DuckDB, each engine's
peak MiB, the answers), the totals and a summary line: total ratio, worst query, queries over
1.5x DuckDB, queries whose strata peak is above DuckDB's. --out FILE also writes it, with the
machine, versions, data and method.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import engines  # noqa: E402
import tpch_params  # noqa: E402

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
# Each way strata reads the tables, and the zone its tables are registered in.
VARIANTS = {"parquet": "raw", "delta-strata": "curated", "delta-python": "processed"}
FOOTER = re.compile(r"^\d+ rows?(?: \(\d+ shown\))? in (\d+(?:\.\d+)?)s;", re.M)
TIME_BIN = "/usr/bin/time"
OVER = 1.5  # the ratio to DuckDB the issue allows per query


# ---- the data --------------------------------------------------------------------------------

class Source:
    """One table of --data: where it is (a folder or a file) and its Parquet files."""

    def __init__(self, data, name):
        folder, file = os.path.join(data, name), os.path.join(data, name + ".parquet")
        if os.path.isdir(folder):
            self.location = folder
            self.files = sorted(os.path.join(base, f) for base, dirs, files in os.walk(folder)
                                for f in files if f.endswith(".parquet") and not f.startswith((".", "_")))
        elif os.path.isfile(file):
            self.location, self.files = file, [file]
        else:
            raise SystemExit(f"error: no table {name} in {data}: expected a folder {name}/ or a file "
                             f"{name}.parquet, as tpchgen-cli writes them")
        if not self.files:
            raise SystemExit(f"error: table {name}: no .parquet files under {folder}")


def describe_data(sources):
    """Files, size and writer of the data, as one sentence (no paths)."""
    import pyarrow.parquet as pq

    files = [f for s in sources.values() for f in s.files]
    size = sum(os.path.getsize(f) for f in files)
    meta = pq.ParquetFile(sources["lineitem"].files[0]).metadata
    groups = sum(pq.ParquetFile(f).metadata.num_row_groups for f in sources["lineitem"].files)
    codec = meta.row_group(0).column(0).compression if meta.num_row_groups else "none"
    stats = meta.row_group(0).column(0).statistics if meta.num_row_groups else None
    distinct = "with" if stats is not None and stats.distinct_count is not None else "no"
    return (f"{len(files)} Parquet files, {size / 2**20:.0f} MiB, written by `{meta.created_by}`; "
            f"lineitem: {len(sources['lineitem'].files)} file(s), {groups} row groups, {codec}, "
            f"{distinct} distinct counts")


def sql_quote(text):
    return "'" + text.replace("'", "''") + "'"


def run_strata_script(strata, warehouse, statements):
    """Runs set-up statements; stops the script at the first failure with its message."""
    p = subprocess.run([strata, "-w", warehouse, "--stop-on-error", "-c", "; ".join(statements)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"error: strata set-up failed: {p.stderr.strip()}")


def prepare(strata, warehouse, sources, variants):
    """Registers the Parquet files and makes the Delta copies the variants need."""
    run_strata_script(strata, warehouse, [
        f"CREATE EXTERNAL TABLE IF NOT EXISTS raw.{t} STORED AS PARQUET LOCATION {sql_quote(s.location)}"
        for t, s in sources.items()])
    if "delta-strata" in variants:
        for t in TABLES:
            start = time.perf_counter()
            run_strata_script(strata, warehouse, [
                f"CREATE TABLE IF NOT EXISTS curated.{t} STORED AS DELTA AS SELECT * FROM raw.{t}"])
            print(f"delta-strata: curated.{t} in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    if "delta-python" in variants:
        import pyarrow.dataset as ds
        from deltalake import write_deltalake

        for t in TABLES:
            folder = os.path.join(warehouse, "pydelta", t)
            if not os.path.isdir(os.path.join(folder, "_delta_log")):
                start = time.perf_counter()
                reader = ds.dataset(sources[t].files, format="parquet").scanner(batch_size=65536).to_reader()
                write_deltalake(folder, reader, mode="overwrite")
                print(f"delta-python: {t} in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        run_strata_script(strata, warehouse, [
            f"CREATE EXTERNAL TABLE IF NOT EXISTS processed.{t} STORED AS DELTA LOCATION "
            f"{sql_quote(os.path.join(warehouse, 'pydelta', t))}" for t in TABLES])


# ---- running one engine on one query ---------------------------------------------------------

class Run:
    """One engine's runs of one query (all rounds)."""

    def __init__(self):
        self.times = []  # warm runs (or the cold one with --warm 0), all rounds
        self.peak_kib = 0
        self.error = None
        self.rows = None
        self.names = None
        self.match = None

    @property
    def best(self):
        return min(self.times) if self.times else None

    def ok(self):
        return self.error is None and self.times


def measured(cmd, timeout, work):
    """Runs cmd under /usr/bin/time in a process group of its own: (exit code, stdout, stderr,
    peak KiB). On timeout the whole group is killed and TimeoutError raised."""
    mem = os.path.join(work, "peak.txt")
    if os.path.exists(mem):
        os.remove(mem)
    p = subprocess.Popen([TIME_BIN, "-f", "%M", "-o", mem] + cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise TimeoutError(f"over {timeout:g} s") from None
    peak = 0
    if os.path.exists(mem):
        for line in open(mem):
            if line.strip().isdigit():
                peak = int(line)
    return p.returncode, out, err, peak


def time_strata(strata, warehouse, zone, sql, warm, timeout, work):
    """(times of the 1 + warm runs in ms, peak KiB) of the query in one strata process."""
    script = os.path.join(work, "timed.sql")
    with open(script, "w") as f:
        f.write(f"USE {zone};\n" + (sql.strip().rstrip(";") + ";\n") * (1 + warm))
    code, out, err, peak = measured([strata, "-w", warehouse, "--maxrows", "0", "--stop-on-error", "-f", script],
                                    timeout, work)
    if code != 0:
        raise RuntimeError((err.strip() or f"strata exited with {code}").splitlines()[-1])
    times = [float(s) * 1000 for s in FOOTER.findall(out)]
    if len(times) != 1 + warm:
        raise RuntimeError(f"found {len(times)} timing footers in strata's output, expected {1 + warm}")
    return times, peak


def time_python(engine, spec, sql_file, warm, timeout, work):
    """(times in ms, column names, rows, peak KiB) of the query in a Python child (see child())."""
    result = os.path.join(work, "child.json")
    if os.path.exists(result):
        os.remove(result)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", engine, "--spec", spec,
           "--sql", sql_file, "--warm", str(warm), "--result", result]
    code, out, err, peak = measured(cmd, timeout, work)
    if code != 0 or not os.path.exists(result):
        raise RuntimeError((err.strip() or f"exited with {code}").splitlines()[-1])
    r = json.load(open(result))
    return r["times"], r["names"], r["rows"], peak


def child(engine, spec, sql_file, warm, result):
    """The DuckDB or DataFusion side of one query, in a process of its own: registers the
    tables (untimed), runs the query 1 + warm times, timing each run and the fetch of its result
    as Arrow, and writes the times and the last answer (normalized rows) as JSON."""
    tables = json.load(open(spec))
    sql = open(sql_file).read().strip().rstrip(";")
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        for name, t in tables.items():
            files = "[" + ", ".join(sql_quote(f) for f in t["files"]) + "]"
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet({files})')
        query = lambda: con.sql(sql).to_arrow_table()  # noqa: E731
    else:
        import datafusion

        ctx = datafusion.SessionContext()
        for name, t in tables.items():
            ctx.register_parquet(name, t["location"])
        query = lambda: ctx.sql(sql).to_arrow_table()  # noqa: E731
    times = []
    table = None
    for _ in range(1 + warm):
        start = time.perf_counter()
        table = query()
        times.append((time.perf_counter() - start) * 1000)
    with open(result, "w") as f:
        json.dump({"times": times, "names": table.column_names, "rows": engines.arrow_rows(table)}, f)
    return 0


# ---- reports ---------------------------------------------------------------------------------

def mib(kib):
    return f"{kib / 1024:.0f}" if kib else ""


def ms(run):
    if run is None:
        return ""
    if run.error:
        return "error" if "over" not in run.error else "timeout"
    return f"{run.best:.1f}"


def ratio(a, b):
    if a is None or b is None or not a.ok() or not b.ok() or not b.best:
        return None
    return a.best / b.best


def fmt_ratio(x):
    return "" if x is None else (f"**{x:.2f}**" if x > OVER else f"{x:.2f}")


class Report:
    """The sides of the run and how the tables name them."""

    def __init__(self, variants, python_engines):
        self.variants = variants
        self.strata = [f"strata:{v}" for v in variants]
        self.others = python_engines
        self.sides = self.strata + self.others

    def name(self, side):
        if side.startswith("strata:"):
            v = side.split(":", 1)[1]
            return "strata" if self.variants == ["parquet"] else f"strata {v}"
        return {"duckdb": "DuckDB", "datafusion": "DataFusion"}[side]

    def short(self, side):
        """The name in a ratio's column: the variant alone when strata reads several."""
        if side.startswith("strata:") and len(self.variants) > 1:
            return side.split(":", 1)[1]
        return self.name(side)

    def seed_section(self, results, answers):
        """The table, totals and summary lines of one seed."""
        s = self.sides
        cols = ["query"] + [f"{self.name(x)} ms" for x in s]
        ratios = [(x, "duckdb") for x in self.strata]
        if "strata:parquet" in self.strata:
            ratios += [(x, "strata:parquet") for x in self.strata if x != "strata:parquet"]
        cols += [f"{self.short(a)}/{self.short(b)}" for a, b in ratios]
        cols += [f"{self.name(x)} MiB" for x in s] + ["answers"]
        lines = ["| " + " | ".join(cols) + " |", "|---" + "|---:" * (len(cols) - 2) + "|---|"]
        complete = [q for q in results if all(results[q][x].ok() for x in s)]
        totals = {x: sum(results[q][x].best for q in complete) for x in s}
        for q, runs in results.items():
            cells = [q] + [ms(runs[x]) for x in s]
            cells += [fmt_ratio(ratio(runs[a], runs[b])) for a, b in ratios]
            cells += [mib(runs[x].peak_kib) for x in s] + [answers[q]]
            lines.append("| " + " | ".join(cells) + " |")
        label = "total" + ("" if len(complete) == len(results) else f" ({len(complete)} queries)")
        cells = [label] + [f"{totals[x]:.1f}" for x in s]
        cells += [f"{totals[a] / totals[b]:.2f}" if totals[b] else "" for a, b in ratios]
        cells += ["" for _ in s] + [""]
        lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for v in self.strata:
            lines.append("- " + self.summary(v, results, complete, totals))
        return "\n".join(lines)

    def summary(self, side, results, complete, totals):
        """Total ratio, worst query, queries over 1.5x, queries over DuckDB's peak memory."""
        name = self.name(side)
        parts = []
        if totals["duckdb"]:
            parts.append(f"total {totals[side] / totals['duckdb']:.2f}x DuckDB")
        if "datafusion" in totals and totals["datafusion"]:
            parts.append(f"{totals[side] / totals['datafusion']:.2f}x DataFusion")
        if side != "strata:parquet" and "strata:parquet" in totals and totals["strata:parquet"]:
            parts.append(f"{totals[side] / totals['strata:parquet']:.2f}x strata on the Parquet files")
        by_q = {q: ratio(results[q][side], results[q]["duckdb"]) for q in results}
        known = {q: x for q, x in by_q.items() if x is not None}
        if known:
            worst = max(known, key=known.get)
            parts.append(f"worst {worst} {known[worst]:.2f}x")
        over = [f"{q} {x:.2f}x" for q, x in known.items() if x > OVER]
        parts.append(f"{len(over)} over {OVER}x" + (f" ({', '.join(over)})" if over else ""))
        heavier = [f"{q} {results[q][side].peak_kib / 1024:.0f}/{results[q]['duckdb'].peak_kib / 1024:.0f} MiB"
                   for q in results if results[q][side].ok() and results[q]["duckdb"].ok()
                   and results[q][side].peak_kib > results[q]["duckdb"].peak_kib]
        parts.append(f"{len(heavier)} above DuckDB's peak memory" + (f" ({', '.join(heavier)})" if heavier else ""))
        failed = [q for q in results if results[q][side].error]
        if failed:
            parts.append(f"failed: {', '.join(failed)}")
        if len(complete) != len(results):
            parts.append(f"totals over the {len(complete)} queries every engine ran")
        return f"{name}: " + "; ".join(parts) + "."


# ---- main ------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="folder with a folder or file per TPC-H table (tpchgen-cli's Parquet)")
    ap.add_argument("--sf", type=float, help="the data's scale factor (for Q11's FRACTION and the report)")
    ap.add_argument("--seeds", default="0", help="comma-separated; 0 is the standard parameters")
    ap.add_argument("--strata", help="the strata binary (a release build)")
    ap.add_argument("--tables", default="parquet",
                    help="what strata reads, one or more of " + ",".join(VARIANTS))
    ap.add_argument("--warehouse", help="make (or reuse) the warehouse here and keep it")
    ap.add_argument("--warm", type=int, default=3, help="warm runs per process after the first (cold) one")
    ap.add_argument("--rounds", type=int, default=1, help="passes over the queries; each engine's best of all counts")
    ap.add_argument("--queries", help="only these, e.g. q01,q05")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per process")
    ap.add_argument("--no-datafusion", action="store_true", help="leave DataFusion out")
    ap.add_argument("--out", help="also write the report, with machine, versions, data and method, to this file")
    # The Python children (see child()).
    ap.add_argument("--child", choices=["duckdb", "datafusion"], help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--sql", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.spec, args.sql, args.warm, args.result)

    for flag in ("data", "sf", "strata"):
        if getattr(args, flag) is None:
            ap.error(f"--{flag} is required")
    variants = [v for v in args.tables.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        ap.error(f"--tables: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not os.access(TIME_BIN, os.X_OK):
        sys.exit(f"error: {TIME_BIN} (GNU time) is needed to measure peak memory")
    strata = os.path.abspath(args.strata)
    if importlib.util.find_spec("duckdb") is None:
        sys.exit("error: the duckdb package is needed (pip install duckdb pyarrow)")
    python_engines = ["duckdb"]
    notes = []
    if args.no_datafusion:
        notes.append("DataFusion left out (--no-datafusion).")
    elif importlib.util.find_spec("datafusion") is None:
        notes.append("DataFusion left out: the `datafusion` Python package is not installed.")
        print("note: " + notes[-1], file=sys.stderr)
    else:
        python_engines.append("datafusion")
    report = Report(variants, python_engines)

    data = os.path.abspath(args.data)
    sources = {t: Source(data, t) for t in TABLES}
    names = list(tpch_params.QUERIES)
    if args.queries:
        wanted = args.queries.split(",")
        bad = [q for q in wanted if q not in names]
        if bad:
            ap.error(f"--queries: no query {', '.join(bad)} (q01 … q22)")
        names = [q for q in names if q in wanted]

    work = tempfile.mkdtemp(prefix="strata-tpch-any-")
    try:
        warehouse = os.path.abspath(args.warehouse) if args.warehouse else os.path.join(work, "wh")
        prepare(strata, warehouse, sources, variants)
        spec = os.path.join(work, "tables.json")
        with open(spec, "w") as f:
            json.dump({t: {"location": s.location, "files": s.files} for t, s in sources.items()}, f)

        # The floor of each engine's peak memory: a process that runs SELECT 1.
        one = os.path.join(work, "one.sql")
        with open(one, "w") as f:
            f.write("SELECT 1")
        floor = {"strata": time_strata(strata, warehouse, "raw", "SELECT 1", 0, args.timeout, work)[1]}
        for e in python_engines:
            floor[e] = time_python(e, spec, one, 0, args.timeout, work)[3]

        sections = []
        wrong = failed = 0
        for seed in seeds:
            texts = tpch_params.queries(seed, args.sf)
            folder = os.path.join(work, f"seed-{seed}")
            os.makedirs(folder, exist_ok=True)
            files = {}
            for q in names:
                files[q] = os.path.join(folder, q + ".sql")
                with open(files[q], "w") as f:
                    f.write(texts[q])
            results = {q: {x: Run() for x in report.sides} for q in names}
            busy = set()
            for rnd in range(args.rounds):
                for i, q in enumerate(names):
                    sides = report.sides
                    k = (i + rnd) % len(sides)
                    if compare_running():
                        busy.add(q)
                    for side in sides[k:] + sides[:k]:
                        run = results[q][side]
                        if run.error:
                            continue
                        try:
                            if side.startswith("strata:"):
                                zone = VARIANTS[side.split(":", 1)[1]]
                                times, peak = time_strata(strata, warehouse, zone, texts[q], args.warm,
                                                          args.timeout, work)
                            else:
                                times, names_, rows, peak = time_python(side, spec, files[q], args.warm,
                                                                        args.timeout, work)
                                if run.rows is None:
                                    run.names, run.rows = names_, rows
                        except (RuntimeError, TimeoutError) as err:
                            run.error = str(err)[:300]
                            print(f"seed {seed} {q}: {report.name(side)}: {run.error}", file=sys.stderr)
                            continue
                        run.times += times[1:] if args.warm else times
                        run.peak_kib = max(run.peak_kib, peak)
                    if compare_running():
                        busy.add(q)
                    if rnd == 0:
                        check_answers(strata, warehouse, q, files[q], results[q], report)
                    line = "  ".join(f"{report.name(x)} {ms(results[q][x])}" for x in report.sides)
                    print(f"seed {seed} round {rnd + 1} {q}: {line}  [{verdict(results[q], report)}]",
                          file=sys.stderr)
            answers = {q: verdict(results[q], report) for q in names}
            wrong += sum(1 for q in names for x in report.sides if results[q][x].match is False)
            failed += sum(1 for q in names for x in report.strata if results[q][x].error)
            title = f"## Seed {seed}: " + ("the standard parameters" if seed == 0 else
                                            f"`python benches/tpch_params.py --seed {seed} --sf {args.sf:g}` lists them")
            section = title + "\n\n" + report.seed_section(results, answers)
            if busy:
                section += (f"\n\nA Rust build was running on the machine during {len(busy)} of the "
                            f"{len(names)} queries ({', '.join(sorted(busy))}): those timings are noisy.")
            print(section + "\n", flush=True)
            sections.append(section)

        if args.out:
            write_out(args, strata, variants, python_engines, sources, floor, notes, sections)
        if wrong or failed:
            print(f"{wrong} wrong answers, {failed} strata failures", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare_running():
    """Whether a Rust compiler is running on the machine (it makes timings noisy)."""
    import compare

    return compare.compiler_running()


def check_answers(strata, warehouse, q, sql_file, runs, report):
    """strata's answers (read once, untimed) and DataFusion's against DuckDB's."""
    ref = runs["duckdb"]
    for side in report.sides:
        if side == "duckdb":
            continue
        run = runs[side]
        if run.error or ref.error:
            continue
        if side.startswith("strata:"):
            zone = VARIANTS[side.split(":", 1)[1]]
            try:
                run.rows = engines.strata_rows(strata, warehouse, zone, sql_file, ref.names)
            except RuntimeError as err:
                run.error = str(err).splitlines()[-1][:300]
                continue
        run.match = engines.answers_match(run.rows, ref.rows)
        if not run.match:
            print(engines.differs(q, report.name(side), run.rows, ref.rows), file=sys.stderr)


def verdict(runs, report):
    wrong = [report.name(x) for x in report.sides if runs[x].match is False]
    errors = [report.name(x) for x in report.sides if runs[x].error]
    parts = [f"**WRONG: {x}**" for x in wrong] + [f"{x} failed" for x in errors]
    if parts:
        return ", ".join(parts)
    rows = runs["duckdb"].rows
    return "match" if rows else "match (no rows)"


def write_out(args, strata, variants, python_engines, sources, floor, notes, sections):
    import compare
    import duckdb
    import pyarrow

    versions = [f"strata {subprocess.run([strata, '--version'], capture_output=True, text=True).stdout.split()[-1]}"
                f" (commit {compare.git_commit()}, release build)", f"DuckDB {duckdb.__version__}"]
    if "datafusion" in python_engines:
        import datafusion

        versions.append(f"datafusion {datafusion.__version__} (Python)")
    if "delta-python" in variants:
        import deltalake

        versions.append(f"deltalake {deltalake.__version__}")
    versions += [f"pyarrow {pyarrow.__version__}", f"Python {platform.python_version()}"]
    read = {"parquet": "the Parquet files (`CREATE EXTERNAL TABLE … STORED AS PARQUET`)",
            "delta-strata": "Delta copies strata made (`CREATE TABLE … STORED AS DELTA AS SELECT * FROM` the files)",
            "delta-python": "Delta tables the deltalake package wrote (`write_deltalake`, default settings), "
                            "registered with `CREATE EXTERNAL TABLE … STORED AS DELTA`"}
    floors = ", ".join(f"{'strata' if e == 'strata' else {'duckdb': 'DuckDB', 'datafusion': 'DataFusion'}[e]} "
                       f"{floor[e] / 1024:.0f} MiB" for e in floor)
    header = [
        f"# TPC-H SF {args.sf:g} on Parquet files strata did not write: strata against DuckDB and DataFusion",
        "",
        f"Machine: {compare.machine()}. Run {datetime.date.today().isoformat()}; " + ", ".join(versions)
        + "; each engine with its default threads (all cores).",
        "",
        f"Data: {describe_data(sources)}. DuckDB and DataFusion read these files; strata reads "
        + "; ".join(f"{v}: {read[v]}" for v in variants) + ".",
        "",
        "Method: `benches/tpch_any.py` (its docstring has the details). Query by query the engines take "
        "turns, the order rotating; each runs the query in a fresh process once (cold) and "
        f"{args.warm} more time{'' if args.warm == 1 else 's'} (warm; the best counts)"
        + (f", in {args.rounds} rounds (the best of all)" if args.rounds > 1 else "")
        + ". strata's time is its footer's (the query and printing its rows), the others' the wall time "
        "of running the query and fetching the result as Arrow. Peak memory is each process's maximum "
        f"resident set (`/usr/bin/time -f %M`), start-up included; the floor (a process running "
        f"`SELECT 1`): {floors}. Answers are checked against DuckDB's. Ratios over {OVER} are in bold.",
    ]
    header += ["", *notes] if notes else []
    with open(args.out, "w") as f:
        f.write("\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    sys.exit(main())
