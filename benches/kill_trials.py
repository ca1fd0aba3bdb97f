#!/usr/bin/env python3
"""Kill trials: writes killed with SIGKILL at random moments, and at every failpoint.

Each trial makes a fresh warehouse, sets up the table a write needs, starts the write
(CREATE TABLE … AS on Parquet and Delta, INSERT, INSERT OVERWRITE with and without
PARTITION, and UPDATE / DELETE / MERGE on Delta), kills it with SIGKILL after a random
delay (or lets `STRATA_FAILPOINT` abort it at a named step), and then checks:

- the table reads as before the write or as after it, never between, with no row twice;
- running the write again succeeds (a CREATE TABLE that had landed may say "already
  exists") and leaves the table as after it.

A trial fails if any check fails. Usage:

    python3 benches/kill_trials.py --strata target/release/strata --trials 150 --seed 1

Prints one line per trial and a summary; exits non-zero if any trial failed.
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROWS = 200_000


def span(lo, hi):
    return (lo + hi) * (hi - lo + 1) // 2


def cases(rows):
    half = rows // 2
    keep = sum(v for v in range(1, rows + 1) if v % 4 >= 2)
    return [
        dict(
            name="ctas_parquet", table="processed.c", setup=[],
            sql=f"CREATE TABLE processed.c PARTITIONED BY (g) AS SELECT value AS id, value % 3 AS g FROM generate_series(1, {rows})",
            apply=lambda s: (rows, rows, span(1, rows)),
            failpoints=["after_data_files", "during_swap", "before_catalog_commit", "after_catalog_commit"],
        ),
        dict(
            name="ctas_delta", table="curated.c", setup=[],
            sql=f"CREATE TABLE curated.c STORED AS DELTA AS SELECT value AS id FROM generate_series(1, {rows})",
            apply=lambda s: (rows, rows, span(1, rows)),
            failpoints=["before_delta_commit", "after_delta_commit", "before_catalog_commit"],
        ),
        dict(
            name="insert_parquet", table="processed.t",
            setup=[f"CREATE TABLE processed.t AS SELECT value AS id FROM generate_series(1, {half})"],
            sql=f"INSERT INTO processed.t SELECT value AS id FROM generate_series({half + 1}, {rows})",
            # Run twice, an insert adds its rows twice; they are new ids only the first time.
            apply=lambda s: (s[0] + rows - half, s[1] + (rows - half if s[0] == half else 0),
                             s[2] + span(half + 1, rows)),
            failpoints=["after_data_files", "during_swap", "before_catalog_commit", "after_catalog_commit"],
        ),
        dict(
            name="overwrite_parquet", table="processed.t",
            setup=[f"CREATE TABLE processed.t AS SELECT value AS id FROM generate_series(1, {rows})"],
            sql=f"INSERT OVERWRITE processed.t SELECT value AS id FROM generate_series({10 * rows + 1}, {11 * rows})",
            apply=lambda s: (rows, rows, span(10 * rows + 1, 11 * rows)),
            failpoints=["after_data_files", "during_swap", "before_catalog_commit", "after_catalog_commit"],
        ),
        dict(
            name="overwrite_partition_parquet", table="processed.p",
            setup=[f"CREATE TABLE processed.p PARTITIONED BY (g) AS SELECT value AS id, value % 4 AS g FROM generate_series(1, {rows})"],
            sql=f"INSERT OVERWRITE processed.p PARTITION (g) SELECT value + {10 * rows} AS id, value % 2 AS g FROM generate_series(1, {half})",
            apply=lambda s: (rows, rows, keep + span(10 * rows + 1, 10 * rows + half)),
            failpoints=["after_data_files", "during_swap", "before_catalog_commit", "after_catalog_commit"],
        ),
        dict(
            name="insert_delta", table="curated.d",
            setup=[f"CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id FROM generate_series(1, {half})"],
            sql=f"INSERT INTO curated.d SELECT value AS id FROM generate_series({half + 1}, {rows})",
            # Run twice, an insert adds its rows twice; they are new ids only the first time.
            apply=lambda s: (s[0] + rows - half, s[1] + (rows - half if s[0] == half else 0),
                             s[2] + span(half + 1, rows)),
            failpoints=["before_delta_commit", "after_delta_commit"],
        ),
        dict(
            name="update_delta", table="curated.d",
            setup=[f"CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id FROM generate_series(1, {rows})"],
            sql=f"UPDATE curated.d SET id = id + {100 * rows} WHERE id <= {half}",
            apply=lambda s: (rows, rows, span(half + 1, rows) + span(100 * rows + 1, 100 * rows + half)),
            failpoints=["before_delta_commit", "after_delta_commit"],
        ),
        dict(
            name="delete_delta", table="curated.d",
            setup=[f"CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id FROM generate_series(1, {rows})"],
            sql=f"DELETE FROM curated.d WHERE id <= {half}",
            apply=lambda s: (rows - half, rows - half, span(half + 1, rows)),
            failpoints=["before_delta_commit", "after_delta_commit"],
        ),
        dict(
            name="merge_delta", table="curated.d",
            setup=[
                f"CREATE TABLE curated.d STORED AS DELTA AS SELECT value AS id, 0 AS v FROM generate_series(1, {rows})",
                f"CREATE TABLE curated.src STORED AS DELTA AS SELECT value AS id, 1 AS v FROM generate_series({half + 1}, {rows + half})",
            ],
            sql="MERGE INTO curated.d t USING curated.src s ON t.id = s.id "
                "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)",
            apply=lambda s: (rows + half, rows + half, span(1, rows + half)),
            failpoints=["before_delta_commit", "after_delta_commit"],
        ),
    ]


def strata(binary, wh, sql, env=None, check=True):
    p = subprocess.run([binary, "--warehouse", wh, "--format", "csv", "-c", sql],
                       capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f"{sql}: {p.stderr.strip()}")
    return p


def state(binary, wh, table):
    p = strata(binary, wh,
               f"SELECT count(*) AS n, count(DISTINCT id) AS d, coalesce(sum(id), 0) AS s FROM {table}",
               check=False)
    if p.returncode != 0:
        if "not found" in p.stderr or "does not exist" in p.stderr:
            return None
        raise RuntimeError(f"{table} cannot be read: {p.stderr.strip()}")
    return tuple(int(x) for x in p.stdout.splitlines()[1].split(","))


def staging_left(wh):
    return [os.path.join(d, n) for d, dirs, _ in os.walk(wh) for n in dirs
            if n.startswith("_strata_staging_")]


def trial(binary, case, rng, failpoint, max_delay):
    wh = tempfile.mkdtemp(prefix="kill-trial-")
    try:
        env = dict(os.environ)
        env.pop("STRATA_WAREHOUSE", None)
        if case["setup"]:
            subprocess.run([binary, "--warehouse", wh, "--stop-on-error"]
                           + [a for sql in case["setup"] for a in ("-c", sql)],
                           capture_output=True, text=True, env=env, check=True)
        before = state(binary, wh, case["table"])
        after = case["apply"](before)
        if failpoint:
            env["STRATA_FAILPOINT"] = failpoint
            p = subprocess.run([binary, "--warehouse", wh, "-c", case["sql"]],
                               capture_output=True, text=True, env=env)
            how = f"failpoint {failpoint}: " + ("died" if p.returncode < 0 else f"exit {p.returncode}")
            if p.returncode >= 0:
                return False, how + " (the failpoint was not reached)"
        else:
            delay = rng.uniform(0, max_delay)
            proc = subprocess.Popen([binary, "--warehouse", wh, "-c", case["sql"]],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
            how = f"kill -9 after {delay:.2f}s: " + ("killed" if code < 0 else f"had finished ({code})")
        now = state(binary, wh, case["table"])
        if now not in (before, after):
            return False, f"{how}; {now} is neither before {before} nor after {after}"
        if now and now[0] != now[1]:
            return False, f"{how}; rows twice: {now}"
        p = strata(binary, wh, case["sql"], check=False)
        again = state(binary, wh, case["table"])
        if p.returncode == 0:
            if again != case["apply"](now):
                return False, f"{how}; after the retry {again}, expected {case['apply'](now)}"
        elif not (case["name"].startswith("ctas") and now == after and "already exists" in p.stderr):
            return False, f"{how}; the retry failed: {p.stderr.strip()}"
        left = staging_left(wh)
        if left and p.returncode == 0:
            return False, f"{how}; staging folders left after the retry: {left}"
        if case["table"].startswith("processed."):
            # VACUUM removes what the dead writer left: the folder read whole is the table.
            name = case["table"].split(".")[1]
            p = subprocess.run(
                [binary, "--warehouse", wh, "--format", "csv", "--stop-on-error",
                 "-c", f"VACUUM {case['table']} RETAIN 0 HOURS",
                 "-c", "CREATE EXTERNAL TABLE processed.whole STORED AS PARQUET "
                       f"LOCATION '{os.path.join(wh, 'processed', name)}/'",
                 "-c", "SELECT count(*) AS n, count(DISTINCT id) AS d, coalesce(sum(id), 0) AS s "
                       "FROM processed.whole"],
                capture_output=True, text=True, env=env)
            if p.returncode != 0:
                return False, f"{how}; VACUUM and reading the folder whole failed: {p.stderr.strip()}"
            whole = tuple(int(x) for x in p.stdout.strip().splitlines()[-1].split(","))
            if whole != again:
                return False, f"{how}; after VACUUM the folder holds {whole}, the table {again}"
        left = staging_left(wh)
        if left:
            return False, f"{how}; staging folders left after VACUUM: {left}"
        return True, how
    finally:
        shutil.rmtree(wh, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", default="target/release/strata")
    ap.add_argument("--trials", type=int, default=150, help="random-moment kills")
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument("--max-delay", type=float, default=3.0, help="latest kill, seconds after start")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-failpoints", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    all_cases = cases(args.rows)
    runs = []
    if not args.no_failpoints:
        runs += [(c, fp) for c in all_cases for fp in c["failpoints"]]
    runs += [(rng.choice(all_cases), None) for _ in range(args.trials)]
    failures = 0
    for i, (case, fp) in enumerate(runs, 1):
        try:
            ok, how = trial(args.strata, case, rng, fp, args.max_delay)
        except Exception as e:  # a setup or read that failed is a failed trial too
            ok, how = False, f"error: {e}"
        failures += not ok
        print(f"[{i}/{len(runs)}] {case['name']}: {'ok' if ok else 'FAILED'} ({how})", flush=True)
    print(f"{len(runs)} trials, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
