"""S3 benchmark: the same star-schema query on a warehouse in a bucket of a real S3 server on
loopback (strata-testkit's `strata-s3-server`) and on the same files in a local folder, in
one run: the requests and time of the first and second run of the query in one session,
and the time on S3 against the local folder.

Run from the repository root:

    cargo build --release -p strata-cli -p strata-testkit
    python3 benches/s3.py [--sf 1] [--iterations 3]

The data is TPC-H (`strata tpch gen`), written by strata into each warehouse the same way:
Parquet tables in the processed zone, Delta tables in the curated zone. Prints a markdown report; times are
those strata's footer reports (the statement, not the process start-up).
"""
import argparse
import os
import re
import shutil
import subprocess
import tempfile

STAR = """
SELECT n.n_name, o.o_orderpriority, count(*) AS lines, round(sum(l.l_extendedprice * (1 - l.l_discount)), 2) AS revenue
FROM {z}.lineitem l
JOIN {z}.orders o ON l.l_orderkey = o.o_orderkey
JOIN {z}.customer c ON o.o_custkey = c.c_custkey
JOIN {z}.nation n ON c.c_nationkey = n.n_nationkey
WHERE o.o_orderdate >= DATE '1995-01-01' AND o.o_orderdate < DATE '1995-04-01'
  AND n.n_name IN ('FRANCE', 'GERMANY')
GROUP BY n.n_name, o.o_orderpriority ORDER BY 1, 2
"""

TABLES = ["lineitem", "orders", "customer", "nation"]
FOOTER = re.compile(
    r"(\d+) rows? in ([0-9.]+)s; (\d+) files?, ([0-9.]+ [KMGT]?i?B) scanned; (\d+) GET, (\d+) LIST"
)


def strata(binary, warehouse, config, *args):
    cmd = [binary, "--warehouse", warehouse]
    if config:
        cmd += ["--config", config]
    out = subprocess.run(cmd + list(args), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"strata failed: {out.stderr}")
    return out.stdout


def footers(text):
    return [
        {"rows": int(m[1]), "secs": float(m[2]), "files": int(m[3]), "bytes": m[4],
         "get": int(m[5]), "list": int(m[6])}
        for m in FOOTER.finditer(text)
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", default="target/release/strata")
    ap.add_argument("--server", default="target/release/strata-s3-server")
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strata-s3-bench-")
    root = os.path.join(work, "s3")
    server = subprocess.Popen(
        [args.server, "--root", root, "--bucket", "bench"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = server.stdout.readline()
        endpoint = line.strip().split()[-1]
        config = os.path.join(work, "strata.toml")
        with open(config, "w") as f:
            f.write(
                f'[s3]\nendpoint = "{endpoint}"\nregion = "us-east-1"\nallow_http = true\n'
                'access_key_id = "strata"\nsecret_access_key = "strata-secret"\n'
            )
        gen = os.path.join(work, "gen")
        strata(args.strata, gen, None, "tpch", "gen", "--sf", str(args.sf))
        # Both warehouses get the same tables the same way, written by strata through their
        # store: Parquet in processed, Delta in curated.
        local = os.path.join(work, "local")
        s3wh = "s3://bench/warehouse"
        for wh, cfg in ((local, None), (s3wh, config)):
            statements = []
            for t in TABLES:
                statements += [
                    "-c", f"CREATE EXTERNAL TABLE raw.{t} STORED AS PARQUET LOCATION '{gen}/processed/{t}/'",
                    "-c", f"CREATE TABLE processed.{t} STORED AS PARQUET AS SELECT * FROM raw.{t}",
                    "-c", f"CREATE TABLE curated.{t} AS SELECT * FROM raw.{t}",
                ]
            strata(args.strata, wh, cfg, "--stop-on-error", *statements)

        rows = []
        for zone in ("processed", "curated"):
            q = " ".join(STAR.format(z=zone).split())
            for name, wh, cfg in (("local", local, None), ("s3", s3wh, config)):
                runs = []
                for _ in range(args.iterations):
                    out = strata(args.strata, wh, cfg, "-c", q, "-c", q)
                    f = footers(out)
                    if len(f) != 2:
                        raise SystemExit(f"no footers in: {out}")
                    runs.append(f)
                best = lambda i: min(r[i]["secs"] for r in runs)
                rows.append((zone, name, runs[0][0], runs[0][1], best(0), best(1)))
        print(f"## S3 against a local folder, TPC-H SF {args.sf} star query (best of {args.iterations})\n")
        print("| zone | storage | 1st run GET | 1st LIST | 2nd run GET | 2nd LIST | bytes | 1st run s | 2nd run s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for zone, name, first, second, t1, t2 in rows:
            print(f"| {zone} | {name} | {first['get']} | {first['list']} | {second['get']} | "
                  f"{second['list']} | {first['bytes']} | {t1:.3f} | {t2:.3f} |")
        print()
        for zone in ("processed", "curated"):
            l = [r for r in rows if r[0] == zone and r[1] == "local"][0]
            s = [r for r in rows if r[0] == zone and r[1] == "s3"][0]
            print(f"- {zone}: S3/local time ratio, second run: {s[5] / l[5]:.2f}; "
                  f"first run: {s[4] / l[4]:.2f}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
