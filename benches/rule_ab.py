"""One optimizer rule on and off, query by query, in one run: its effect on time and its
absence of effect on answers.

Each query file runs in a fresh `strata` process with `SET strata.optimizer.<rule> = true`
and then `= false`, the order alternating from round to round so that noise on the machine
hits both alike; within a process the query runs --warm times after a first (cold) run, and
the best warm time of all rounds counts. Answers (as CSV) must be equal with the rule on and
off. Prints a Markdown table: per query the best ms on and off and their ratio, and the
totals.

    python benches/rule_ab.py --strata target/release/strata --warehouse WH --zone raw \\
        --rule distinct_build_rows benches/tpch/q*.sql extra.sql

The tables are the warehouse's; `--zone` is the zone the queries' unqualified names
resolve in (`USE zone`).
"""

import argparse
import re
import subprocess
import sys
import tempfile

TIME = re.compile(r"in (\d+(?:\.\d+)?)(ms|s)\b")


def run(strata, warehouse, zone, rule, on, sql, warm, timeout):
    """The printed results (without their footers) and the best warm time in ms."""
    script = [f"USE {zone};", f"SET strata.optimizer.{rule} = {'true' if on else 'false'};"]
    script += [sql.strip().rstrip(";") + ";"] * (1 + warm)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as f:
        f.write("\n".join(script))
        f.flush()
        try:
            out = subprocess.run([strata, "-w", warehouse, "--maxrows", "0", "-f", f.name],
                                 capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, None
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or out.stdout[-2000:])
    return answer_and_best(out.stdout, warm)


def answer_and_best(stdout, warm):
    """The result tables a script printed, without their footers, and the best warm time in
    ms of its last query, run 1 + warm times (the footers of USE and SET carry no time)."""
    times = []
    for m in TIME.finditer(stdout):
        value, unit = float(m.group(1)), m.group(2)
        times.append(value * 1000 if unit == "s" else value)
    times = times[-(1 + warm):]
    if len(times) < 1 + warm:
        raise RuntimeError(f"no time in the footers:\n{stdout[-1000:]}")
    answer = "\n".join(l for l in stdout.splitlines() if not TIME.search(l))
    return answer, min(times[1:]) if warm else times[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--zone", default="processed")
    ap.add_argument("--rule", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds per process; a side that takes longer is shown as over it")
    ap.add_argument("queries", nargs="+")
    args = ap.parse_args()
    print(f"| query | {args.rule} on (ms) | off (ms) | on / off |")
    print("|---|--:|--:|--:|")
    total_on = total_off = 0.0
    for path in args.queries:
        sql = open(path).read()
        best = {True: float("inf"), False: float("inf")}
        answers = {}
        timed_out = set()
        for r in range(args.rounds):
            for on in ([True, False] if r % 2 == 0 else [False, True]):
                if on in timed_out:
                    continue
                answer, ms = run(args.strata, args.warehouse, args.zone, args.rule, on, sql,
                                 args.warm, args.timeout)
                if ms is None:
                    timed_out.add(on)
                    continue
                best[on] = min(best[on], ms)
                answers.setdefault(on, answer)
        name = path.rsplit("/", 1)[-1]
        if timed_out:
            shown = {on: (f"> {args.timeout:.0f} s" if on in timed_out else f"{best[on]:.0f}")
                     for on in (True, False)}
            print(f"| {name} | {shown[True]} | {shown[False]} | |", flush=True)
            continue
        if answers[True] != answers[False]:
            print(f"| {name} | answers differ with the rule on and off | | |")
            sys.exit(1)
        total_on += best[True]
        total_off += best[False]
        print(f"| {name} | {best[True]:.0f} | {best[False]:.0f} | {best[True] / best[False]:.2f} |", flush=True)
    print(f"| total | {total_on:.0f} | {total_off:.0f} | {total_on / total_off:.2f} |")


if __name__ == "__main__":
    main()
