"""Training the synthetic backbone: the autoencoder first, then the 9-channel inpainting UNet.

Each phase (``phases.py``) says what a step's batch is, its loss and its validation; one loop here trains
either: AdamW, transformers' cosine schedule with warm-up (to a tenth of the peak), gradient clipping at
1, and, for the UNet, diffusers' ``EMAModel`` of the weights, whose average the validation loss is
measured on and the pipeline ships.

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
curve (``loss.png``) and, with a run logger (W&B, given by the CLI), its logs go to the run folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers.training_utils import EMAModel
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup_lr_rate

from amodal.config import auto_device, check_device
from amodal.errors import ConfigError
from amodal.models.synthetic_sd import assemble
from amodal.seeding import numpy_rng
from amodal.train.checkpoint import load_checkpoint, save_atomic
from amodal.train.history import History, plot_losses
from amodal.train.pairs import ObjectViews, PairMaker, object_views
from amodal.train.phases import AutoencoderPhase, InpaintingPhase

log = logging.getLogger(__name__)

PHASES = {"vae": 1, "unet": 2}
FINGERPRINT = {"vae": ("seed", "data", "vae"), "unet": ("seed", "data", "vae", "unet", "text_seed")}
"""Config sections each phase's checkpoint must agree with to be resumed (steps may grow; the rest may
not). The autoencoder's does not depend on the UNet's settings, so a new UNet recipe reuses it."""
FINAL_LR = 0.1
"""The cosine schedule ends at this share of the peak learning rate."""


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
    check_device(name, key="device")
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


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: int):
    """Linear warm-up from lr/warmup to lr over ``warmup`` steps, then a cosine decay to ``FINAL_LR`` × lr
    at ``steps`` (transformers' ``cosine_with_min_lr`` schedule)."""
    return get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        optimizer, num_warmup_steps=warmup, num_training_steps=steps, min_lr_rate=FINAL_LR)


def moving_average(model: torch.nn.Module, decay: float) -> EMAModel:
    """diffusers' EMA of ``model``'s parameters. Its n-th update (n ≥ 2) averages with the decay
    min(``decay``, n/(n + 9)), a warm-up so the first weights do not linger; the first one copies them."""
    return EMAModel(model.parameters(), decay=decay)


class Trainer:
    """``logger``: a run logger (``amodal.loggers``: ``start``/``log_scalars``/``finish``), or None."""

    def __init__(self, cfg: DictConfig, run_dir: Path, progress: bool = True, logger=None) -> None:
        self.cfg, self.run_dir, self.progress, self.logger = cfg, Path(run_dir), progress, logger
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

    def _phase_done(self, phase: str) -> bool:
        state = self._load_checkpoint(phase)
        if state is None:
            return False
        history = self.histories[phase]
        history.loss, history.validation = state["loss"], state["validation"]
        history.seconds = state["seconds"]
        return state["step"] >= int(self.cfg[phase].steps)

    def _log(self, values: dict, step: int) -> None:
        if self.logger is not None:
            self.logger.log_scalars(values, step)

    # -- the loop -----------------------------------------------------------------------------------
    def train_phase(self, phase) -> torch.nn.Module:
        """Train ``phase`` (``phases.py``) from its checkpoint, if any, to ``phase.settings.steps``; return its
        model in eval mode, holding the EMA weights when the phase keeps an average."""
        model, settings, name = phase.model, phase.settings, phase.name
        steps, every = int(settings.steps), int(self.cfg.checkpoint_every)
        optimizer = torch.optim.AdamW(model.parameters(), lr=float(settings.lr), weight_decay=0.0)
        schedule = cosine_schedule(optimizer, steps, int(settings.warmup))
        ema = moving_average(model, phase.ema_decay) if phase.ema_decay else None
        history = self.histories[name]
        start = 0
        state = self._load_checkpoint(name)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            if ema is not None:  # the average by parameter name, as the checkpoint holds it
                ema.shadow_params = [state["ema"][k] for k, _ in model.named_parameters()]
                ema.optimization_step = state["step"]
            history.loss, history.validation = state["loss"], state["validation"]
            history.seconds, start = state["seconds"], state["step"]
            if start < steps:
                log.info("%s: resuming at step %d of %d", name, start, steps)

        def checkpoint(step: int) -> None:
            names = [k for k, _ in model.named_parameters()]
            average = dict(zip(names, ema.shadow_params, strict=True)) if ema else None
            save_atomic({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "ema": average,
                         "loss": history.loss, "validation": history.validation, "seconds": history.seconds,
                         "fingerprint": self.fingerprints[name]}, self._checkpoint_path(name))
            self.plot()

        bar = tqdm(total=steps, initial=start, desc=f"training {name}", unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        model.train()
        batches = step_batches(StepBatches(phase.batch, int(self.cfg.seed), name, start, steps), self.workers)
        for step in range(start, steps):
            began = time.perf_counter()
            made, batch = next(batches)
            assert made == step, (made, step)
            loss = phase.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            if ema is not None:
                ema.step(model.parameters())
            history.seconds += time.perf_counter() - began
            history.loss.append((step + 1, float(loss.detach())))
            self._log({f"{name}/loss": history.loss[-1][1], f"{name}/lr": schedule.get_last_lr()[0]}, step + 1)
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean([v for _, v in history.loss[-50:]]):.4f}", refresh=False)
            if (step + 1) % every == 0 or step + 1 == steps:
                evaluated = self._evaluate(phase, ema)
                history.validation.append((step + 1, evaluated))
                self._log({f"{name}/validation": evaluated}, step + 1)
                checkpoint(step + 1)
        bar.close()
        if ema is not None:
            ema.copy_to(model.parameters())
        return model.eval()

    @staticmethod
    def _evaluate(phase, ema: EMAModel | None) -> float:
        """The validation loss, on the EMA weights when there are any; the training weights come back
        exactly (``store``/``restore``)."""
        model = phase.model
        if ema is not None:
            ema.store(model.parameters())
            ema.copy_to(model.parameters())
        model.eval()
        try:
            return phase.validate()
        finally:
            if ema is not None:
                ema.restore(model.parameters())
            model.train()

    # -- the two phases -----------------------------------------------------------------------------
    def train_vae(self, maker: PairMaker, validation: PairMaker):
        final = self.run_dir / "vae"
        if (final / "config.json").exists() and self._phase_done("vae"):
            from diffusers import AutoencoderKL

            return AutoencoderKL.from_pretrained(final).to(self.device).eval()
        phase = AutoencoderPhase(self.cfg, maker, validation, self.device)
        vae = self.train_phase(phase)
        phase.set_scale()
        vae.save_pretrained(final)
        return vae

    def train_unet(self, vae, maker: PairMaker, validation: PairMaker):
        return self.train_phase(InpaintingPhase(self.cfg, vae, maker, validation, self.device))

    # -- all of it ----------------------------------------------------------------------------------
    def run(self):
        data = self.cfg.data
        if int(data.seed) == int(data.validation_seed):
            raise ConfigError("data.validation_seed must differ from data.seed (held-out scenes)")
        log.info("training on %s with %d data workers", self.device, self.workers)
        maker = self.pair_maker(self.views(int(data.seed), int(data.scenes)))
        validation = self.pair_maker(self.views(int(data.validation_seed), int(data.validation_scenes)))
        log.info("%d training objects, %d validation objects", len(maker.views), len(validation.views))
        if self.logger is not None:
            self.logger.start(config=OmegaConf.to_container(self.cfg, resolve=True), run_dir=self.run_dir,
                              name=self.run_dir.name, group=None, tags=["train-synthetic"])
        try:
            vae = self.train_vae(maker, validation)
            unet = self.train_unet(vae, maker, validation)
        finally:
            if self.logger is not None:
                self.logger.finish()
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
        plot_losses(self.histories, self.run_dir / "loss.png")
