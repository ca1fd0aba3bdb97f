"""Flight SQL throughput: a multi-million-row result fetched through `strata serve` into a
pyarrow Table, with the ADBC Flight SQL driver and with pyarrow's own Flight client,
against the same query run in-process (the engine producing every row inside the strata
process: `EXPLAIN ANALYZE` runs the whole plan and keeps no rows).

Run from the repository root after `cargo build --release -p strata-cli`:

    .venv/bin/pip install adbc-driver-flightsql adbc-driver-manager pyarrow
    .venv/bin/python benches/flight.py [--strata target/release/strata] [--sf 1] [--warehouse DIR]

Generates TPC-H at the scale factor with `strata tpch gen` (Parquet; lineitem has 6 million
rows at SF 1) unless the warehouse has it, then prints a markdown report. Each round runs
in-process, ADBC and pyarrow.flight once each, one after the other, so that all three see
the same machine load; the report gives the median of `--runs` warm rounds, rows per
second, and each client's time against in-process. The server's peak memory is shown
against the size of the result, which it streams rather than holds.
"""
import argparse
import os
import statistics
import re
import subprocess
import sys
import tempfile
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from flightsql_command import statement_query  # noqa: E402

QUERIES = {
    "all 16 columns": "SELECT * FROM processed.lineitem",
    "4 numeric columns": "SELECT l_orderkey, l_partkey, l_quantity, l_extendedprice FROM processed.lineitem",
}


def strata_run(strata, warehouse, *args):
    out = subprocess.run([strata, "--warehouse", warehouse, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"strata {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def in_process(strata, warehouse, sql):
    """The time of EXPLAIN ANALYZE, as the footer of strata's table output says it."""
    out = strata_run(strata, warehouse, "-c", f"EXPLAIN ANALYZE {sql}")
    m = re.search(r"rows? in ([0-9.]+)s", out)
    if not m:
        raise SystemExit(f"no timing in the EXPLAIN ANALYZE output:\n{out[-2000:]}")
    return float(m.group(1))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fingerprint(table):
    """What two fetches of one result agree on whatever their row order: the schema, and
    per column the nulls and a sum (of values, or of string lengths)."""
    sums = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_string_view(column.type):
            column = pc.utf8_length(column)
        elif pa.types.is_date(column.type):
            column = column.cast(pa.int32())
        sums.append((column.null_count, pc.sum(column).as_py()))
    return table.schema, table.num_rows, sums


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strata", default="target/release/strata")
    parser.add_argument("--sf", default="1")
    parser.add_argument("--warehouse", help="reuse this warehouse (lineitem is made if missing)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    strata = os.path.abspath(args.strata)
    work = None
    if args.warehouse:
        warehouse = args.warehouse
    else:
        work = tempfile.TemporaryDirectory(prefix="strata-flight-bench-")
        warehouse = os.path.join(work.name, "warehouse")
    if "lineitem" not in strata_run(strata, warehouse, "--format", "csv", "-c", "SHOW TABLES"):
        print(f"generating TPC-H SF {args.sf} ...", file=sys.stderr)
        strata_run(strata, warehouse, "tpch", "gen", "--sf", args.sf)

    server = subprocess.Popen(
        [strata, "--warehouse", warehouse, "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = server.stdout.readline()
        address = line.rsplit(" ", 1)[1].strip()
        uri = f"grpc://{address}"
        conn = flight_sql.connect(uri, autocommit=True)
        client = flight.FlightClient(uri)

        def adbc(sql):
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetch_arrow_table()

        def pyarrow_flight(sql):
            info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)))
            return pa.concat_tables(client.do_get(e.ticket).read_all() for e in info.endpoints)

        rows_out = []
        for name, sql in QUERIES.items():
            # A warm-up round, not counted: files in the page cache, the server's code paged in.
            adbc(sql)
            pyarrow_flight(sql)
            times = {"local": [], "adbc": [], "pyarrow": []}
            table = table_pa = None
            for _ in range(args.runs):
                times["local"].append(in_process(strata, warehouse, sql))
                t, table = timed(lambda: adbc(sql))
                times["adbc"].append(t)
                t, table_pa = timed(lambda: pyarrow_flight(sql))
                times["pyarrow"].append(t)
            if fingerprint(table) != fingerprint(table_pa):
                raise SystemExit(f"{name}: ADBC and pyarrow.flight results differ")
            med = {k: statistics.median(v) for k, v in times.items()}
            rows_out.append((name, table.num_rows, table.nbytes, med["local"], med["adbc"], med["pyarrow"]))
            types = sorted({str(f.type) for f in table.schema if pa.types.is_string(f.type)
                            or pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)})
            strings = f"; strings arrive as {', '.join(types)}" if types else ""
            print(f"{name}: " + ", ".join(f"{k} {' '.join(f'{t:.2f}' for t in v)}" for k, v in times.items())
                  + strings, file=sys.stderr)
        peak = peak_rss_mib(server.pid)
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=60)

    print(f"## Flight SQL fetch against in-process, TPC-H SF {args.sf} lineitem\n")
    print(f"Data: TPC-H SF {args.sf} generated by `strata tpch gen` (Parquet).\n")
    print("| result | rows | Arrow size | in-process | ADBC into pyarrow | ratio | pyarrow.flight | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows, nbytes, local, t_adbc, t_pa in rows_out:
        def rate(t):
            return f"{t:.2f} s ({rows / t / 1e6:.1f} M rows/s)"
        print(
            f"| {name} | {rows:,} | {nbytes / 2**20:,.0f} MiB | {rate(local)} | {rate(t_adbc)} "
            f"| {t_adbc / local:.2f}x | {rate(t_pa)} | {t_pa / local:.2f}x |"
        )
    print(f"\nServer peak memory (VmHWM) over all runs: {peak:,.0f} MiB.")
    print(
        "\nIn-process: EXPLAIN ANALYZE in the strata process (every row produced, none kept). "
        "Flight: GetFlightInfo + DoGet over loopback into one pyarrow Table. Median of "
        f"{args.runs} warm rounds, each running the three one after the other."
    )
    if work:
        work.cleanup()


if __name__ == "__main__":
    main()
