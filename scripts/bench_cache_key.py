"""What keying the inpainting cache by content costs: ``inputs_key`` (a hash of x and M at the view) per
object, beside the time a tiny-model object takes through the method (issue 25 item 3: under 1 %).

    python scripts/bench_cache_key.py                 # tiny_sd + tiny_sam (their 128 px view), 8 objects
    python scripts/bench_cache_key.py --objects 16 --sizes 128 1024

The tiny object's time is ``InpaintPredictor.predict`` on one synthetic object at a time, the cache off
(what a miss costs, hashing aside), the median over the objects after one warm-up. The key's time is the
best of 5 rounds of 200 calls on x (float32 h×w×3) and M (bool h×w) at each view size; the package's and
the components' code stamps are hashed once per process and are printed apart.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from amodal.config import build, config_dir
from amodal.method import inpainted_cache
from amodal.seeding import object_seed

TINY = ["method=inpaint", "backbone=tiny_sd", "extractor=tiny_sam", "backbone.steps=2", "cache.enabled=false",
        "runtime.device=cpu", "runtime.threads=1", "dataset.n_images=2"]


def tiny_object_seconds(objects: int) -> tuple[float, int]:
    """The median seconds of one object through the tiny method, and its view's side."""
    import torch

    torch.set_num_threads(1)
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose("run", overrides=TINY)
    dataset, predictor = build(cfg.dataset, "dataset"), build(cfg.method, "method")
    samples = [s for s in (dataset.load(k) for k in dataset.keys()) if s.visible.any()][: objects + 1]
    times = []
    for sample in samples:
        seed = object_seed(0, sample.key)
        start = time.perf_counter()
        predictor.predict([sample], [seed])
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), int(cfg.backbone.resolution)


def key_seconds(side: int) -> float:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (side, side, 3)).astype(np.float32)
    m = rng.random((side, side)) < 0.3
    return min(timeit.repeat(lambda: inpainted_cache.inputs_key(x, m), number=200, repeat=5)) / 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 1024])
    args = parser.parse_args()
    start = time.perf_counter()
    inpainted_cache.package_stamp()
    stamp = time.perf_counter() - start
    tiny, view = tiny_object_seconds(args.objects)
    print(f"tiny object (tiny_sd + tiny_sam, {view} px view, 2 steps, 1 thread): {1000 * tiny:.1f} ms")
    print(f"package code stamp, once per process: {1000 * stamp:.1f} ms")
    print("| view | inputs_key per object | share of a tiny object |")
    print("|---|---|---|")
    for side in args.sizes:
        seconds = key_seconds(side)
        print(f"| {side}² | {1e6 * seconds:.0f} µs | {100 * seconds / tiny:.3f} % |")


if __name__ == "__main__":
    main()
