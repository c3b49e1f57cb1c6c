"""``amodal-report``: run and multirun folders → one table, as markdown (stdout), CSV and LaTeX; for an
experiment with a ``paper:`` block, the paper's tables with our numbers beside them; a plot.

    amodal-report outputs/multiruns/2026-11-25_10-00-00
    amodal-report outputs/runs/a outputs/runs/b --csv table.csv --latex table.tex
    amodal-report outputs/multiruns/<time> --out report/ --wandb     # files, and a W&B summary run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amodal.eval.report import (
    find_runs,
    load_run,
    runs_table,
    to_csv,
    to_latex,
    to_markdown,
    unpredicted_unoccluded,
)
from amodal.eval.summary import comparisons, log_summary_run, not_run, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="amodal-report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run folders, multirun folders, or folders above them")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV here")
    parser.add_argument("--latex", type=Path, help="also write the table as a LaTeX tabular here")
    unoccluded = parser.add_mutually_exclusive_group()
    unoccluded.add_argument("--include-unoccluded", dest="include_unoccluded", action="store_true", default=None,
                            help="count objects with occlusion rate 0 (default: as each run was configured)")
    unoccluded.add_argument("--exclude-unoccluded", dest="include_unoccluded", action="store_false")
    parser.add_argument("--out", type=Path, help="write report.md, CSV, LaTeX and buckets.png (the plot) here")
    parser.add_argument("--wandb", action="store_true", help="also log a W&B summary run (with --out)")
    parser.add_argument("--wandb-project", default="amodal")
    parser.add_argument("--wandb-group", help="the sweep's W&B group (default: none)")
    parser.add_argument("--wandb-mode", default="offline", choices=["offline", "online"])
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
    for record in records:
        if warning := unpredicted_unoccluded(record):
            print(f"amodal-report: {warning}", file=sys.stderr)
    header, rows = runs_table(records)
    print(to_markdown(header, rows))
    for comparison in comparisons(records):
        print("\n" + comparison.markdown())
    if not_run(records):
        print("\nNot run here: " + "; ".join(not_run(records)))
    if args.csv:
        args.csv.write_text(to_csv(header, rows))
    if args.latex:
        args.latex.write_text(to_latex(header, rows))
    if args.out:
        files = write_report(records, args.out)
        print(f"\nwritten: {', '.join(str(p) for p in files.values())}")
        if args.wandb:
            log_summary_run(records, files, project=args.wandb_project, group=args.wandb_group,
                            mode=args.wandb_mode)
    elif args.wandb:
        print("amodal-report: error: --wandb needs --out (the folder for the plot and the tables)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
