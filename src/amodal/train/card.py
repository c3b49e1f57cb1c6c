"""MODEL_CARD.md of the synthetic backbone, written by the training command beside the weights it exports."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf


def _yaml(node) -> str:
    return OmegaConf.to_yaml(node).rstrip()


def last_overrides(overrides: list[str]) -> list[str]:
    """Each key's last override only (Hydra lets a later one win), in the order they were given."""
    last = {override.split("=", 1)[0]: index for index, override in enumerate(overrides)}
    return [override for index, override in enumerate(overrides) if last[override.split("=", 1)[0]] == index]


def model_card(cfg: DictConfig, summary: dict, overrides: list[str] | None = None) -> str:
    command = " ".join(["amodal-train-synthetic", *last_overrides(overrides or [])])
    vae, unet = summary["vae"], summary["unet"]
    data = cfg.data
    leakage = cfg.unet.get("leakage") or {}
    factor = 2 ** (len(cfg.vae.block_out_channels) - 1)
    return f"""# synthetic_sd: a small SD-inpainting model trained on the synthetic scenes

**What it is.** A Stable-Diffusion-inpainting pipeline (diffusers `StableDiffusionInpaintPipeline`) at toy
size, trained from scratch on this package's synthetic scenes (`amodal.data.synthetic`) so that the
method (`method=inpaint`) produces real amodal completions on a CPU: `backbone=synthetic_sd`. It knows
nothing but textured shapes on smooth backgrounds; it is not a substitute for SD1.5/SD2/SDXL/Flux.
It saw {data.view} px object-centred views: run it with `view.mode=crop backbone.resolution={data.view}`.

**Parts.** `AutoencoderKL` (blocks {list(cfg.vae.block_out_channels)}, {cfg.vae.latent_channels} latent
channels, downsampling by {factor}: a {data.view} px view → {data.view // factor}×{data.view // factor} latents);
`UNet2DConditionModel` with 9 input channels [noisy latents | mask | masked-image latents] (blocks
{list(cfg.unet.block_out_channels)}, cross-attention at the coarsest level); the tiny CLIP tokenizer
and text encoder of `amodal.models.tiny` with fixed random
weights (seed {cfg.text_seed}; the method is prompt-free, the UNet only ever reads the empty prompt's
embedding); a DDIM scheduler (trailing timesteps) on SD's scaled-linear noise schedule. Weights are stored
in {cfg.export.dtype}; load them in float32 on a CPU (the backbone config does).

## Data

Scenes of `render_scene(seed={data.seed}, index, size={data.scene_size})` for index < {data.scenes}
(validation loss: seed {data.validation_seed}, {data.validation_scenes} scenes).
**Evaluations use seeds below 1000, never these.**
Each object with ≥ 64 visible pixels is cropped the way `view.mode=crop` frames it at inference
(a square around hull(V), the side drawn from {list(data.context)} × the hull's; resized to {data.view} px).
Augmentation: the 8 symmetries of the square, a random permutation of the colour channels, and with
odds {data.occluder} a further occluder (another object's outline) over the object.

**Training pair** (designed for what the method feeds the model at inference: V's pixels lightly
noised on the histogram background x_bck, inpainting area M = hull(V)):
- target y: the object's *unoccluded* rendering, with its anti-aliased edge, composited on the
  histogram background that `background=histogram` builds from V's colours
(blur {data.background_kernel}): the completed object on exactly the background the method will put around it;
- mask, drawn per pair with these odds:
```yaml
{_yaml(data.masks)}
```
  `hull_hidden` = hull(V) ∪ (A \\ V) and `hull` = hull(V) make "complete the occluded shape inside M" the
  main task; `object` (the object's own outline) and `occluder` teach the occlusion-free bias (a
  mask shaped like an object is filled by a whole object); `empty` is eq. 11's ∅ (no mask, the masked
  image is the whole image), which mask guidance feeds the model at every step;
- masked image: y outside the mask, 0 (mid-grey) inside, as the pipeline makes it.

The autoencoder learns to encode targets, condition images (eqs. 8–9 with s_obj = {data.object_noise})
and masked images.

## Recipe

```yaml
seed: {cfg.seed}
vae:
{_indent(_yaml(cfg.vae))}
unet:
{_indent(_yaml(cfg.unet))}
```
- Autoencoder: L1 reconstruction + {cfg.vae.kl_weight} × KL on random {cfg.vae.crop} px crops, then the latent
  scaling factor set to 1 / std of the validation latents (SD's 0.18215 is the same idea).
- UNet: the usual noise-prediction MSE (ε-prediction) at t ~ U{{0, 999}}, SD's schedule; AdamW, linear
  warm-up then cosine decay to a tenth (transformers' `cosine_with_min_lr`, both phases); gradient clipping
  at 1; EMA of the weights (diffusers' `EMAModel`: decay min({cfg.unet.ema_decay}, n/(n + 9)) at its n-th
  update, the first one a copy), which are the ones shipped.
{_leaked_pairs(leakage)}
- Every step's randomness is a function of (seed, phase, step): resuming from a checkpoint continues
  the same run.

## Result

| phase | steps | training loss (mean of the last 200 steps) | validation loss | wall time |
|---|---|---|---|---|
{_row("autoencoder", vae, "L1")}
{_row("UNet", unet, "noise MSE, EMA weights")}

{_wall_time(cfg)}

![loss curves](loss.png)

## Reproduce

```
{command}
```
(`PYTHONPATH=src python -m amodal.cli.train_synthetic ...` from a checkout without the console script.)
Interrupted? Run it again with `hydra.run.dir=<the run folder>`: it resumes from the last checkpoint.
"""


def _leaked_pairs(leakage) -> str:
    if not leakage.get("chance"):
        return "- No leaked pairs (`unet.leakage.chance` = 0): every pair is noised from y alone."
    return f"""- Leaked pairs (odds {leakage["chance"]}): the method's eq. 7 feeds the UNet latents mixed with the
  condition image's, and M = hull(V) hides all of V from the masked image, so that mix is how V reaches the model.
  These pairs are noised from λ·y + (1 − λ)·x inside the mask and x outside it (x: the condition image's
  latents, λ ~ U{list(leakage["strength"])}, one noise for both as at inference); the target is the
  noise that takes them to y, ε* = (z_t − √ᾱ_t·y)/√(1 − ᾱ_t), weighted by min(SNR, 5)/SNR (Min-SNR).
  The training loss below mixes both kinds; the validation loss is on plain pairs.{_overfilled(leakage)}"""


def _overfilled(leakage) -> str:
    if not leakage.get("fill"):
        return ""
    return f"""
  In a share {leakage["fill"]} of them the λ part is y overfilled (the mask outside the object painted with the
  nearest object colour: the hull filling a weak model draws), still asked for y."""


def _wall_time(cfg) -> str:
    device, threads = str(cfg.get("device", "cpu")), cfg.threads
    if device == "cpu":
        return f"Wall time: summed step times on the CPU (torch with {threads} thread(s), {os.cpu_count()} cores)."
    workers = cfg.get("workers", 0)
    return f"Wall time: summed step times, data waits included, on device `{device}` ({workers} data workers)."


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _row(name: str, phase: dict, kind: str) -> str:
    return (f"| {name} | {phase['steps']} | {_num(phase['final_loss'])} "
            f"| {_num(phase['validation'])} ({kind}) | {phase['minutes']:.0f} min |")


def _num(value) -> str:
    return "–" if value is None else f"{value:.4f}"
