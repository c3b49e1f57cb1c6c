"""Seconds per object, peak memory, overhead ratio and batching gain of ``method=inpaint`` per backbone.

The backbones are the *full-size* architectures (the real UNet / transformer / VAE configurations) with
random weights: compute does not depend on the weights' values, and no weights are needed. Each
backbone runs in its own process, so peak memory is its own.

    python benchmarks/speed.py                                  # CPU, 256 px, 4 steps, all backbones
    python benchmarks/speed.py --device cuda --dtype float16 --resolution native --steps 20
    python benchmarks/speed.py --tiny --resolution 64 --steps 2  # the tiny models: the code path, in seconds

Batching: the same ``--objects`` objects are run at each of ``--batches`` (default 1 and 4 objects per
network batch) after a warm-up batch of that size; objects per second at each, and their ratio, come
from the same process and the same loaded model.

The overhead ratio is the method's time per object divided by the time of the network passes it
cannot avoid, measured in the same run by hooks on the networks: the denoiser's forward passes
(steps × 2 with guidance, × 1 without), the VAE encodes the method needs (SD family: the condition
image and the masked image; Flux: the condition image) and one VAE decode. Text encoders run once per
process (the empty prompt is cached) and are built at full width but one layer deep.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from amodal.config import torch_dtype
from amodal.data.synthetic import SyntheticDataset
from amodal.memory import peak_memory_mb
from amodal.method.area import HullArea
from amodal.method.background import HistogramBackground
from amodal.method.condition import Condition
from amodal.method.extract import DifferenceExtractor
from amodal.method.inpaint import DiffusionInpainter
from amodal.method.pipeline import InpaintPredictor
from amodal.method.view import ViewSpec
from amodal.models.loading import PipelineSource, TinyPipeline, quantize_transformer
from amodal.seeding import object_seed

SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
SD_DOWN = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
SD_UP = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
BACKBONES = {
    # name: (family, native resolution, w, unet/transformer config, vae config, text encoders' widths)
    "sd15": ("sd", 512, 7.5, dict(in_channels=9, sample_size=64, block_out_channels=(320, 640, 1280, 1280),
                                  layers_per_block=2, down_block_types=SD_DOWN, up_block_types=SD_UP,
                                  attention_head_dim=8, cross_attention_dim=768), SD_VAE, (768,)),
    "sd2": ("sd", 512, 7.5, dict(in_channels=9, sample_size=64, block_out_channels=(320, 640, 1280, 1280),
                                 layers_per_block=2, down_block_types=SD_DOWN, up_block_types=SD_UP,
                                 attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024,
                                 use_linear_projection=True), SD_VAE, (1024,)),
    "sdxl": ("sdxl", 1024, 7.5, dict(in_channels=9, sample_size=128, block_out_channels=(320, 640, 1280),
                                     layers_per_block=2,
                                     down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                     up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                                     transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                                     cross_attention_dim=2048, use_linear_projection=True,
                                     addition_embed_type="text_time", addition_time_embed_dim=256,
                                     projection_class_embeddings_input_dim=2816),
             {**SD_VAE, "force_upcast": True}, (768, 1280)),
    "flux": ("flux", 512, 0.0, dict(), {**SD_VAE, "latent_channels": 16, "use_quant_conv": False,
                                        "use_post_quant_conv": False, "shift_factor": 0.1159,
                                        "scaling_factor": 0.3611}, (768, 4096)),
}


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Small random weights (their values do not change the cost; this only avoids NaN/denormals), drawn
    where the module is (a GPU draws billions of them in well under a second)."""
    generator = torch.Generator(device=next(module.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.02, generator=generator)
    return module


def build(name: str, dtype: torch.dtype, flux_blocks: tuple[int, int], device: str = "cpu"):
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        FlowMatchEulerDiscreteScheduler,
        FluxInpaintPipeline,
        FluxTransformer2DModel,
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionXLInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from amodal.models.tiny import clip_tokenizer, t5_tokenizer

    family, _, _, net_config, vae_config, widths = BACKBONES[name]

    def made(cls, *args, big: bool = False, **kwargs):
        if not big:
            return cls(*args, **kwargs).to(device=device, dtype=dtype).eval()
        with torch.device("meta"):  # skip the slow default initialisation of billions of weights
            module = cls(*args, **kwargs)
        return randomize_(module.to_empty(device=device)).to(dtype).eval()

    def clip(width, projection=False):
        tokenizer = clip_tokenizer()
        config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=4 * width,
                                num_hidden_layers=1, num_attention_heads=width // 64, projection_dim=width,
                                bos_token_id=0, eos_token_id=1, pad_token_id=1)
        return tokenizer, made(CLIPTextModelWithProjection if projection else CLIPTextModel, config)

    vae = made(AutoencoderKL, big=True, **vae_config)
    if family == "sd":
        tokenizer, text = clip(widths[0])
        return StableDiffusionInpaintPipeline(
            vae=vae, text_encoder=text, tokenizer=tokenizer, unet=made(UNet2DConditionModel, big=True, **net_config),
            scheduler=PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                    skip_prk_steps=True, steps_offset=1),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if family == "sdxl":
        (tokenizer, text), (tokenizer_2, text_2) = clip(widths[0]), clip(widths[1], projection=True)
        return StableDiffusionXLInpaintPipeline(
            vae=vae, text_encoder=text, text_encoder_2=text_2, tokenizer=tokenizer, tokenizer_2=tokenizer_2,
            unet=made(UNet2DConditionModel, big=True, **net_config),
            scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
            requires_aesthetics_score=False)
    tokenizer, text = clip(widths[0])
    t5_tokenizer_ = t5_tokenizer()
    t5 = made(T5EncoderModel, T5Config(vocab_size=len(t5_tokenizer_), d_model=widths[1], d_kv=64, d_ff=10240,
                                        num_layers=1, num_heads=64))
    transformer = made(FluxTransformer2DModel, big=True, num_layers=flux_blocks[0], num_single_layers=flux_blocks[1])
    return FluxInpaintPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0), vae=vae, text_encoder=text,
                               tokenizer=tokenizer, text_encoder_2=t5, tokenizer_2=t5_tokenizer_,
                               transformer=transformer)


class RandomWeights(PipelineSource):
    """The full-size architecture of backbone ``name`` with random weights, built on the device."""

    def __init__(self, name: str, flux_blocks: tuple[int, int]) -> None:
        self.name, self.family, self.flux_blocks = name, BACKBONES[name][0], flux_blocks

    def load(self, device, dtype):
        return build(self.name, dtype, self.flux_blocks, device).to(device)


class Quantized(PipelineSource):
    """A pipeline source whose denoiser (and T5) get 8-bit weights, as ``backbone.pipeline.quantize``."""

    def __init__(self, inner: PipelineSource, weights: str = "qint8") -> None:
        self.inner, self.weights, self.family = inner, weights, inner.family

    def load(self, device, dtype):
        pipe = self.inner.load(device, dtype)
        quantize_transformer(pipe, self.weights)
        return pipe


def source(name: str, args, quantize: str | None = None) -> PipelineSource:
    """``--tiny``: the tiny pipeline of the backbone's family (tests); else its full-size architecture."""
    pipeline = TinyPipeline(BACKBONES[name][0]) if args.tiny else RandomWeights(name, tuple(args.flux_blocks))
    return Quantized(pipeline, quantize) if quantize else pipeline


class NetworkClock:
    """Counts and times every forward pass of the denoiser, the VAE encoder and the VAE decoder."""

    def __init__(self, pipe, device: str) -> None:
        self.calls, self.seconds, self.device = defaultdict(int), defaultdict(float), device
        for name, module in (("denoiser", denoiser_of(pipe)), ("encode", pipe.vae.encoder),
                             ("decode", pipe.vae.decoder)):
            module.register_forward_pre_hook(self._start(name))
            module.register_forward_hook(self._stop(name))
        self._started: dict[str, float] = {}

    def _sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def _start(self, name):
        def hook(module, args):
            self._sync()
            self._started[name] = time.perf_counter()
        return hook

    def _stop(self, name):
        def hook(module, args, output):
            self._sync()
            self.seconds[name] += time.perf_counter() - self._started.pop(name)
            self.calls[name] += 1
        return hook

    def reset(self):
        self.calls.clear()
        self.seconds.clear()


def occluded_samples(count: int, size: int = 512) -> list:
    """``count`` occluded objects of seeded synthetic scenes (what a run sends through the model)."""
    dataset = SyntheticDataset(n_images=count, size=size)
    samples = (dataset.load(key) for key in dataset.keys())
    return list(itertools.islice((s for s in samples if s.occlusion_rate > 0), count))


def predict(predictor, samples) -> None:
    predictor.predict(samples, [object_seed(0, s.key) for s in samples])


def measure_one(name: str, args) -> dict:
    family, native, w, *_ = BACKBONES[name]
    resolution = native if args.resolution == "native" else int(args.resolution)
    inpainter = DiffusionInpainter(source(name, args), resolution=resolution, steps=args.steps, w=w,
                                   device=args.device, dtype=args.dtype)
    predictor = InpaintPredictor(HullArea(), HistogramBackground(), Condition(), inpainter, DifferenceExtractor(),
                                 ViewSpec(size=resolution))
    batches = sorted(set(args.batches))
    warm_up, *samples = occluded_samples(1 + args.objects)
    clock = NetworkClock(inpainter.pipe, args.device)
    predict(predictor, [warm_up])  # allocation, kernels, the prompt
    per_batch = {}
    for batch in batches:
        if batch > 1:
            predict(predictor, samples[:batch])  # warm-up at this batch size
        clock.reset()
        start = time.perf_counter()
        for first in range(0, args.objects, batch):
            predict(predictor, samples[first : first + batch])
        seconds = time.perf_counter() - start
        network_batches = args.objects // batch
        per_batch[batch] = {"objects_per_second": args.objects / seconds, "seconds_per_object": seconds / args.objects,
                            "calls_per_batch": {k: v // network_batches for k, v in clock.calls.items()},
                            "network_seconds": dict(clock.seconds)}
    row = {
        "backbone": name, "tiny": bool(args.tiny), "device": args.device, "device_name": device_name(args.device),
        "dtype": args.dtype, "resolution": resolution, "steps": args.steps, "guided_passes": 2 if inpainter.w else 1,
        "denoiser_parameters_M": round(sum(p.numel() for p in denoiser_of(inpainter.pipe).parameters()) / 1e6),
        "objects": args.objects, "batches": per_batch, "peak_memory_mb": peak_memory_mb(args.device),
        "flux_blocks": list(args.flux_blocks) if family == "flux" and not args.tiny else None,
    }
    if len(batches) > 1:  # objects/s at the largest batch ÷ at the smallest
        rates = [per_batch[b]["objects_per_second"] for b in (batches[-1], batches[0])]
        row["batch_speedup"] = rates[0] / rates[1]
    if 1 in per_batch:  # the overhead ratio, object by object
        one = per_batch[1]
        calls = dict(one["calls_per_batch"])
        per_call = {k: one["network_seconds"][k] / (calls[k] * args.objects) for k in calls}
        needed = {"denoiser": len(inpainter.pipe.scheduler.timesteps), "encode": 1 if family == "flux" else 2,
                  "decode": 1}
        unavoidable = sum(per_call[k] * needed[k] for k in needed)
        row.update(seconds_per_object=one["seconds_per_object"], network_seconds=unavoidable,
                   overhead_ratio=one["seconds_per_object"] / unavoidable, calls_per_object=calls, needed_calls=needed)
    return row


def denoiser_of(pipe):
    return getattr(pipe, "unet", None) or pipe.transformer


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def table(rows: list[dict]) -> str:
    batches = sorted({int(b) for r in rows for b in r["batches"]})
    lines = ["| backbone | device | dtype | px | steps | denoiser params | s/object | peak memory | overhead | "
             + " | ".join(f"objects/s at batch {b}" for b in batches) + " | batch gain |",
             "|---|---|---|---|---|---|---|---|---|" + "---|" * len(batches) + "---|"]
    for r in rows:
        blocks = f" ({r['flux_blocks'][0]}+{r['flux_blocks'][1]} of 19+38 blocks)" if r["flux_blocks"] else ""
        name = f"{r['backbone']}{blocks}{' (tiny)' if r.get('tiny') else ''}"
        per_batch = {int(b): v for b, v in r["batches"].items()}
        rates = " | ".join(f"{per_batch[b]['objects_per_second']:.3g}" if b in per_batch else "–" for b in batches)
        seconds = f"{r['seconds_per_object']:.2f}" if "seconds_per_object" in r else "–"
        overhead = f"{r['overhead_ratio']:.3f}" if "overhead_ratio" in r else "–"
        gain = f"{r['batch_speedup']:.2f}×" if "batch_speedup" in r else "–"
        lines.append(f"| {name} | {r['device_name']} | {r['dtype']} | {r['resolution']} | {r['steps']} | "
                     f"{r['denoiser_parameters_M']} M | {seconds} | {r['peak_memory_mb'] / 1024:.1f} GiB | "
                     f"{overhead} | {rates} | {gain} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--resolution", default="256", help="pixels, or 'native' (512 SD, 1024 SDXL, 512 Flux)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--objects", type=int, default=4,
                        help="timed objects at each batch size (a multiple of each), after one warm-up object")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4], help="objects per network batch")
    parser.add_argument("--tiny", action="store_true", help="the tiny pipelines instead of the full-size ones")
    parser.add_argument("--flux-blocks", type=int, nargs=2, default=(2, 4), metavar=("DOUBLE", "SINGLE"),
                        help="Flux transformer blocks (the real model has 19 38; fewer fit a CPU's memory)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch_dtype(args.dtype)
    if any(b < 1 or args.objects % b for b in args.batches):
        parser.error(f"--objects {args.objects} must be a multiple of every --batches size {args.batches}")
    if args.one:
        print(json.dumps(measure_one(args.one, args)))
        return
    rows = []
    for name in args.backbones:
        command = [sys.executable, __file__, "--one", name, *sys.argv[1:]]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"{name}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        rates = ", ".join(f"{v['objects_per_second']:.3g} objects/s at batch {b}"
                          for b, v in rows[-1]["batches"].items())
        print(f"{name}: {rates}", file=sys.stderr)
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
