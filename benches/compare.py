"""strata, DuckDB and plain DataFusion side by side on the same Parquet files, in one run.

    cargo build --release -p strata-cli
    pip install duckdb datafusion pyarrow deltalake
    python3 benches/compare.py --suite tpch --sf 1          # or --suite ssb

The suite's data is generated with `strata tpch gen` / `strata ssb gen` (or an existing
warehouse is reused with --warehouse). Then, query by query, the three engines take turns, the
order rotating from one query to the next so that machine noise hits all alike; each runs the
query in a fresh session once (cold; the files are in the OS page cache, as after any earlier
read) and then --warm more times (the best is reported), with the same number of threads.
With --rounds N the whole pass is made N times and the best of all rounds is reported, so that
a slow minute on a shared machine does not decide a query's time.
strata is timed by `strata bench SUITE --queries N` (the query alone, not process start-up);
DuckDB and DataFusion by the wall time of running the query and fetching its result as Arrow.
Every engine's answers are checked against DuckDB's (numbers within 1e-4 relative, strings
exact, rows tied on the ORDER BY keys in any order).

Writes `<suite>-sf<N>.md` (table, machine, method) and `<suite>-sf<N>.svg` (chart) into
benches/results/, and the answer check's outcome into benches/results/correctness.md.
With --check only the answers are compared (one run per engine, no timing files).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import engines  # noqa: E402

ENGINES = ["duckdb", "datafusion", "strata"]
NAMES = {"duckdb": "DuckDB", "datafusion": "DataFusion", "strata": "strata"}
# What strata's bench JSON tells beyond the times, shown in a table of its own when present.
STRATA_EXTRA = ["rows", "files", "files_total", "files_read", "files_pruned", "bytes", "peak_memory_bytes"]
COLORS = {"duckdb": "#e0a030", "datafusion": "#7a9f3a", "strata": "#3b7dd8"}


# ---- the machine -----------------------------------------------------------------------------

def machine():
    """Cores, RAM, CPU model, OS and versions, as one line of markdown."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                ram = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    # The kernel's major.minor only: its full release string names the build host.
    release = ".".join(platform.release().split(".")[:2])
    return f"{os.cpu_count()} cores ({cpu}){ram}, {platform.system()} {release}"


def compiler_running():
    """Whether a Rust compiler is running on the machine (it makes timings noisy)."""
    try:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if open(f"/proc/{pid}/comm").read().strip() == "rustc":
                        return True
                except OSError:
                    pass
    except OSError:
        pass
    return False


def strata_build(results):
    """How the strata binary was built, from its `strata bench` output (older binaries do not say)."""
    builds = (runs["strata"].build for runs in results.values() if "strata" in runs)
    return next((b for b in builds if b), "release build")


def git_commit():
    out = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


# ---- the engines -----------------------------------------------------------------------------

class Run:
    """One engine's runs of one query."""

    def __init__(self):
        self.cold = None
        self.warm = []
        self.rows = None
        self.error = None
        self.extra = {}
        self.build = None  # strata only: how its binary was built, as `strata bench` says

    @property
    def best(self):
        return min(self.warm) if self.warm else self.cold


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return (time.perf_counter() - start) * 1000, value


def run_duckdb(tables, threads, sql, warm):
    r = Run()
    con = engines.duckdb_connect(tables, threads)
    r.cold, table = timed(lambda: con.sql(sql).to_arrow_table())
    for _ in range(warm):
        ms, table = timed(lambda: con.sql(sql).to_arrow_table())
        r.warm.append(ms)
    r.rows = engines.arrow_rows(table)
    return r, table.column_names


def run_datafusion(tables, threads, sql, warm):
    r = Run()
    ctx = engines.datafusion_context(tables, threads)
    r.cold, table = timed(lambda: ctx.sql(sql).to_arrow_table())
    for _ in range(warm):
        ms, table = timed(lambda: ctx.sql(sql).to_arrow_table())
        r.warm.append(ms)
    r.rows = engines.arrow_rows(table)
    return r


def run_strata(prefix, warehouse, zone, suite, query, warm, work):
    """Times the query with `strata bench`; its answer is read separately (strata_rows)."""
    r = Run()
    out = os.path.join(work, "strata.json")
    if os.path.exists(out):
        os.remove(out)
    p = subprocess.run(prefix + ["--warehouse", warehouse, "bench", suite.name, "--zone", zone,
                                 "--queries", suite.bench_id(query), "--iterations", str(warm + 1),
                                 "--output", out], capture_output=True, text=True)
    measured = json.load(open(out)) if os.path.exists(out) else []
    if p.returncode != 0 or len(measured) != 1:
        raise RuntimeError(p.stderr.strip() or f"strata bench gave {len(measured)} results")
    m = measured[0]
    r.cold, r.warm = m["cold_ms"], list(m["warm_ms"])
    r.extra = {k: m[k] for k in STRATA_EXTRA if k in m}
    r.build = m.get("build")
    return r


def failed(err):
    r = Run()
    r.error = (str(err).strip().splitlines() or [type(err).__name__])[-1][:300]
    return r


# ---- reports ---------------------------------------------------------------------------------

def fmt_ms(run):
    return "error" if run is None or run.error else f"{run.best:.1f}"


def fmt_cold(run):
    return "error" if run is None or run.error else f"{run.cold:.1f}"


def ratio(a, b):
    if a is None or b is None or a.error or b.error or not b.best:
        return None
    return a.best / b.best


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def markdown(title, header, results, suite, used, answers):
    lines = [f"# {title}", "", *header, ""]
    cols = ["query"] + [f"{NAMES[e]} ms" for e in used]
    if "strata" in used:
        cols += [f"strata/{NAMES[e]}" for e in used if e != "strata"]
    cols += [f"{NAMES[e]} cold ms" for e in used] + ["answers"]
    lines += ["| " + " | ".join(cols) + " |", "|---" + "|---:" * (len(cols) - 2) + "|---|"]
    totals = {e: 0.0 for e in used}
    complete = [q for q in results if all(not results[q][e].error for e in used)]
    for q, runs in results.items():
        cells = [suite.label(q)] + [fmt_ms(runs[e]) for e in used]
        if "strata" in used:
            for e in used:
                if e != "strata":
                    x = ratio(runs["strata"], runs[e])
                    cells.append("" if x is None else f"{x:.2f}")
        cells += [fmt_cold(runs[e]) for e in used]
        cells.append(answers[q])
        lines.append("| " + " | ".join(cells) + " |")
        if q in complete:
            for e in used:
                totals[e] += runs[e].best
    cells = ["total" + ("" if len(complete) == len(results) else f" ({len(complete)} queries)")]
    cells += [f"{totals[e]:.1f}" for e in used]
    if "strata" in used:
        cells += [f"{totals['strata'] / totals[e]:.2f}" if totals[e] else "" for e in used if e != "strata"]
    cells += ["" for _ in used] + [""]
    lines.append("| " + " | ".join(cells) + " |")
    # strata's own measurements, when its bench reports them.
    extra_keys = []
    for runs in results.values():
        for k in runs["strata"].extra if "strata" in runs else ():
            if k not in extra_keys:
                extra_keys.append(k)
    if extra_keys:
        lines += ["", "strata's reads (from `strata bench`):", "",
                  "| query | " + " | ".join(k.replace("_bytes", "").replace("_", " ") for k in extra_keys) + " |",
                  "|---" + "|---:" * len(extra_keys) + "|"]
        for q, runs in results.items():
            cells = [suite.label(q)]
            for k in extra_keys:
                v = runs["strata"].extra.get(k, "")
                if isinstance(v, (int, float)) and "bytes" in k:
                    v = fmt_bytes(v)
                cells.append(str(v))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def svg_chart(title, results, suite, used):
    """Per-query grouped bars (warm ms of each engine), strata's ratios above each group."""
    n = len(results)
    slot, left, right, bottom, top = 50, 60, 20, 40, 110
    width, height = max(700, left + right + n * slot), 420
    best = [r.best for runs in results.values() for r in runs.values() if not r.error and r.best]
    top_ms = max(best + [1])
    scale = (height - bottom - top) / top_ms
    bar = (slot * 0.78) / len(used)
    base = height - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{title}</text>',
           f'<text x="{left}" y="38" fill="#555">best warm run in ms, lower is better; numbers above each '
           f'query, top to bottom: ' + ", ".join(f"strata/{NAMES[e]}" for e in used if e != "strata")
           + " (red: over 2)</text>"]
    x = left
    for e in used:
        out.append(f'<rect x="{x}" y="50" width="10" height="10" fill="{COLORS[e]}"/>'
                   f'<text x="{x + 14}" y="59">{NAMES[e]}</text>')
        x += 100
    # y axis: a few gridlines
    step = 10 ** len(str(int(top_ms))) / 10
    while top_ms / step > 6:
        step *= 2
    v = 0.0
    while v <= top_ms:
        y = base - v * scale
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e4e4e4"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{v:g}</text>')
        v += step
    out.append(f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#333"/>')
    for i, (q, runs) in enumerate(results.items()):
        x0 = left + i * slot + slot * 0.11
        tallest = 0
        for j, e in enumerate(used):
            r = runs[e]
            if r.error:
                out.append(f'<text x="{x0 + j * bar:.1f}" y="{base - 3}" font-size="8" fill="red">x</text>')
                continue
            h = r.best * scale
            tallest = max(tallest, h)
            out.append(f'<rect x="{x0 + j * bar:.1f}" y="{base - h:.1f}" width="{bar - 1:.1f}" '
                       f'height="{h:.1f}" fill="{COLORS[e]}"><title>{suite.label(q)} {NAMES[e]}: '
                       f'{r.best:.1f} ms</title></rect>')
        if "strata" in used:
            labels = [ratio(runs["strata"], runs[e]) for e in used if e != "strata"]
            for k, x in enumerate(reversed(labels)):
                if x is not None:
                    color = "#b00" if x > 2 else "#333"
                    out.append(f'<text x="{x0 + slot * 0.39:.1f}" y="{base - tallest - 4 - 11 * k:.1f}" '
                               f'font-size="9" text-anchor="middle" fill="{color}">{x:.2f}</text>')
        out.append(f'<text x="{x0 + slot * 0.39:.1f}" y="{base + 14}" text-anchor="middle">{suite.label(q)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def record_correctness(folder, key, outcome):
    """Keeps one line per suite, scale factor and layout in correctness.md."""
    path = os.path.join(folder, "correctness.md")
    head = ["# Answers checked against DuckDB", "",
            "Each engine's answers to every query of the suite, on the same files, against DuckDB's "
            "(numbers within 1e-4 relative, strings exact, rows tied on the ORDER BY keys in any "
            "order), by `benches/compare.py`. Latest run of each:", "",
            "| suite | scale factor | layout | strata | DataFusion | checked on | commit |",
            "|---|---:|---|---|---|---|---|"]
    rows = {}
    if os.path.exists(path):
        for line in open(path):
            if line.startswith("| ") and not line.startswith("| suite"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                rows[tuple(cells[:3])] = line.rstrip("\n")
    rows[key] = "| " + " | ".join(list(key) + outcome) + " |"
    order = lambda k: (k[0], float(k[1]), k[2])  # noqa: E731
    with open(path, "w") as f:
        f.write("\n".join(head + [rows[k] for k in sorted(rows, key=order)]) + "\n")


# ---- main ------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=sorted(engines.SUITES), default="tpch")
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--strata", default=os.path.join(engines.ROOT, "target", "release", "strata"))
    ap.add_argument("--warm", type=int, default=3, help="warm runs per engine and query (after one cold run)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time every query this many times over, one pass over the suite after "
                         "another (the best of all rounds is reported)")
    ap.add_argument("--iterations", type=int, help="runs per query in all (the first cold): --warm N-1")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--layout",
                    choices=["parquet", "partitioned", "delta", "delta-partitioned"],
                    help="how `strata … gen` writes the tables (partitioned: year= folders); "
                         "default: as `gen` does without flags (TPC-H plain Parquet, SSB lineorder in year= folders)")
    ap.add_argument("--zone", default="processed")
    ap.add_argument("--warehouse", help="use (or generate once into) this warehouse folder and keep it")
    ap.add_argument("--queries", help="only these, e.g. q01,q05 or q1.1")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    ap.add_argument("--check", action="store_true", help="compare answers only, no timings written")
    ap.add_argument("--results", default=os.path.join(HERE, "results"),
                    help="folder for the table, chart and correctness record ('' to skip)")
    args = ap.parse_args(argv)
    if args.iterations is not None:
        args.warm = max(args.iterations - 1, 1)
    suite = engines.SUITES[args.suite]
    args.layout = args.layout or suite.default_layout
    used = [e for e in ENGINES if e in args.engines.split(",")]
    if "duckdb" not in used:
        ap.error("DuckDB is the reference: keep it in --engines")
    queries = suite.queries
    if args.queries:
        wanted = set(args.queries.split(","))
        queries = [q for q in queries if suite.label(q) in wanted]
    if not queries:
        sys.exit(f"no queries of {args.suite} found under benches/{args.suite}/")
    strata = os.path.abspath(args.strata)
    prefix = [strata]
    if args.threads != os.cpu_count():
        # strata sizes its thread pool and partitions by the CPUs it may run on.
        if not shutil.which("taskset"):
            sys.exit("--threads other than the machine's cores needs taskset for strata")
        prefix = ["taskset", "-c", f"0-{args.threads - 1}", strata]

    work = tempfile.mkdtemp(prefix=f"strata-{args.suite}-")
    try:
        warehouse = os.path.abspath(args.warehouse) if args.warehouse else os.path.join(work, "wh")
        probe = os.path.join(warehouse, args.zone, "lineitem" if args.suite == "tpch" else "lineorder")
        if not os.path.isdir(probe):
            gen = prefix + ["--warehouse", warehouse] + suite.gen_args(args.sf, args.layout)
            if args.zone != "processed":
                gen += ["--zone", args.zone]
            print("generating:", " ".join(gen[len(prefix) - 1:]), file=sys.stderr)
            start = time.perf_counter()
            subprocess.run(gen, check=True, capture_output=True)
            print(f"  {time.perf_counter() - start:.1f}s", file=sys.stderr)
        tables = engines.zone_tables(warehouse, args.zone)
        layout = engines.layout_of(tables)
        made = ("`strata " + " ".join(suite.gen_args(args.sf, args.layout)) + "`"
                if args.layout == layout else f"zone {args.zone} of a warehouse made earlier")
        import duckdb
        versions = {"duckdb": duckdb.__version__, "strata": subprocess.run(
            [strata, "--version"], capture_output=True, text=True).stdout.split()[-1]}
        if "datafusion" in used:
            import datafusion
            versions["datafusion"] = datafusion.__version__

        results, answers = {}, {}
        compiled = set()  # the queries timed while a Rust build was running

        def run_query(i, q):
            sql = engines.sql_text(q)
            label = suite.label(q)
            busy = compiler_running()
            order = used[i % len(used):] + used[:i % len(used)]
            runs, names = {}, []
            warm = 0 if args.check else args.warm
            for e in order:
                try:
                    if e == "duckdb":
                        runs[e], names = run_duckdb(tables, args.threads, sql, warm)
                    elif e == "datafusion":
                        runs[e] = run_datafusion(tables, args.threads, sql, warm)
                    elif args.check:
                        runs[e] = Run()
                    else:
                        runs[e] = run_strata(prefix, warehouse, args.zone, suite, q, warm, work)
                except Exception as err:  # noqa: BLE001 - an engine's failure is a result
                    runs[e] = failed(err)
            # strata's answer, untimed, read with DuckDB's column names.
            if "strata" in runs and not runs["strata"].error:
                try:
                    runs["strata"].rows = engines.strata_rows(strata, warehouse, args.zone, q, names)
                except Exception as err:  # noqa: BLE001
                    runs["strata"] = failed(err)
            busy = busy or compiler_running()
            if busy:
                compiled.add(q)
            ref = runs["duckdb"]
            verdict = []
            for e in used:
                if e == "duckdb":
                    continue
                r = runs[e]
                if r.error or ref.error:
                    r.match = None
                    verdict.append(f"{NAMES[e]} error")
                else:
                    r.match = engines.answers_match(r.rows, ref.rows)
                    if not r.match:
                        verdict.append(f"{NAMES[e]} differs")
                        print(engines.differs(label, e, r.rows, ref.rows), file=sys.stderr)
            # An empty answer matches an empty answer, but proves less: say so.
            answers[q] = ", ".join(verdict) or ("match" if ref.rows else "match (no rows)")
            results[q] = {e: runs[e] for e in used}
            line = "  ".join(f"{NAMES[e]} " + ("error: " + runs[e].error if runs[e].error else
                                               ("ok" if args.check else f"{runs[e].best:.1f} ms"))
                             for e in used)
            print(f"{label}: {line}  [{answers[q]}]{'  (a build was running)' if busy else ''}", file=sys.stderr)

        def time_again(turn, q):
            """Another round of timings for q, merged into its first (warm and cold: the best)."""
            order = used[turn % len(used):] + used[:turn % len(used)]
            busy = compiler_running()
            for e in order:
                first = results[q][e]
                if first.error:
                    continue
                try:
                    if e == "duckdb":
                        run, _ = run_duckdb(tables, args.threads, engines.sql_text(q), args.warm)
                    elif e == "datafusion":
                        run = run_datafusion(tables, args.threads, engines.sql_text(q), args.warm)
                    else:
                        run = run_strata(prefix, warehouse, args.zone, suite, q, args.warm, work)
                except Exception as err:  # noqa: BLE001 - the first round's result stands
                    print(f"{suite.label(q)}: {NAMES[e]} failed in a later round: {err}", file=sys.stderr)
                    continue
                first.warm.extend(run.warm)
                first.cold = min(first.cold, run.cold)
            if busy or compiler_running():
                compiled.add(q)

        # Later rounds time the queries again (answers were checked in the first): a slow
        # minute on a shared machine then hits one round of a query, not its only one.
        rounds = 1 if args.check else args.rounds
        for rnd in range(rounds):
            for i, q in enumerate(queries):
                if rnd == 0:
                    run_query(i, q)
                else:
                    time_again(i + rnd, q)
            if rounds > 1:
                print(f"round {rnd + 1} of {rounds} done", file=sys.stderr)

        counts = {e: sum(1 for q in results if getattr(results[q][e], "match", None)) for e in used if e != "duckdb"}
        empty = sum(1 for q in results if not results[q]["duckdb"].error and not results[q]["duckdb"].rows)
        note = f" ({empty} with no rows)" if empty else ""
        summary = ", ".join(f"{NAMES[e]} {counts[e]}/{len(queries)}" for e in counts) + note
        print(f"answers matching DuckDB: {summary}", file=sys.stderr)
        today = datetime.date.today().isoformat()
        if args.results:
            os.makedirs(args.results, exist_ok=True)
            if len(queries) == len(suite.queries):
                outcome = [f"{counts[e]}/{len(queries)} match{note}" if e in counts else "not run"
                           for e in ("strata", "datafusion")]
                record_correctness(args.results, (suite.title, f"{args.sf:g}", layout), outcome + [today, git_commit()])
        if args.check:
            return 0 if all(c == len(queries) for c in counts.values()) else 1

        described = {"parquet": "Parquet", "partitioned": "Parquet, fact tables in year= folders",
                     "delta": "Delta", "delta-partitioned": "Delta, fact tables partitioned by year"}[layout]
        title = (f"{suite.title} SF {args.sf:g}: strata against DuckDB and DataFusion, "
                 f"{args.threads} threads, warm")
        nfiles = sum(len(t.files) for t in tables.values())
        size = sum(os.path.getsize(f) for t in tables.values() for f in t.files)
        header = [
            f"Machine: {machine()}. Run {today}, strata {versions['strata']} (commit {git_commit()}, {strata_build(results)}), "
            f"DuckDB {versions['duckdb']}"
            + (f", datafusion {versions['datafusion']} (Python)" if "datafusion" in versions else "")
            + f"; {args.threads} threads for each engine.",
            "",
            f"Data: {made} ({described}; {nfiles} files, "
            f"{fmt_bytes(size)}), read by all three engines.",
            "",
            "Method: query by query the engines take turns (the order rotating from one query to the "
            "next); each runs the query in a fresh session once (cold: the files are in the OS page "
            f"cache, but no engine has cached anything) and then {args.warm} more times (warm; the "
            "best is shown)."
            + (f" The whole pass over the queries was made {args.rounds} times, one after another; "
               "each time shown is the best of all rounds." if args.rounds > 1 else "")
            + " strata is timed inside `strata bench`, the others around running the "
            "query and fetching its result as Arrow. Answers are checked against DuckDB's.",
            "",
            f"Answers matching DuckDB: {summary}.",
        ]
        compiling = len(compiled)
        if compiling:
            header += ["", f"A Rust build was running on the machine during {compiling} of the "
                           f"{len(queries)} queries: those timings are noisy."]
        report = markdown(title, header, results, suite, used, answers)
        print(report)
        if args.results:
            name = f"{args.suite}-sf{args.sf:g}" + ("" if layout == suite.default_layout else f"-{layout}")
            with open(os.path.join(args.results, name + ".md"), "w") as f:
                f.write(report)
            with open(os.path.join(args.results, name + ".svg"), "w") as f:
                f.write(svg_chart(title, results, suite, used))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
