"""``amodal-report``: run and multirun folders → one table, as markdown (stdout), CSV and LaTeX; for an
experiment with a ``paper:`` block, the paper's tables with our numbers beside them; a plot.

    amodal-report outputs/multiruns/2026-11-25_10-00-00
    amodal-report outputs/runs/a outputs/runs/b --csv table.csv --latex table.tex
    amodal-report outputs/multiruns/<time> --out report/ --baseline --wandb   # files, and a W&B summary run
    amodal-report outputs/multiruns/<time> --out report/ --metric miou_occ   # plot the hidden part's mIoU
    amodal-report outputs/runs/a outputs/runs/b --by category                # mIoU per category, runs as columns
    amodal-report outputs/multiruns/<time> --ci --seeds   # 95 % intervals; runs differing only in seed as one row
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amodal.cli.errors import one_line_errors, storage_errors
from amodal.cli.help import documented_parser
from amodal.errors import AmodalError, ConfigError
from amodal.eval.bootstrap import RESAMPLES, SEED
from amodal.eval.report import (
    category_markdown,
    comparisons,
    log_summary_run,
    report_markdown,
    runs_csv,
    runs_latex,
    write_report,
)
from amodal.eval.runs import find_runs, load_runs, unpredicted_unoccluded, without_shards
from amodal.eval.spread import add_intervals, seed_groups
from amodal.eval.table import METRICS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = documented_parser("amodal-report", __doc__)
    parser.add_argument("paths", nargs="+", help="run folders, multirun folders, or folders above them")
    parser.add_argument("--csv", type=Path, help="also write the runs table as CSV here")
    parser.add_argument("--latex", type=Path, help="also write the runs table as a LaTeX table here")
    unoccluded = parser.add_mutually_exclusive_group()
    unoccluded.add_argument("--include-unoccluded", dest="include_unoccluded", action="store_true", default=None,
                            help="count objects with occlusion rate 0 (default: as each run was configured)")
    unoccluded.add_argument("--exclude-unoccluded", dest="include_unoccluded", action="store_false",
                            help="leave objects with occlusion rate 0 out")
    parser.add_argument("--out", type=Path, help="write report.md, CSV, LaTeX and buckets.png (the plot) here")
    parser.add_argument("--baseline", action="store_true",
                        help="draw Â = V (the visible mask as the prediction) on the same objects in the plot")
    parser.add_argument("--metric", choices=list(METRICS), default="miou",
                        help="what the plot and --by show: miou (default) or miou_occ, the mean IoU of the hidden "
                             "part A \\ V (C2F-Seg's), over the objects that have one")
    parser.add_argument("--by", choices=["category"],
                        help="print the metric per category (one row each, the runs as columns) in place of the "
                             "runs table; with --out also categories.md")
    parser.add_argument("--ci", action="store_true",
                        help="a 95 %% bootstrap interval over objects beside every mIoU (and a band in the plot)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES,
                        help=f"bootstrap resamples per interval, with --ci (default: {RESAMPLES})")
    parser.add_argument("--bootstrap-seed", type=int, default=SEED,
                        help=f"the seed of the resampling, with --ci (default: {SEED})")
    parser.add_argument("--seeds", action="store_true",
                        help="runs that differ only in runtime.seed as one row: mean ± std over the seeds")
    parser.add_argument("--wandb", action="store_true", help="also log a W&B summary run (with --out)")
    parser.add_argument("--wandb-project", default="amodal", help="the W&B project (default: amodal)")
    parser.add_argument("--wandb-group", help="the sweep's W&B group (default: none)")
    parser.add_argument("--wandb-mode", default="offline", choices=["offline", "online"],
                        help="offline (default; wandb sync uploads later) or online")
    return parser.parse_args(argv)


@one_line_errors("amodal-report")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.wandb and not args.out:
        raise ConfigError("--wandb needs --out (the folder for the plot and the tables)")
    if args.resamples < 1:
        raise ConfigError(f"--resamples={args.resamples}: use 1 or more")
    try:
        runs = find_runs(args.paths)
    except FileNotFoundError as err:
        raise AmodalError(str(err)) from err
    if not runs:
        raise AmodalError(f"no run folders (with results.jsonl) under {' '.join(args.paths)}")
    records, shards = without_shards(load_runs(runs, args.include_unoccluded))
    records = seed_groups(records) if args.seeds else records
    if args.ci:
        for record in add_intervals(records, seed=args.bootstrap_seed, resamples=args.resamples):
            print(f"amodal-report: warning: {record.path} holds no results.jsonl, so its mIoU has no interval",
                  file=sys.stderr)
    tables = comparisons(records)
    for line in shards:
        print(f"amodal-report: {line}", file=sys.stderr)
    if not records:
        raise AmodalError("only shards here, no run to report; merge them first (above)")
    for record in records:
        if warning := unpredicted_unoccluded(record):
            print(f"amodal-report: {warning}", file=sys.stderr)
    for warning in (w for table in tables for w in table.messages()):
        print(f"amodal-report: warning: {warning}", file=sys.stderr)
    if args.by == "category":
        if not any(record.metrics.get("categories") for record in records):
            raise AmodalError("--by category: none of the runs names categories (their dataset names none, or "
                              "their metrics.json predates categories and there is no results.jsonl to recompute "
                              "it from)")
        print(category_markdown(records, args.metric), end="")
    else:
        print(report_markdown(records, tables, shards), end="")
    with storage_errors(str(args.out or args.csv or args.latex),
                        "free space or make it writable, or choose another --out, --csv or --latex"):
        if args.csv:
            args.csv.write_text(runs_csv(records))
        if args.latex:
            args.latex.write_text(runs_latex(records))
        if args.out:
            files = write_report(records, args.out, tables, baseline=args.baseline, notes=shards,
                                 metric=args.metric, by_category=args.by == "category")
            print(f"\nwritten: {', '.join(str(p) for p in files.values())}")
            if args.wandb:
                log_summary_run(records, files, project=args.wandb_project, group=args.wandb_group,
                                mode=args.wandb_mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
