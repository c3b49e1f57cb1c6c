"""``amodal-report``: run and multirun folders → one table, as markdown (stdout), CSV and LaTeX.

    amodal-report outputs/multiruns/2026-11-25_10-00-00
    amodal-report outputs/runs/a outputs/runs/b --csv table.csv --latex table.tex
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amodal.eval.report import find_runs, load_run, runs_table, to_csv, to_latex, to_markdown


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="amodal-report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run folders, multirun folders, or folders above them")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV here")
    parser.add_argument("--latex", type=Path, help="also write the table as a LaTeX tabular here")
    unoccluded = parser.add_mutually_exclusive_group()
    unoccluded.add_argument("--include-unoccluded", dest="include_unoccluded", action="store_true", default=None,
                            help="count objects with occlusion rate 0 (default: as each run was configured)")
    unoccluded.add_argument("--exclude-unoccluded", dest="include_unoccluded", action="store_false")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = find_runs(args.paths)
    except FileNotFoundError as err:
        print(f"amodal-report: error: {err}", file=sys.stderr)
        return 2
    if not runs:
        print(f"amodal-report: error: no run folders (with results.jsonl) under {' '.join(args.paths)}",
              file=sys.stderr)
        return 2
    records = [load_run(path, args.include_unoccluded) for path in runs]
    header, rows = runs_table(records)
    print(to_markdown(header, rows))
    if args.csv:
        args.csv.write_text(to_csv(header, rows))
    if args.latex:
        args.latex.write_text(to_latex(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
