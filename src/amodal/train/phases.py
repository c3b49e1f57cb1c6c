"""The two phases of training the synthetic backbone, each a small class the loop (``trainer.py``) drives:
``model`` and ``settings`` (steps, lr, warmup), ``ema_decay`` (None: no EMA), ``batch(rng)`` (the CPU side
of a step, made in a data worker when ``workers`` > 0), ``loss(batch)`` and ``validate()`` (a fixed
held-out batch, on whatever weights the model holds).

The UNet is trained the way SD-inpainting models are: y's latents are noised to a random timestep t,
and from [noisy latents | mask at latent size | masked-image latents] and the empty prompt's embedding
the UNet predicts the noise, under a mean-squared error. A share of the pairs (``unet.leakage``) is
noised from eq. 7's mix instead and still asked for y (``leaked_targets``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.training_utils import compute_snr
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from amodal.errors import ConfigError
from amodal.models.synthetic_sd import autoencoder, empty_prompt_embedding, inpainting_unet, training_scheduler
from amodal.seeding import UNET_VALIDATION_STREAM, VAE_VALIDATION_STREAM, numpy_rng, torch_generator
from amodal.train.pairs import PairMaker, images_for_vae, random_crop

MIN_SNR_GAMMA = 5.0


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


def min_snr_weight(scheduler, t: torch.Tensor, gamma: float = MIN_SNR_GAMMA) -> torch.Tensor:
    """Min-SNR (Hang et al. 2023) for ε-prediction: min(SNR(t), γ)/SNR(t), SNR = ᾱ_t/(1 − ᾱ_t)."""
    snr = compute_snr(scheduler, t)
    return torch.clamp(snr, max=gamma) / snr


def leaked_targets(noise, noisy, target, scheduler, t, leaked):
    """Per sample, the noise to predict and the loss weight: ε itself for plain pairs; for leaked ones
    ε* = (z_t − √ᾱ_t·y)/√(1 − ᾱ_t), which takes z_t to y, weighted by min(SNR, γ)/SNR."""
    a = scheduler.alphas_cumprod.to(t.device)[t].to(noisy.dtype)[:, None, None, None]
    wanted = (noisy - a.sqrt() * target) / (1 - a).sqrt()
    weight = torch.where(leaked, min_snr_weight(scheduler, t), 1.0)
    return torch.where(leaked[:, None, None, None], wanted, noise), weight.to(noisy.dtype)


class AutoencoderPhase:
    """AutoencoderKL: L1 reconstruction + ``vae.kl_weight`` × KL on random ``vae.crop`` px crops."""

    name, ema_decay = "vae", None

    def __init__(self, cfg: DictConfig, maker: PairMaker, validation: PairMaker, device: torch.device) -> None:
        self.settings, self.maker, self.device = cfg.vae, maker, device
        torch.manual_seed(int(cfg.seed))
        self.model = autoencoder(self.settings.block_out_channels, int(self.settings.latent_channels),
                                 int(self.settings.layers_per_block), int(self.settings.norm_num_groups))
        if self.settings.get("init"):
            load_trained_part(self.model, Path(to_absolute_path(str(self.settings.init))), "vae")
        self.model.to(device)
        rng = numpy_rng(int(cfg.seed), VAE_VALIDATION_STREAM)
        count = min(int(cfg.data.validation_items), len(validation.views))
        self.val_images = to_batch([images_for_vae(validation(i, rng), rng) for i in range(count)]).to(device)

    def batch(self, rng: np.random.Generator) -> dict:
        maker, crop = self.maker, int(self.settings.crop)
        images = [random_crop(images_for_vae(maker(int(rng.integers(len(maker.views))), rng), rng), crop, rng)
                  for _ in range(int(self.settings.batch_size))]
        return {"x": to_batch(images), "seed": int(rng.integers(2**62))}

    def loss(self, batch: dict) -> torch.Tensor:
        x = batch["x"].to(self.device)
        posterior = self.model.encode(x).latent_dist
        reconstruction = self.model.decode(posterior.sample(generator=torch_generator(batch["seed"])))
        return F.l1_loss(reconstruction.sample, x) + float(self.settings.kl_weight) * posterior.kl().mean()

    def validate(self) -> float:
        with torch.no_grad():
            reconstruction = self.model.decode(self.model.encode(self.val_images).latent_dist.mode()).sample
            return float(F.l1_loss(reconstruction, self.val_images))

    def set_scale(self) -> None:
        """Unit-variance latents for the diffusion model (SD's 0.18215 is the same idea), unless an
        autoencoder taken as is (``vae.init`` with 0 steps) keeps its own scale."""
        if int(self.settings.steps) > 0 or not self.settings.get("init"):
            with torch.no_grad():
                latents = self.model.encode(self.val_images).latent_dist.mode()
            self.model.register_to_config(scaling_factor=float(1.0 / latents.std()))


class InpaintingPhase:
    """UNet2DConditionModel with 9 input channels: noise MSE, Min-SNR-weighted for leaked pairs, EMA weights."""

    name = "unet"

    def __init__(self, cfg: DictConfig, vae, maker: PairMaker, validation: PairMaker, device: torch.device) -> None:
        settings, view = cfg.unet, int(cfg.data.view)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        if view % factor:
            raise ConfigError(f"data.view={view}: use a multiple of the autoencoder's factor {factor}")
        self.latent = view // factor
        torch.manual_seed(int(cfg.seed) + 1)
        self.model = inpainting_unet(self.latent, int(vae.config.latent_channels), settings.block_out_channels,
                                     int(settings.layers_per_block), int(settings.attention_head_dim),
                                     int(settings.norm_num_groups))
        if settings.get("init"):
            load_trained_part(self.model, Path(to_absolute_path(str(settings.init))), "unet")
        if settings.get("masks"):
            maker = PairMaker(maker.views, dict(settings.masks), occluder=maker.occluder,
                              object_noise=maker.object_noise, background_kernel=maker.background.kernel)
        self.settings, self.maker, self.device, self.vae = settings, maker, device, vae
        self.ema_decay = float(settings.ema_decay)
        self.model.to(device)
        self.noise_schedule = training_scheduler()
        self.embedding = empty_prompt_embedding(int(cfg.text_seed)).to(device)
        self.scaling = float(vae.config.scaling_factor)
        vae.requires_grad_(False)
        self.leakage = settings.get("leakage") or {"chance": 0.0, "strength": [1.0, 1.0]}
        rng = numpy_rng(int(cfg.seed), UNET_VALIDATION_STREAM)
        count = min(int(cfg.data.validation_items), len(validation.views))
        self.fixed = self.inputs(self.pack([validation(i, rng) for i in range(count)], rng))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.vae.encode(x.to(self.device)).latent_dist.mode() * self.scaling

    @staticmethod
    def pack(pairs, rng: np.random.Generator) -> dict:
        """The pairs as tensors, and the seed of the step's noise and timesteps."""
        return {"target": to_batch([p.target for p in pairs]), "masked": to_batch([p.masked for p in pairs]),
                "mask": to_batch([p.mask for p in pairs]), "seed": int(rng.integers(2**62)),
                "leaked": torch.zeros(len(pairs), dtype=torch.bool)}

    def add_leaks(self, batch: dict, pairs, rng: np.random.Generator) -> dict:
        """Eq. 7's mix for a share of the pairs (``unet.leakage``), decided by ``rng``."""
        leakage = self.leakage
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

    def batch(self, rng: np.random.Generator) -> dict:
        maker = self.maker
        pairs = [maker(int(rng.integers(len(maker.views))), rng) for _ in range(int(self.settings.batch_size))]
        return self.add_leaks(self.pack(pairs, rng), pairs, rng)

    def inputs(self, batch: dict):
        device, latent = self.device, self.latent
        mask = F.interpolate(batch["mask"].to(device), size=(latent, latent), mode="nearest")
        latents, masked_latents = self.encode(batch["target"]), self.encode(batch["masked"])
        generator = torch_generator(batch["seed"])  # on the CPU, then moved: the same on every device
        noise = torch.randn(latents.shape, generator=generator).to(device)
        t = torch.randint(0, self.noise_schedule.config.num_train_timesteps, (len(latents),), generator=generator)
        leaked = batch["leaked"].to(device)
        start = latents
        if leaked.any():
            drawn = latents
            if "overfill" in batch:  # the model's own hull filling, fed back by eq. 7, still asked for y
                drawn = torch.where(batch["overfill"].to(device)[:, None, None, None], self.encode(batch["filled"]),
                                    latents)
            share = batch["share"].to(device)[:, None, None, None]
            mixed = leaked_mix(drawn, self.encode(batch["condition"]), mask, share)
            start = torch.where(leaked[:, None, None, None], mixed, latents)
        noisy = self.noise_schedule.add_noise(start, noise, t.to(device))
        return torch.cat([noisy, mask, masked_latents], dim=1), t.to(device), noise, noisy, latents, leaked

    def predict(self, sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(sample, t, self.embedding.expand(len(t), -1, -1)).sample

    def loss(self, batch: dict) -> torch.Tensor:
        sample, t, noise, noisy, latents, leaked = self.inputs(batch)
        prediction = self.predict(sample, t)
        if not leaked.any():
            return F.mse_loss(prediction, noise)
        target, weight = leaked_targets(noise, noisy, latents, self.noise_schedule, t, leaked)
        return (weight * (prediction - target).pow(2).mean(dim=(1, 2, 3))).mean()

    def validate(self) -> float:
        sample, t, noise = self.fixed[:3]
        with torch.no_grad():
            return float(F.mse_loss(self.predict(sample, t), noise))
