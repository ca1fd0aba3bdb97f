"""TPC-H side by side: strata (`strata bench tpch`) and DuckDB on the same Parquet files that
`strata tpch gen` wrote, in one run. Prints a markdown table of best warm times and ratios.

    cargo build --release -p strata-cli
    python3 benches/tpch_compare.py --sf 1 [--strata target/release/strata] [--iterations 3]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

import duckdb

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
HERE = os.path.dirname(os.path.abspath(__file__))


def svg_chart(title, rows):
    """Per-query bars (strata and DuckDB warm times) with the ratio above each pair."""
    width, height, left, bottom, top = 980, 360, 60, 40, 50
    top_ms = max([max(r[1] or 0, r[2] or 0) for r in rows] + [1])
    slot = (width - left - 20) / len(rows)
    bar = slot * 0.38
    scale = (height - bottom - top) / top_ms
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="20" font-size="14">{title} (warm ms, lower is better)</text>',
           f'<rect x="{width - 220}" y="28" width="10" height="10" fill="#3b7dd8"/><text x="{width - 205}" y="37">strata</text>',
           f'<rect x="{width - 140}" y="28" width="10" height="10" fill="#e0a030"/><text x="{width - 125}" y="37">DuckDB</text>',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" stroke="#333"/>']
    for i, (q, s_ms, d_ms) in enumerate(rows):
        x = left + i * slot + slot * 0.1
        base = height - bottom
        if s_ms is not None:
            out.append(f'<rect x="{x:.1f}" y="{base - s_ms * scale:.1f}" width="{bar:.1f}" height="{s_ms * scale:.1f}" fill="#3b7dd8"/>')
        if d_ms is not None:
            out.append(f'<rect x="{x + bar:.1f}" y="{base - d_ms * scale:.1f}" width="{bar:.1f}" height="{d_ms * scale:.1f}" fill="#e0a030"/>')
        if s_ms is not None and d_ms:
            y = base - max(s_ms, d_ms) * scale - 4
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="9">{s_ms / d_ms:.1f}x</text>')
        out.append(f'<text x="{x:.1f}" y="{base + 14}">q{q:02d}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", default="target/release/strata")
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--results", default=os.path.join(HERE, "results"),
                    help="folder for the markdown table and the SVG chart ('' to skip)")
    args = ap.parse_args()
    strata = os.path.abspath(args.strata)
    work = tempfile.mkdtemp(prefix="strata-tpch-")
    try:
        wh = os.path.join(work, "wh")
        subprocess.run([strata, "--warehouse", wh, "tpch", "gen", "--sf", str(args.sf)], check=True,
                       capture_output=True)
        out = os.path.join(work, "strata.json")
        subprocess.run([strata, "--warehouse", wh, "bench", "tpch", "--iterations", str(args.iterations),
                        "--output", out], check=True, capture_output=True)
        ours = {q["query"]: q for q in json.load(open(out))}
        con = duckdb.connect()
        con.execute(f"SET threads = {args.threads}")
        for t in TABLES:
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{wh}/processed/{t}/*.parquet')")
        theirs = {}
        for q in range(1, 23):
            sql = open(os.path.join(HERE, "tpch", f"q{q:02d}.sql")).read()
            times = []
            for _ in range(args.iterations):
                start = time.perf_counter()
                con.execute(sql).fetchall()
                times.append((time.perf_counter() - start) * 1000)
            theirs[q] = times
        rows = []
        for q in range(1, 23):
            if q not in ours:
                rows.append((q, None, None))
                continue
            rows.append((q, min(ours[q]["warm_ms"] or [ours[q]["cold_ms"]]), min(theirs[q][1:] or theirs[q])))
        title = f"TPC-H SF {args.sf}: strata against DuckDB {duckdb.__version__}, {args.threads} threads"
        lines = [f"## {title}\n", "| query | strata warm ms | DuckDB warm ms | strata/DuckDB |", "|---|---:|---:|---:|"]
        ts = sum(r[1] for r in rows if r[1] is not None)
        td = sum(r[2] for r in rows if r[2] is not None)
        for q, s_ms, d_ms in rows:
            if s_ms is None:
                lines.append(f"| q{q:02d} | failed | | |")
            else:
                lines.append(f"| q{q:02d} | {s_ms:.1f} | {d_ms:.1f} | {s_ms / d_ms:.2f} |")
        lines.append(f"| total | {ts:.1f} | {td:.1f} | {ts / td:.2f} |")
        report = "\n".join(lines)
        print(report)
        if args.results:
            os.makedirs(args.results, exist_ok=True)
            name = f"tpch-sf{args.sf:g}"
            with open(os.path.join(args.results, name + ".md"), "w") as f:
                f.write(f"Machine: {os.cpu_count()} cores; release build; run {time.strftime('%Y-%m-%d')}.\n\n{report}\n")
            with open(os.path.join(args.results, name + ".svg"), "w") as f:
                f.write(svg_chart(title, rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
