"""``amodal-compare``: two run folders on the same dataset → the per-object ΔIoU = B − A on the objects both
scored, its mean with a paired bootstrap 95 % interval, wins, losses and ties, overall, per occlusion bucket
and on the hidden part (mIoU_occ); compare.json, compare.md and a gallery of the largest wins and losses.

    amodal-compare outputs/runs/visible outputs/runs/area --out outputs/compare/area-vs-visible
    amodal-compare sweep/0 sweep/1 --out cmp/ --resamples 20000 --bootstrap-seed 1 --gallery 10
    amodal-compare mine/ theirs/ --out cmp/ --tie 0.001      # |ΔIoU| ≤ 0.1 point counts as a tie

The gallery needs the runs' masks (amodal-run ... output.save_masks=true) and their dataset on this machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amodal.cli.errors import one_line_errors, storage_errors
from amodal.cli.help import documented_parser
from amodal.errors import ConfigError
from amodal.eval.bootstrap import RESAMPLES, SEED
from amodal.eval.compare import COMPARE_FILE, GALLERY, GALLERY_DIR, SUMMARY_FILE, TIE, write_comparison


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = documented_parser("amodal-compare", __doc__)
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="the first run folder (A: the reference)")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="the second run folder (B: ΔIoU = B − A)")
    parser.add_argument("--out", "-o", type=Path, required=True,
                        help=f"folder for {COMPARE_FILE}, {SUMMARY_FILE} and {GALLERY_DIR}/")
    parser.add_argument("--resamples", type=int, default=RESAMPLES,
                        help=f"bootstrap resamples per interval (default: {RESAMPLES})")
    parser.add_argument("--bootstrap-seed", type=int, default=SEED,
                        help=f"the seed of the resampling: the same seed gives the same intervals (default: {SEED})")
    parser.add_argument("--tie", type=float, default=TIE,
                        help=f"|ΔIoU| at most this is a tie, as a fraction (default: {TIE:g}, equal up to rounding)")
    parser.add_argument("--gallery", type=int, default=GALLERY,
                        help=f"panels of the largest wins, and as many of the losses (default: {GALLERY}; 0: none)")
    return parser.parse_args(argv)


@one_line_errors("amodal-compare")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name, value, least in (("--resamples", args.resamples, 1), ("--gallery", args.gallery, 0)):
        if value < least:
            raise ConfigError(f"{name}={value}: use {least} or more")
    if args.tie < 0:
        raise ConfigError(f"--tie={args.tie}: use 0 or more")
    with storage_errors(str(args.out), "free space or make it writable, or choose another --out"):
        _, notes = write_comparison(args.run_a, args.run_b, args.out, seed=args.bootstrap_seed,
                                    resamples=args.resamples, tie=args.tie, gallery=args.gallery)
    for note in notes:
        print(f"amodal-compare: {note}", file=sys.stderr)
    print((args.out / SUMMARY_FILE).read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
