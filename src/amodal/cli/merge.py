"""``amodal-merge``: shard run folders (or the multirun folder holding them) → one run folder.

amodal-run -m shard.index='range(0,4)' shard.count=4 hydra.sweep.dir=outputs/shards/coco
amodal-merge outputs/shards/coco --out outputs/runs/coco
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amodal.cli.errors import one_line_errors, storage_errors
from amodal.eval.merge import merge
from amodal.eval.report import bucket_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="amodal-merge", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="shard run folders, or a multirun folder holding them")
    parser.add_argument(
        "--out",
        "-o",
        type=Path,
        required=True,
        help="folder for the merged results.jsonl and metrics.json (must not hold results yet)",
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="merge even if shards are missing or unfinished (the numbers then cover fewer objects)",
    )
    return parser.parse_args(argv)


@one_line_errors("amodal-merge")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with storage_errors(str(args.out), "free space or make it writable, or choose another --out"):
        metrics = merge(args.paths, args.out, partial=args.partial)
    print(f"{args.out}\n{bucket_table(metrics)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
