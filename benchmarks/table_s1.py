"""The paper's Table S1 on a GPU: seconds per object and peak GPU memory of the whole method (inpainting,
then SAM or SAM 2.1 on x̂₀), and objects per second at batch 8.

As the paper measured it (an RTX 4090): SD1.5, SD2, SDXL and Flux with 8-bit weights, at their native
resolution (512, 512, 1024, 512 px), 20 steps, float16 (Flux: bfloat16, as ``runtime.dtype=auto``
picks, with int8 weights by optimum-quanto, as ``backbone.pipeline.quantize=qint8``), each with SAM
ViT-H and SAM 2.1 L at their official 1024 px input, float16 autocast. All are the full-size
architectures with random weights, built on the GPU: compute does not depend on the weights' values, so
no weights are needed. One object = area, condition image, inpainting with leakage and guidance, SAM
on x̂₀ (what ``amodal-run method=inpaint`` does per object). Peak memory is the GPU allocator's peak
while objects run (the weights included). Each backbone runs in its own process; the JSON and the
table are rewritten after each one, so a run stopped by its time limit keeps what it finished.

    bash benchmarks/gpu.sh                                           # on a lent GPU: → $OUT/table_s1.*
    python benchmarks/table_s1.py --out outputs/gpu                  # the same, without the set-up
    python benchmarks/table_s1.py --tiny --device cpu --dtype float32 --out /tmp/s1   # tiny models (tests)
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import extractors  # benchmarks/extractors.py: the full-size segmenters
import torch
from speed import BACKBONES, denoiser_of, device_name, occluded_samples, predict, source

from amodal.memory import peak_memory_mb
from amodal.method.area import HullArea
from amodal.method.background import HistogramBackground
from amodal.method.condition import Condition
from amodal.method.inpaint import DiffusionInpainter
from amodal.method.pipeline import InpaintPredictor
from amodal.method.segment import PointPromptExtractor
from amodal.method.view import ViewSpec
from amodal.models.model_cache import clear_models
from amodal.models.sam import SamPredictorMixin, TinySamModel
from amodal.models.sam2 import Sam2PredictorMixin, TinySam2Model

SEGMENTERS = ("sam_vit_h", "sam2.1_l")
PAPER = {  # Table S1 (RTX 4090): seconds per object, peak GPU memory in GB
    "sd15": (0.3, 3.9), "sd2": (0.3, 3.7), "sdxl": (1.2, 10.6), "flux": (0.5, 21.5),
}


@dataclass(frozen=True)
class RandomSegmenter:
    """A segmenter for ``PointPromptExtractor``: the full-size SAM / SAM 2.1 ``variant`` (as named in
    benchmarks/extractors.py) with random weights, built directly on ``device``."""

    variant: str
    size: int = 1024
    device: str = "cpu"

    @property
    def name(self) -> str:
        return self.variant

    def check(self) -> None:
        pass

    def build(self):
        with torch.device(self.device):
            return extractors.build(self.variant, self.size)[0]

    def predictor(self, module):
        mixin = SamPredictorMixin() if self.variant.startswith("sam_") else Sam2PredictorMixin()
        return mixin.predictor(module)


def segmenter(variant: str, args):
    if args.tiny:
        return TinySamModel() if variant.startswith("sam_") else TinySam2Model()
    return RandomSegmenter(variant, device=args.device)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def timed(device: str, work) -> float:
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def measure_backbone(name: str, args) -> list[dict]:
    """One row per segmenter for backbone ``name``, in this process."""
    family, native, w, *_ = BACKBONES[name]
    flux = family == "flux"
    dtype = "bfloat16" if flux and args.dtype == "float16" else args.dtype  # Flux overflows in float16
    quantize = args.flux_weights if flux and args.flux_weights != "none" else None
    resolution = args.resolution or native
    inpainter = DiffusionInpainter(source(name, args, quantize), resolution=resolution, steps=args.steps, w=w,
                                   device=args.device, dtype=dtype)
    build_seconds = timed(args.device, lambda: inpainter.pipe)
    quantized = sum(type(m).__module__.startswith("optimum.quanto") for m in denoiser_of(inpainter.pipe).modules())
    warm_up, *samples = occluded_samples(1 + args.objects + args.batch)
    one_by_one, batch = samples[: args.objects], samples[args.objects :]
    rows = []
    for index, variant in enumerate(args.segmenters):
        clear_models()  # the previous segmenter leaves the GPU before this one is measured
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
        extractor = PointPromptExtractor(segmenter(variant, args), device=args.device, dtype=args.dtype)
        predictor = InpaintPredictor(HullArea(), HistogramBackground(), Condition(), inpainter, extractor,
                                     ViewSpec(size=resolution))
        predict(predictor, [warm_up])  # builds the segmenter; allocations, kernels
        reset_peak(args.device)
        seconds = timed(args.device, lambda p=predictor: [predict(p, [s]) for s in one_by_one])
        peak = peak_memory_mb(args.device)
        if index == 0:
            predict(predictor, batch)  # warm-up at the batch size
        reset_peak(args.device)
        batch_seconds = timed(args.device, lambda p=predictor: predict(p, batch))
        rows.append({
            "backbone": name, "segmenter": extractor.name, "tiny": bool(args.tiny), "device": args.device,
            "device_name": device_name(args.device), "dtype": dtype, "weights": quantize or dtype,
            "segmenter_dtype": args.dtype, "resolution": resolution, "steps": args.steps,
            "seconds_per_object": seconds / len(one_by_one), "objects": len(one_by_one),
            "peak_memory_mb": peak, "batch": len(batch), "objects_per_second_batch": len(batch) / batch_seconds,
            "peak_memory_mb_batch": peak_memory_mb(args.device), "build_seconds": build_seconds,
            "quantized_layers": quantized, "flux_blocks": list(args.flux_blocks) if flux and not args.tiny else None,
        })
    return rows


def gigabytes(mb: float) -> float:
    return mb * 2**20 / 1e9


def table(rows: list[dict], header: dict) -> str:
    memory = "the GPU allocator's peak" if header["device"].startswith("cuda") else "the process's peak RSS"
    lines = [f"Table S1 on {header['device_name']} ({header['date']}; torch {header['torch']}, "
             f"diffusers {header['diffusers']}): full-size architectures, random weights, "
             f"{header['objects']} objects one by one after a warm-up, and a batch of {header['batch']}; "
             f"memory: {memory}.", "",
             "| backbone | segmenter | px | steps | weights / compute | s/object | peak memory (GB) | "
             f"objects/s at batch {header['batch']} | its peak (GB) | paper, RTX 4090: s/object, GB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backbone']} | – | – | – | – | failed: {r['error']} | | | | |")
            continue
        blocks = f" ({r['flux_blocks'][0]}+{r['flux_blocks'][1]} blocks)" if r["flux_blocks"] else ""
        tiny = " (tiny)" if r["tiny"] else ""
        paper = "{} s, {} GB".format(*PAPER[r["backbone"]])
        lines.append(
            f"| {r['backbone']}{blocks}{tiny} | {r['segmenter']} | {r['resolution']} | {r['steps']} | "
            f"{r['weights']} / {r['dtype']} | {r['seconds_per_object']:.2f} | {gigabytes(r['peak_memory_mb']):.1f} | "
            f"{r['objects_per_second_batch']:.2f} | {gigabytes(r['peak_memory_mb_batch']):.1f} | {paper} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--segmenters", nargs="+", default=list(SEGMENTERS), choices=list(SEGMENTERS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16", help="float16 (Flux: bfloat16), or float32 on a CPU")
    parser.add_argument("--flux-weights", default="qint8", choices=["qint8", "qfloat8", "none"])
    parser.add_argument("--flux-blocks", type=int, nargs=2, default=(19, 38), metavar=("DOUBLE", "SINGLE"))
    parser.add_argument("--resolution", type=int, default=0, help="pixels (0: each backbone's native size)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--objects", type=int, default=3, help="timed objects one by one, after one warm-up")
    parser.add_argument("--batch", type=int, default=8, help="objects in the timed batch")
    parser.add_argument("--tiny", action="store_true", help="the tiny models instead of the full-size ones")
    parser.add_argument("--budget", type=float, default=450, help="seconds for all backbones together")
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_backbone(args.one, args)))
        return
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("table_s1: no CUDA device here; on a CPU, try --tiny --device cpu --dtype float32")
    import diffusers

    header = {"device": args.device, "device_name": device_name(args.device), "date": datetime.date.today().isoformat(),
              "torch": torch.__version__, "diffusers": diffusers.__version__, "objects": args.objects,
              "batch": args.batch, "steps": args.steps}
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    rows: list[dict] = []
    for name in args.backbones:
        left = deadline - time.monotonic()
        command = [sys.executable, __file__, "--one", name, *sys.argv[1:]]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=max(left, 1))
            if result.returncode:
                raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed")
            rows += json.loads(result.stdout.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, RuntimeError) as err:
            reason = "out of time" if isinstance(err, subprocess.TimeoutExpired) else str(err)
            rows.append({"backbone": name, "error": reason[:200]})
            print(f"{name}: {reason}", file=sys.stderr, flush=True)
            if isinstance(err, subprocess.TimeoutExpired):
                break
        else:
            for row in rows[-len(args.segmenters):]:
                print(f"{name} + {row['segmenter']}: {row['seconds_per_object']:.2f} s/object, "
                      f"{gigabytes(row['peak_memory_mb']):.1f} GB", file=sys.stderr, flush=True)
        (args.out / "table_s1.json").write_text(json.dumps({"header": header, "rows": rows}, indent=2) + "\n")
        (args.out / "table_s1.md").write_text(table(rows, header))
    print(table(rows, header))


if __name__ == "__main__":
    main()
