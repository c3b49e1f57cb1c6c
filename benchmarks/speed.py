"""Seconds per object, peak memory and overhead ratio of ``method=inpaint`` for each backbone.

The backbones are the *full-size* architectures (the real UNet / transformer / VAE configurations) with
random weights: compute does not depend on the weights' values, and no weights are needed. Each
backbone runs in its own process, so peak memory is its own.

    python benchmarks/speed.py                                  # CPU, 256 px, 4 steps, all backbones
    python benchmarks/speed.py --device cuda --dtype float16 --resolution native --steps 20

The overhead ratio is the method's time per object divided by the time of the network passes it
cannot avoid, measured in the same run by hooks on the networks: the denoiser's forward passes
(steps × 2 with guidance, × 1 without), the VAE encodes the method needs (SD family: the condition
image and the masked image; Flux: the condition image) and one VAE decode. Text encoders run once per
process (the empty prompt is cached) and are built at full width but one layer deep.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from amodal.data.synthetic import SyntheticDataset
from amodal.memory import peak_memory_mb
from amodal.method.area import HullArea
from amodal.method.background import HistogramBackground
from amodal.method.condition import Condition
from amodal.method.extract import DifferenceExtractor
from amodal.method.inpaint import DiffusionInpainter
from amodal.method.pipeline import InpaintPredictor
from amodal.method.view import ViewSpec
from amodal.models.loading import PipelineSource, torch_dtype
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
    """Small random weights (their values do not change the cost; this only avoids NaN/denormals)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    return module


def build(name: str, dtype: torch.dtype, flux_blocks: tuple[int, int]):
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
            return cls(*args, **kwargs).to(dtype).eval()
        with torch.device("meta"):  # skip the slow default initialisation of billions of weights
            module = cls(*args, **kwargs)
        return randomize_(module.to_empty(device="cpu")).to(dtype).eval()

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
    def __init__(self, name: str, flux_blocks: tuple[int, int]) -> None:
        self.name, self.family, self.flux_blocks = name, BACKBONES[name][0], flux_blocks

    def load(self, device, dtype):
        return build(self.name, dtype, self.flux_blocks).to(device)


class NetworkClock:
    """Counts and times every forward pass of the denoiser, the VAE encoder and the VAE decoder."""

    def __init__(self, pipe, device: str) -> None:
        self.calls, self.seconds, self.device = defaultdict(int), defaultdict(float), device
        denoiser = getattr(pipe, "unet", None) or pipe.transformer
        for name, module in (("denoiser", denoiser), ("encode", pipe.vae.encoder), ("decode", pipe.vae.decoder)):
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


def measure_one(name: str, args) -> dict:
    family, native, w, *_ = BACKBONES[name]
    resolution = native if args.resolution == "native" else int(args.resolution)
    inpainter = DiffusionInpainter(RandomWeights(name, tuple(args.flux_blocks)), resolution=resolution,
                                   steps=args.steps, w=w, device=args.device, dtype=args.dtype)
    predictor = InpaintPredictor(HullArea(), HistogramBackground(), Condition(), inpainter, DifferenceExtractor(),
                                 ViewSpec(size=resolution))
    dataset = SyntheticDataset(n_images=2, size=512)
    keys = dataset.keys()[: args.objects + 1]
    samples = [dataset.load(k) for k in keys]
    clock = NetworkClock(inpainter.pipe, args.device)
    predictor.predict(samples[:1], [object_seed(0, keys[0])])  # warm-up: allocation, kernels, prompt
    clock.reset()
    start = time.perf_counter()
    for sample, key in zip(samples[1:], keys[1:]):
        predictor.predict([sample], [object_seed(0, key)])
    seconds = (time.perf_counter() - start) / args.objects
    per_object = {k: v / args.objects for k, v in clock.seconds.items()}
    calls = {k: v // args.objects for k, v in clock.calls.items()}
    per_call = {k: per_object[k] / calls[k] for k in per_object}
    passes = 2 if inpainter.w else 1
    needed = {"denoiser": len(inpainter.pipe.scheduler.timesteps), "encode": 1 if family == "flux" else 2,
              "decode": 1}
    unavoidable = sum(per_call[k] * needed[k] for k in needed)
    denoiser = getattr(inpainter.pipe, "unet", None) or inpainter.pipe.transformer
    parameters = sum(p.numel() for p in denoiser.parameters())
    return {
        "backbone": name, "device": args.device, "device_name": device_name(args.device), "dtype": args.dtype,
        "resolution": resolution, "steps": args.steps, "guided_passes": passes,
        "denoiser_parameters_M": round(parameters / 1e6), "seconds_per_object": seconds,
        "network_seconds": unavoidable, "overhead_ratio": seconds / unavoidable,
        "calls_per_object": calls, "needed_calls": needed, "peak_memory_mb": peak_memory_mb(args.device),
        "flux_blocks": list(args.flux_blocks) if family == "flux" else None,
    }


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def table(rows: list[dict]) -> str:
    lines = ["| backbone | device | dtype | px | steps | denoiser params | s/object | peak memory | overhead |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        blocks = f" ({r['flux_blocks'][0]}+{r['flux_blocks'][1]} of 19+38 blocks)" if r["flux_blocks"] else ""
        lines.append(f"| {r['backbone']}{blocks} | {r['device_name']} | {r['dtype']} | {r['resolution']} | "
                     f"{r['steps']} | {r['denoiser_parameters_M']} M | {r['seconds_per_object']:.2f} | "
                     f"{r['peak_memory_mb'] / 1024:.1f} GiB | {r['overhead_ratio']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--resolution", default="256", help="pixels, or 'native' (512 SD, 1024 SDXL, 512 Flux)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--objects", type=int, default=2, help="timed objects after one warm-up object")
    parser.add_argument("--flux-blocks", type=int, nargs=2, default=(2, 4), metavar=("DOUBLE", "SINGLE"),
                        help="Flux transformer blocks (the real model has 19 38; fewer fit a CPU's memory)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch_dtype(args.dtype)
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
        print(f"{name}: {rows[-1]['seconds_per_object']:.2f} s/object, overhead {rows[-1]['overhead_ratio']:.3f}",
              file=sys.stderr)
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
