"""TPC-H side by side: the same as `benches/compare.py --suite tpch` (kept for old commands).

    python3 benches/tpch_compare.py --sf 1 [--strata target/release/strata] [--warm 3]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

if __name__ == "__main__":
    sys.exit(compare.main(["--suite", "tpch"] + sys.argv[1:]))
