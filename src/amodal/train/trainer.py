"""Training the synthetic backbone: the autoencoder first, then the 9-channel inpainting UNet.

The UNet is trained the way SD-inpainting models are: y's latents are noised to a random timestep t,
and from [noisy latents | mask at latent size | masked-image latents] and the empty prompt's embedding
the UNet predicts the noise, under a mean-squared error. Training pairs come from ``pairs.py``.

The method feeds the UNet latents that eq. 7 has mixed with the condition image's (``leakage.py``):
inside M, s·(its own latents) + (1 − s)·(x's latents noised alike), and x's alone outside M. Since M =
hull(V) hides all of V from the masked image, that mix is the only way V's pixels reach the model. So
a share of the pairs (``unet.leakage.chance``) is noised from such a mix, λ·y + (1 − λ)·x inside the
mask and x outside it (λ drawn from ``unet.leakage.strength``, one noise for both as at inference),
while the model is still asked for y: its target is the noise that takes those latents to y,
ε* = (z_t − √ᾱ_t·y)/√(1 − ᾱ_t), weighted by min(SNR, 5)/SNR (Min-SNR) so that the small timesteps,
where ε* is large, do not dominate.

``unet.leakage.fill`` feeds back, in a share of the leaked pairs, the wrong answer a weak model gives:
y overfilled to the whole mask (``pairs.overfilled``), still asked for y.

Every step's randomness is drawn from (seed, phase, step), so a run that stops and resumes from its
last checkpoint continues exactly as if it had not stopped, and the pairs can be made in ``workers``
processes without changing a bit of the result. ``device`` runs the networks on a GPU
(``scripts/gpu_train.sh`` is the recipe for a lent GPU machine). Checkpoints, the loss history, a loss
curve (``loss.png``) and W&B (offline) logs go to the run folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from amodal.config import auto_device
from amodal.errors import ConfigError
from amodal.models.synthetic_sd import (
    assemble,
    autoencoder,
    empty_prompt_embedding,
    inpainting_unet,
    training_scheduler,
)
from amodal.seeding import UNET_VALIDATION_STREAM, VAE_VALIDATION_STREAM, numpy_rng, torch_generator
from amodal.train.pairs import ObjectViews, PairMaker, images_for_vae, object_views, random_crop

log = logging.getLogger(__name__)

PHASES = {"vae": 1, "unet": 2}
FINGERPRINT = {"vae": ("seed", "data", "vae"), "unet": ("seed", "data", "vae", "unet", "text_seed")}
"""Config sections each phase's checkpoint must agree with to be resumed (steps may grow; the rest may
not). The autoencoder's does not depend on the UNet's settings, so a new UNet recipe reuses it."""
MIN_SNR_GAMMA = 5.0


def fingerprint(cfg: DictConfig, phase: str = "unet") -> dict:
    """What ``phase``'s checkpoint must agree with to be resumed: its sections but the step counts."""
    out = {}
    for key in FINGERPRINT[phase]:
        value = cfg[key]
        value = OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "steps"}
        out[key] = value
    return json.loads(json.dumps(out))


def step_rng(seed: int, phase: str, step: int) -> np.random.Generator:
    return numpy_rng(seed, PHASES[phase], step)


def resolve_device(name: str) -> torch.device:
    """``device``: cpu | cuda | cuda:N | auto (a GPU when there is one)."""
    name = auto_device(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: this machine has no CUDA GPU; use device=cpu or device=auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: use cpu, cuda, cuda:N or auto") from None


class StepBatches(torch.utils.data.IterableDataset):
    """The batches of steps ``start``..``stop`` − 1, each made by ``make`` from its step's own generator
    (``step_rng``): worker k of n makes the steps ≡ k (mod n), and the loader's round-robin hands them
    back in step order, so any number of workers yields exactly the batches one process would."""

    def __init__(self, make: Callable[[np.random.Generator], dict], seed: int, phase: str, start: int,
                 stop: int) -> None:
        self.make, self.seed, self.phase, self.start, self.stop = make, seed, phase, start, stop

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, index = (1, 0) if info is None else (info.num_workers, info.id)
        for step in range(self.start + index, self.stop, workers):
            yield step, self.make(step_rng(self.seed, self.phase, step))


def step_batches(batches: StepBatches, workers: int):
    """The batches in step order, made in ``workers`` processes (0: in this one)."""
    if workers <= 0:
        return iter(batches)
    return iter(torch.utils.data.DataLoader(batches, batch_size=None, num_workers=workers, prefetch_factor=4,
                                            multiprocessing_context="fork"))


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then a cosine decay to a tenth of the peak."""
    ramp = min(1.0, (step + 1) / max(warmup, 1))
    return ramp * (0.1 + 0.45 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1))))


class EMA:
    """An exponential moving average of a model's parameters (with the usual warm-up of the decay)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for k, p in model.named_parameters():
            self.shadow[k].mul_(decay).add_(p.detach(), alpha=1 - decay)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        for k, p in model.named_parameters():
            p.copy_(self.shadow[k])


@dataclass
class History:
    loss: list[tuple[int, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0


class TrainingLog:
    """W&B (``logger.mode``: offline / online / disabled) in the run folder; one run per folder."""

    def __init__(self, run_dir: Path, mode: str, project: str, config: dict) -> None:
        self._run = None
        if mode == "disabled":
            return
        import wandb

        id_file = run_dir / "wandb_run_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else os.urandom(6).hex()
        id_file.write_text(run_id + "\n")
        self._run = wandb.init(project=project, mode=mode, dir=str(run_dir), id=run_id, resume="allow",
                               name=run_dir.name, config=config, tags=["train-synthetic"])

    def log(self, values: dict, step: int) -> None:
        if self._run is not None:
            self._run.log({**values, "global_step": step})

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


CHECKPOINT_KEYS = ("step", "model", "optimizer", "schedule", "ema", "loss", "validation", "seconds", "fingerprint")
"""What ``Trainer`` saves in a checkpoint."""


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """A checkpoint of ``save_atomic``, read as tensors, numbers, strings and containers only
    (``weights_only``): a file that names anything else is refused and runs nothing; a truncated or foreign
    file, or one without what ``Trainer`` saves, is refused in one line naming it."""
    fix = "delete it to train that phase afresh"
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL (\S+)", str(err))
        if named:
            raise ConfigError(f"{path} names {named.group(1)}, which a training checkpoint never holds: refused, "
                              f"nothing in it ran; {fix}") from None
        raise ConfigError(f"{path} is not a training checkpoint (not a file torch.save wrote: "
                          f"{_first_sentence(err)}); {fix}") from None
    except Exception as err:  # torch.load raises anything a cut-off or foreign file provokes
        size = path.stat().st_size if path.exists() else 0
        cut = "it is empty" if size == 0 else f"{size:,} bytes, cut off or not a file torch.save wrote"
        raise ConfigError(f"{path} is not a readable checkpoint ({cut}: {_first_sentence(err)}); {fix}") from None
    missing = [key for key in CHECKPOINT_KEYS if key not in state] if isinstance(state, dict) else CHECKPOINT_KEYS
    if missing or not isinstance(state["fingerprint"], dict):
        what = f"has no {', '.join(missing)}" if missing else "has no fingerprint of its config"
        raise ConfigError(f"{path} is not a training checkpoint of amodal-train-synthetic ({what}); {fix}")
    return state


def _first_sentence(err: BaseException) -> str:
    text = str(err).strip().split(". ")[0]
    return f"{type(err).__name__}: {text}" if isinstance(err, LookupError) or not text else text


def to_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    """h×w×3 float arrays → B×3×h×w; h×w masks → B×1×h×w."""
    stacked = torch.from_numpy(np.stack(arrays).astype(np.float32))
    return stacked[:, None] if stacked.dim() == 3 else stacked.permute(0, 3, 1, 2).contiguous()


def load_trained_part(model: torch.nn.Module, source: Path, part: str) -> None:
    """Start ``model`` from a trained pipeline's ``part`` (``unet.init`` / ``vae.init``: a pipeline folder,
    e.g. another run's ``pipeline/``, or the part's own folder). The architectures must agree."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    cls, name = {"unet": (UNet2DConditionModel, "UNet"), "vae": (AutoencoderKL, "autoencoder")}[part]
    folder = source / part if (source / part).is_dir() else source
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{part}.init={source}: no {name} there (want a pipeline folder with {part}/config.json)")
    trained = cls.from_pretrained(folder, dtype=torch.float32)
    try:
        model.load_state_dict(trained.state_dict())
    except RuntimeError as err:
        first_line = str(err).splitlines()[0]
        raise ConfigError(f"{part}.init={source}: its {name} differs from {part}.* ({first_line})") from None
    if part == "vae":  # the latents' scale belongs to the weights
        model.register_to_config(scaling_factor=float(trained.config.scaling_factor))


def leaked_mix(target: torch.Tensor, condition: torch.Tensor, mask: torch.Tensor, share: torch.Tensor):
    """What eq. 7 feeds the model, before noising: λ·y + (1 − λ)·x inside the mask, x outside it."""
    return torch.where(mask > 0.5, share * target + (1 - share) * condition, condition)


def leaked_targets(noise, noisy, target, alpha_bar, leaked):
    """Per sample, the noise to predict and the loss weight: ε itself for plain pairs; for leaked ones
    ε* = (z_t − √ᾱ·y)/√(1 − ᾱ), which takes z_t to y, weighted by min(SNR, γ)/SNR."""
    a = alpha_bar.to(noisy.dtype)[:, None, None, None]
    wanted = (noisy - a.sqrt() * target) / (1 - a).sqrt()
    snr = alpha_bar / (1 - alpha_bar)
    weight = torch.where(leaked, torch.clamp(snr, max=MIN_SNR_GAMMA) / snr, torch.ones_like(snr))
    return torch.where(leaked[:, None, None, None], wanted, noise), weight.to(noisy.dtype)


class Trainer:
    def __init__(self, cfg: DictConfig, run_dir: Path, progress: bool = True) -> None:
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        self.device = resolve_device(str(cfg.get("device", "cpu")))
        self.workers = int(cfg.get("workers", 0))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)
        self.fingerprints = {phase: fingerprint(cfg, phase) for phase in PHASES}
        self.histories = {phase: History() for phase in PHASES}
        torch.manual_seed(int(cfg.seed))

    # -- data ---------------------------------------------------------------------------------------
    def views(self, seed: int, scenes: int) -> ObjectViews:
        data = self.cfg.data
        path = self.run_dir / f"views-seed{seed}-n{scenes}-s{data.scene_size}-v{data.view}.npz"
        if path.exists():
            return ObjectViews.load(path)
        views = object_views(seed, scenes, int(data.scene_size), int(data.view), tuple(data.context),
                             progress=self.progress, workers=self.workers)
        views.save(path)
        return views

    def pair_maker(self, views: ObjectViews) -> PairMaker:
        data = self.cfg.data
        return PairMaker(views, dict(data.masks), occluder=float(data.occluder),
                         object_noise=float(data.object_noise), background_kernel=int(data.background_kernel))

    # -- checkpoints --------------------------------------------------------------------------------
    def _checkpoint_path(self, phase: str) -> Path:
        return self.run_dir / "checkpoints" / f"{phase}.pt"

    def _load_checkpoint(self, phase: str):
        path = self._checkpoint_path(phase)
        if not path.exists():
            return None
        state = load_checkpoint(path, self.device)
        expected = self.fingerprints[phase]
        keys = sorted(k for k in expected if state["fingerprint"].get(k) != expected[k])
        if keys:
            raise ConfigError(f"{path} was trained with another config (differs in: {', '.join(keys)}); "
                              "resume with the same config or choose a new hydra.run.dir")
        return state

    # -- one phase ----------------------------------------------------------------------------------
    def _run_phase(self, phase: str, model: torch.nn.Module, settings: DictConfig,
                   make_batch: Callable[[np.random.Generator], dict], loss_fn: Callable[[dict], torch.Tensor],
                   validate: Callable[[torch.nn.Module], float], logger: TrainingLog,
                   ema_decay: float | None = None) -> torch.nn.Module:
        steps, every = int(settings.steps), int(self.cfg.checkpoint_every)
        optimizer = torch.optim.AdamW(model.parameters(), lr=float(settings.lr), weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, steps, int(settings.warmup)))
        ema = EMA(model, ema_decay) if ema_decay else None
        history = self.histories[phase]
        start = 0
        state = self._load_checkpoint(phase)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            if ema is not None:
                ema.shadow = state["ema"]
            history.loss, history.validation = state["loss"], state["validation"]
            history.seconds, start = state["seconds"], state["step"]
            if start < steps:
                log.info("%s: resuming at step %d of %d", phase, start, steps)

        def checkpoint(step: int) -> None:
            save_atomic({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "ema": ema.shadow if ema else None,
                         "loss": history.loss, "validation": history.validation, "seconds": history.seconds,
                         "fingerprint": self.fingerprints[phase]}, self._checkpoint_path(phase))
            self.plot()

        bar = tqdm(total=steps, initial=start, desc=f"training {phase}", unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        model.train()
        batches = step_batches(StepBatches(make_batch, int(self.cfg.seed), phase, start, steps), self.workers)
        for step in range(start, steps):
            began = time.perf_counter()
            made, batch = next(batches)
            assert made == step, (made, step)
            loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            if ema is not None:
                ema.update(model, step)
            history.seconds += time.perf_counter() - began
            history.loss.append((step + 1, float(loss.detach())))
            logger.log({f"{phase}/loss": history.loss[-1][1], f"{phase}/lr": schedule.get_last_lr()[0]},
                       step + 1)
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean([v for _, v in history.loss[-50:]]):.4f}", refresh=False)
            if (step + 1) % every == 0 or step + 1 == steps:
                evaluated = self._evaluate(model, ema, validate)
                history.validation.append((step + 1, evaluated))
                logger.log({f"{phase}/validation": evaluated}, step + 1)
                checkpoint(step + 1)
        bar.close()
        if ema is not None:
            ema.copy_to(model)
        return model.eval()

    @staticmethod
    def _evaluate(model, ema, validate) -> float:
        """The validation loss, with the EMA weights when there are any."""
        if ema is None:
            model.eval()
            value = validate(model)
            model.train()
            return value
        live = {k: p.detach().clone() for k, p in model.named_parameters()}
        ema.copy_to(model)
        model.eval()
        value = validate(model)
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(live[k])
        model.train()
        return value

    # -- the autoencoder ----------------------------------------------------------------------------
    def train_vae(self, maker: PairMaker, validation: PairMaker, logger: TrainingLog):
        settings = self.cfg.vae
        torch.manual_seed(int(self.cfg.seed))
        vae = autoencoder(settings.block_out_channels, int(settings.latent_channels),
                          int(settings.layers_per_block), int(settings.norm_num_groups))
        final = self.run_dir / "vae"
        if (final / "config.json").exists() and self._phase_done("vae"):
            from diffusers import AutoencoderKL

            return AutoencoderKL.from_pretrained(final).to(self.device).eval()
        if settings.get("init"):
            load_trained_part(vae, Path(to_absolute_path(str(settings.init))), "vae")
        vae.to(self.device)

        def make_batch(rng):
            images = [random_crop(images_for_vae(maker(int(rng.integers(len(maker.views))), rng), rng),
                                  int(settings.crop), rng) for _ in range(int(settings.batch_size))]
            return {"x": to_batch(images), "seed": int(rng.integers(2**62))}

        def loss_fn(batch):
            x = batch["x"].to(self.device)
            posterior = vae.encode(x).latent_dist
            reconstruction = vae.decode(posterior.sample(generator=torch_generator(batch["seed"])))
            return F.l1_loss(reconstruction.sample, x) + float(settings.kl_weight) * posterior.kl().mean()

        val_images = to_batch(self._validation_vae_images(validation)).to(self.device)

        def validate(model):
            with torch.no_grad():
                reconstruction = model.decode(model.encode(val_images).latent_dist.mode()).sample
                return float(F.l1_loss(reconstruction, val_images))

        vae = self._run_phase("vae", vae, settings, make_batch, loss_fn, validate, logger)
        if int(settings.steps) > 0 or not settings.get("init"):  # an autoencoder taken as is keeps its scale
            with torch.no_grad():
                latents = vae.encode(val_images).latent_dist.mode()
            # unit-variance latents for the diffusion model (SD's 0.18215 is the same idea)
            vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
        vae.save_pretrained(final)
        return vae

    def _validation_vae_images(self, validation: PairMaker) -> list[np.ndarray]:
        rng = numpy_rng(int(self.cfg.seed), VAE_VALIDATION_STREAM)
        count = min(int(self.cfg.data.validation_items), len(validation.views))
        return [images_for_vae(validation(i, rng), rng) for i in range(count)]

    def _phase_done(self, phase: str) -> bool:
        state = self._load_checkpoint(phase)
        if state is None:
            return False
        history = self.histories[phase]
        history.loss, history.validation = state["loss"], state["validation"]
        history.seconds = state["seconds"]
        return state["step"] >= int(self.cfg[phase].steps)

    # -- the inpainting UNet ------------------------------------------------------------------------
    def train_unet(self, vae, maker: PairMaker, validation: PairMaker, logger: TrainingLog):
        settings, view = self.cfg.unet, int(self.cfg.data.view)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        if view % factor:
            raise ConfigError(f"data.view={view}: use a multiple of the autoencoder's factor {factor}")
        latent = view // factor
        torch.manual_seed(int(self.cfg.seed) + 1)
        unet = inpainting_unet(latent, int(vae.config.latent_channels), settings.block_out_channels,
                               int(settings.layers_per_block), int(settings.attention_head_dim),
                               int(settings.norm_num_groups))
        if settings.get("init"):
            load_trained_part(unet, Path(to_absolute_path(str(settings.init))), "unet")
        if settings.get("masks"):
            maker = PairMaker(maker.views, dict(settings.masks), occluder=maker.occluder,
                              object_noise=maker.object_noise, background_kernel=maker.background.kernel)
        device = self.device
        unet.to(device)
        noise_schedule = training_scheduler()
        embedding = empty_prompt_embedding(int(self.cfg.text_seed)).to(device)
        scaling = float(vae.config.scaling_factor)
        vae.requires_grad_(False)

        def encode(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return vae.encode(x.to(device)).latent_dist.mode() * scaling

        leakage = settings.get("leakage") or {"chance": 0.0, "strength": [1.0, 1.0]}

        def pack(pairs, rng):
            """The CPU side of a step (in a worker when ``workers`` > 0): the pairs as tensors, and the seed
            of the step's noise and timesteps."""
            return {"target": to_batch([p.target for p in pairs]), "masked": to_batch([p.masked for p in pairs]),
                    "mask": to_batch([p.mask for p in pairs]), "seed": int(rng.integers(2**62)),
                    "leaked": torch.zeros(len(pairs), dtype=torch.bool)}

        def add_leaks(batch, pairs, rng):
            """Eq. 7's mix for a share of the pairs (``unet.leakage``), decided by ``rng``."""
            if leakage["chance"] <= 0:
                return batch
            leaked = torch.from_numpy(rng.random(len(pairs)) < float(leakage["chance"]))
            batch["share"] = torch.from_numpy(rng.uniform(*leakage["strength"], size=len(pairs)).astype(np.float32))
            batch["leaked"] = leaked
            if leaked.any():
                batch["condition"] = to_batch([p.condition for p in pairs])
                overfill = torch.from_numpy(rng.random(len(pairs)) < float(leakage.get("fill", 0.0)))
                if overfill.any():
                    batch["overfill"], batch["filled"] = overfill, to_batch([p.filled() for p in pairs])
            return batch

        def training_batch(rng):
            pairs = [maker(int(rng.integers(len(maker.views))), rng) for _ in range(int(settings.batch_size))]
            return add_leaks(pack(pairs, rng), pairs, rng)

        def inputs(batch):
            mask = F.interpolate(batch["mask"].to(device), size=(latent, latent), mode="nearest")
            latents, masked_latents = encode(batch["target"]), encode(batch["masked"])
            generator = torch_generator(batch["seed"])  # on the CPU, then moved: the same on every device
            noise = torch.randn(latents.shape, generator=generator).to(device)
            t = torch.randint(0, noise_schedule.config.num_train_timesteps, (len(latents),), generator=generator)
            leaked = batch["leaked"].to(device)
            start = latents
            if leaked.any():
                drawn = latents
                if "overfill" in batch:  # the model's own hull filling, fed back by eq. 7, still asked for y
                    drawn = torch.where(batch["overfill"].to(device)[:, None, None, None], encode(batch["filled"]),
                                        latents)
                share = batch["share"].to(device)[:, None, None, None]
                mixed = leaked_mix(drawn, encode(batch["condition"]), mask, share)
                start = torch.where(leaked[:, None, None, None], mixed, latents)
            noisy = noise_schedule.add_noise(start, noise, t.to(device))
            return torch.cat([noisy, mask, masked_latents], dim=1), t.to(device), noise, noisy, latents, leaked

        alphas = noise_schedule.alphas_cumprod.to(device)

        def loss_fn(batch):
            sample, t, noise, noisy, latents, leaked = inputs(batch)
            prediction = unet(sample, t, embedding.expand(len(t), -1, -1)).sample
            if not leaked.any():
                return F.mse_loss(prediction, noise)
            target, weight = leaked_targets(noise, noisy, latents, alphas[t], leaked)
            return (weight * (prediction - target).pow(2).mean(dim=(1, 2, 3))).mean()

        rng = numpy_rng(int(self.cfg.seed), UNET_VALIDATION_STREAM)
        count = min(int(self.cfg.data.validation_items), len(validation.views))
        fixed = inputs(pack([validation(i, rng) for i in range(count)], rng))

        def validate(model):
            sample, t, noise = fixed[:3]
            with torch.no_grad():
                return float(F.mse_loss(model(sample, t, embedding.expand(len(t), -1, -1)).sample, noise))

        return self._run_phase("unet", unet, settings, training_batch, loss_fn, validate, logger,
                               float(settings.ema_decay))

    # -- all of it ----------------------------------------------------------------------------------
    def run(self):
        data = self.cfg.data
        if int(data.seed) == int(data.validation_seed):
            raise ConfigError("data.validation_seed must differ from data.seed (held-out scenes)")
        log.info("training on %s with %d data workers", self.device, self.workers)
        maker = self.pair_maker(self.views(int(data.seed), int(data.scenes)))
        validation = self.pair_maker(self.views(int(data.validation_seed), int(data.validation_scenes)))
        log.info("%d training objects, %d validation objects", len(maker.views), len(validation.views))
        logger = TrainingLog(self.run_dir, str(self.cfg.logger.mode), str(self.cfg.logger.project),
                             OmegaConf.to_container(self.cfg, resolve=True))
        try:
            vae = self.train_vae(maker, validation, logger)
            unet = self.train_unet(vae, maker, validation, logger)
        finally:
            logger.finish()
        self.plot()
        pipe = assemble(vae.to("cpu"), unet.to("cpu"), int(self.cfg.text_seed))
        pipe.save_pretrained(self.run_dir / "pipeline")
        return pipe

    def summary(self) -> dict:
        out = {}
        for phase, history in self.histories.items():
            tail = [v for _, v in history.loss[-200:]]
            out[phase] = {"steps": len(history.loss), "final_loss": float(np.mean(tail)) if tail else None,
                          "validation": history.validation[-1][1] if history.validation else None,
                          "minutes": history.seconds / 60}
        return out

    def plot(self) -> None:
        """loss.png: each phase's training loss (light: per step; dark: a 100-step moving mean) and the
        validation loss at the checkpoints."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        titles = {"vae": "autoencoder: L1 + KL", "unet": "inpainting UNet: noise MSE"}
        for ax, (phase, history) in zip(axes, self.histories.items(), strict=True):
            ax.set_title(titles[phase])
            ax.set_xlabel("step")
            if not history.loss:
                continue
            steps, values = np.array(history.loss).T
            ax.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=0.6, label="train (step)")
            if len(values) >= 100:
                mean = np.convolve(values, np.ones(100) / 100, mode="valid")
                ax.plot(steps[99:], mean, color="tab:blue", label="train (100-step mean)")
            if history.validation:
                vs, vv = np.array(history.validation).T
                ax.plot(vs, vv, "o-", color="tab:orange", markersize=3, label="validation")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(self.run_dir / "loss.png", dpi=110)
        plt.close(fig)
