"""Seconds per object and peak memory of each extractor's full-size architecture, with random weights.

Compute does not depend on the weights' values, so the official architectures (SAM ViT-B/L/H, SAM 2.1
Hiera t/s/b+/l) with random weights have the real cost, without checkpoints. One object = embedding the
image (``set_image``) + decoding one 9-point prompt with three candidate masks, what the inpainting
method pays per object. Each variant runs in its own process, so the peak memory is its own; after one
warm-up object, ``--repeats`` objects are timed and the best and the median reported (on a shared
machine the best is the one least disturbed by other processes). GFLOPs per object are counted by
``torch.utils.flop_counter`` (matrix products, convolutions, attention): exact, whatever the load.

On a CPU the models run at a reduced input (``--size``, default 512 instead of the official 1024:
SAM's ViT and SAM 2's Hiera are built for that input; roughly 4× less compute, more for SAM's global
attention). On a GPU use ``--size 1024`` for the official cost.

    python benchmarks/extractors.py                                  # all 7 variants, CPU, 512 px
    python benchmarks/extractors.py --variants sam_vit_b sam2.1_t --size 1024 --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ["sam_vit_b", "sam_vit_l", "sam_vit_h", "sam2.1_t", "sam2.1_s", "sam2.1_b+", "sam2.1_l"]


def build(variant: str, size: int):
    """(model, predictor) of ``variant`` at input ``size``, random weights, on the CPU."""
    import torch

    torch.manual_seed(0)
    if variant.startswith("sam_"):
        from segment_anything import SamPredictor

        from amodal.models.sam import ENCODERS, sam_architecture

        embed_dim, depth, heads, global_attn = ENCODERS[variant.removeprefix("sam_")]
        model = sam_architecture(embed_dim, depth, heads, global_attn, image_size=size)
        return model, lambda m: SamPredictor(m)
    from amodal.models.sam2 import SIZES, Sam2PredictorMixin, build_sam2_module, reduced_input, sam2_config

    model = build_sam2_module(sam2_config(SIZES[variant.removeprefix("sam2.1_")][0], reduced_input(size)))
    return model, Sam2PredictorMixin().predictor


def measure(variant: str, size: int, device: str, repeats: int, threads: int) -> dict:
    """Run in a fresh process: build, warm up once, then time ``repeats`` objects."""
    import numpy as np
    import torch

    from amodal.method.points import RandomPoints
    from amodal.method.segment import quiet_root_logger
    from amodal.seeding import numpy_rng

    if threads:
        torch.set_num_threads(threads)
    model, make_predictor = build(variant, size)
    params = sum(p.numel() for p in model.parameters())
    predictor = make_predictor(model.to(device))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(size * 3 // 4, size, 3), dtype=np.uint8)  # a 4:3 photo
    visible = np.zeros(image.shape[:2], dtype=bool)
    visible[size // 4 : size // 2, size // 4 : size // 2] = True
    points = RandomPoints(9)(visible, numpy_rng(0, 0))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def one_object():
        with torch.inference_mode(), quiet_root_logger():
            predictor.set_image(image)
            predictor.predict(point_coords=points, point_labels=np.ones(9), multimask_output=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:  # the warm-up object (lazy allocations, kernel selection) also counts the FLOPs
        one_object()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        one_object()
        seconds.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "variant": variant, "params_m": params / 1e6, "size": size, "device": device,
        "threads": torch.get_num_threads(), "repeats": repeats,
        "best": min(seconds), "median": statistics.median(seconds), "gflops": counter.get_total_flops() / 1e9,
        "peak_mb": peak_mb,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| extractor | parameters | input | GFLOPs | device (threads) | s/object: best | median "
        "| peak memory (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        memory = "GPU allocated" if r["device"].startswith("cuda") else "process RSS"
        lines.append(
            f"| {r['variant']} | {r['params_m']:.0f} M | {r['size']}×{r['size']} | {r['gflops']:.0f} "
            f"| {r['device']} ({r['threads']}) "
            f"| {r['best']:.2f} | {r['median']:.2f} | {r['peak_mb']:.0f} ({memory}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--size", type=int, default=512, help="model input side (official: 1024)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed objects per variant: the best and the median are reported")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.size, args.device, args.repeats, args.threads)))
        return
    rows = []
    for variant in args.variants:
        command = [sys.executable, __file__, "--one", variant, "--size", str(args.size),
                   "--device", args.device, "--repeats", str(args.repeats), "--threads", str(args.threads)]
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{variant} failed:\n{out.stderr}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{variant}: {rows[-1]['best']:.2f} s/object", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
