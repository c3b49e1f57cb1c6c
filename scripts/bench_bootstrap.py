"""Time of one bootstrap interval (``amodal.eval.bootstrap``), by the number of objects, with scipy and numpy.

    python scripts/bench_bootstrap.py                          # 1k, 10k, 100k objects, 10,000 resamples
    python scripts/bench_bootstrap.py --objects 500000 --resamples 2000

amodal-compare computes one interval per bucket and overall, for mIoU and mIoU_occ (14 with the default
buckets); amodal-report --ci one per bucket and overall for each run. Resampling is O(objects × resamples).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from amodal.eval import bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--resamples", type=int, default=bootstrap.RESAMPLES)
    args = parser.parse_args()
    scipy = bootstrap._stats
    for n in args.objects:
        values = np.random.default_rng(0).random(n)
        times = {}
        for name, stats in (("scipy", scipy), ("numpy", None)):
            if name == "scipy" and scipy is None:
                continue
            bootstrap._stats = stats
            start = time.perf_counter()
            bootstrap.seeded_interval(values, resamples=args.resamples)
            times[name] = time.perf_counter() - start
        bootstrap._stats = scipy
        print(f"{n:>8} objects, {args.resamples} resamples: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))


if __name__ == "__main__":
    main()
