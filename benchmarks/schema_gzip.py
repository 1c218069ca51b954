"""The column schema's gzip level: compression time and size per level, for probe-like column names.

    uv run python benchmarks/schema_gzip.py                    # 500,000 and 1,000,000 columns

The schema (toolkit/schema.py) is written once per tracked run and uploaded once, so the level trades the
time to compress against the bytes to send. Prints, per width and level, the best of `--repeats`
compressions and the compressed size; the toolkit's level (`GZIP_LEVEL`) was chosen from this table.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as a script: make `toolkit` importable from a checkout
    sys.path.insert(0, str(_REPO))

LEVELS = (1, 3, 6, 9)


def measure(columns: int, repeats: int) -> list[tuple[int, float, int]]:
    """`(level, best seconds, compressed bytes)` for a float32 schema of `columns` names `cg00000000...`."""
    from toolkit.schema import ColumnSchema

    schema = ColumnSchema(tuple(f"cg{i:08d}" for i in range(columns)), ("float32",) * columns)
    payload = schema.to_json_bytes()
    rows = []
    for level in LEVELS:
        best = float("inf")
        size = 0
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            size = len(gzip.compress(payload, compresslevel=level, mtime=0))
            best = min(best, time.perf_counter() - start)
        rows.append((level, best, size))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--columns", type=int, nargs="+", default=[500_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from toolkit.schema import GZIP_LEVEL

    for columns in args.columns:
        print(f"{columns:,} columns (the toolkit writes level {GZIP_LEVEL}):")
        for level, seconds, size in measure(columns, args.repeats):
            print(f"  level {level}: {seconds * 1000:7.1f} ms  {size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
