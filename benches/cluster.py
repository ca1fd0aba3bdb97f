"""In process against a cluster of 1 and of 2 executors: the same queries, the same answers,
and how the time scales.

Three ways to run each query, in one run, their order rotating from round to round so that
noise on the machine hits all alike:

- `in-process`: `strata -f` pinned to one core (`taskset -c 0`), one partition;
- `1 executor`: a scheduler and one executor (`--cores 1`, pinned to core 0); the client and
  the scheduler on core 1;
- `2 executors`: a scheduler and two executors (`--cores 1` each, on cores 0 and 1); the
  client and the scheduler share core 1 with the second executor. The client plans two
  partitions (`datafusion.execution.target_partitions = 2`), one per executor core.

Each query runs in a fresh client process --warm times after a first (cold) run; the best
warm time of all rounds counts (strata's footer time: planning, shipping the plan, running
the stages and fetching the rows). Answers (the printed tables) must be equal in the three
ways.

With --overhead-warehouse (the same tables at a tiny scale factor, say 0.01), the queries run
there in process and on 1 executor too: with next to nothing to compute, the difference is
what a cluster adds to a query (the plan sent to the scheduler, cut into stages, tasks handed
out, shuffle files written and fetched, rows sent back).

    python benches/cluster.py --strata target/release/strata --warehouse WH --zone raw \\
        --label "SF 1" --overhead-warehouse WH001 benches/tpch/q*.sql

Prints a Markdown table: per query the best ms each way, 1 executor / in process and
2 executors / 1 executor, and the totals.
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rule_ab import answer_and_best  # noqa: E402


class Process:
    """`strata ARGS` pinned to CPUS, running until stopped; `address` is what it printed."""

    def __init__(self, strata, what, cpus, args):
        self.proc = subprocess.Popen(["taskset", "-c", cpus, strata, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        prefix = f"strata {what}: listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"the {what} did not start: {line!r}")
        self.address = line[len(prefix):].strip()
        # Its later lines (tasks done) are read and dropped so that its output never fills.
        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stdout,
                                      stdout=subprocess.DEVNULL)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Cluster:
    """A scheduler on core 1 and one executor with one core on each of EXECUTOR_CPUS."""

    def __init__(self, strata, executor_cpus):
        self.scheduler = Process(strata, "scheduler", "1",
                                 ["scheduler", "--listen", "127.0.0.1:0"])
        self.executors = []
        for cpu in executor_cpus:
            self.executors.append(Process(
                strata, "executor", cpu,
                ["executor", "--scheduler", self.scheduler.address, "--cores", "1"]))

    def stop(self):
        for p in self.executors + [self.scheduler]:
            p.stop()


def run(strata, warehouse, zone, sql, warm, cpus, partitions, cluster, timeout):
    """The printed results (without their footers) and the best warm time in ms."""
    script = [f"USE {zone};",
              f"SET datafusion.execution.target_partitions = {partitions};"]
    script += [sql.strip().rstrip(";") + ";"] * (1 + warm)
    args = ["taskset", "-c", cpus, strata, "-w", warehouse, "--maxrows", "0"]
    if cluster:
        args += ["--cluster", cluster]
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as f:
        f.write("\n".join(script))
        f.flush()
        out = subprocess.run(args + ["-f", f.name], capture_output=True, text=True,
                             timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or out.stdout[-2000:])
    return answer_and_best(out.stdout, warm)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--zone", default="processed")
    ap.add_argument("--label", default="")
    ap.add_argument("--overhead-warehouse")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("queries", nargs="+")
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two cores: one executor on each")

    one = Cluster(args.strata, ["0"])
    two = Cluster(args.strata, ["0", "1"])
    ways = [
        ("in-process", "0", 1, None),
        ("1 executor", "1", 1, one.scheduler.address),
        ("2 executors", "1", 2, two.scheduler.address),
    ]
    try:
        rows = []
        for path in args.queries:
            name = os.path.splitext(os.path.basename(path))[0]
            sql = open(path).read()
            best, answers = {}, {}
            for r in range(args.rounds):
                order = ways[r % len(ways):] + ways[:r % len(ways)]
                for way, cpus, partitions, cluster in order:
                    answer, ms = run(args.strata, args.warehouse, args.zone, sql, args.warm,
                                     cpus, partitions, cluster, args.timeout)
                    answers[way] = answer
                    best[way] = min(best.get(way, ms), ms)
            differ = [w for w in answers if answers[w] != answers["in-process"]]
            if differ:
                sys.exit(f"{name}: {', '.join(differ)} answered otherwise than in process")
            overhead = None
            if args.overhead_warehouse:
                times = {}
                for way, cpus, partitions, cluster in ways[:2]:
                    _, ms = run(args.strata, args.overhead_warehouse, args.zone, sql,
                                args.warm, cpus, partitions, cluster, args.timeout)
                    times[way] = ms
                overhead = times["1 executor"] - times["in-process"]
            rows.append((name, best["in-process"], best["1 executor"], best["2 executors"],
                         overhead))
            print(f"{name}: {best['in-process']:.0f} / {best['1 executor']:.0f} / "
                  f"{best['2 executors']:.0f} ms", file=sys.stderr, flush=True)
    finally:
        one.stop()
        two.stop()

    label = f" ({args.label})" if args.label else ""
    print(f"| query{label} | in process, 1 core (ms) | 1 executor (ms) | 2 executors (ms) "
          f"| 1 executor / in process | 2 / 1 executors | cluster overhead (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, here, one_ms, two_ms, overhead in rows:
        extra = f"{overhead:.0f}" if overhead is not None else ""
        print(f"| {name} | {here:.0f} | {one_ms:.0f} | {two_ms:.0f} | {one_ms / here:.2f} "
              f"| {two_ms / one_ms:.2f} | {extra} |")
    total = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    print(f"| total | {total[0]:.0f} | {total[1]:.0f} | {total[2]:.0f} "
          f"| {total[1] / total[0]:.2f} | {total[2] / total[1]:.2f} | |")


if __name__ == "__main__":
    main()
