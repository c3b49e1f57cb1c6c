"""Mask guidance (§4.3, eq. 11): classifier-free guidance on the inpainting area instead of a prompt.

    x̃_t^CFG = (1 + w) · x̃_t(M) − w · x̃_t(∅)                          (eq. 11)

∅, the "empty representation of M", is an all-zero mask; the masked image the model sees with it is
then the whole condition image (nothing is masked out). Diffusers' pipelines compute
u + g·(c − u) = (1 + w)·c − w·u with g = 1 + w, so eq. 11 is their guidance with ``guidance_scale``
= 1 + w, provided the two halves differ only in the mask: the text halves get the same empty prompt,
and the unconditional half's mask channels are replaced by ∅ (``EmptyMaskHook``).

A pipeline whose denoiser takes the mask but that runs no guided batch (FLUX.1-Fill: guidance-distilled,
one pass per step) gets eq. 11 from a second pass of the denoiser with ∅ (``EmptyMaskPass``). Where the
denoiser never sees the mask (FLUX.1-schnell, SD3) the two terms are equal and eq. 11 cannot act.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def guided(conditional: torch.Tensor, unconditional: torch.Tensor, weight: float) -> torch.Tensor:
    """Eq. 11."""
    return (1 + weight) * conditional - weight * unconditional


def guidance_scale(weight: float) -> float:
    """Diffusers' ``guidance_scale`` g for eq. 11's w: g = 1 + w (w = 0 → one network pass per step)."""
    return 1.0 + weight


class EmptyMaskHook:
    """A forward pre-hook on a 9-channel inpainting UNet: in a doubled (guided) batch, the first,
    unconditional half gets the empty mask ∅ and the unmasked condition latents as its masked image.

    Input channels of SD inpainting UNets: [latents (4) | mask (1) | masked-image latents (4)].
    """

    def __init__(self, condition_latents: torch.Tensor) -> None:
        self.condition_latents = condition_latents  # the unmasked condition image's latents, B×4×h×w

    def __call__(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        batch = self.condition_latents.shape[0]
        if sample.shape[0] != 2 * batch:
            return None  # unguided (w = 0): nothing to replace
        channels = self.condition_latents.shape[1]
        sample = sample.clone()
        sample[:batch, channels : channels + 1] = 0.0
        sample[:batch, channels + 1 :] = self.condition_latents.to(sample.dtype)
        if args:
            return (sample, *args[1:]), kwargs
        return args, {**kwargs, "sample": sample}


class EmptyMaskPass:
    """A forward hook (``with_kwargs=True``) on a denoiser whose last input channels are the condition it
    reads M from (FLUX.1-Fill: the masked-image latents and the mask, packed): after the pipeline's pass
    v(M) it runs a second pass v(∅) with ``empty()``'s condition in those channels, on the same latents,
    timestep and text, and returns eq. 11's (1 + w)·v(M) − w·v(∅) in place of v(M)."""

    def __init__(self, weight: float, empty: Callable[[], torch.Tensor]) -> None:
        self.weight = weight
        self.empty = empty  # ∅'s condition, B × tokens × channels; read when the loop runs

    def __call__(self, module, args, kwargs, output):
        hidden = kwargs["hidden_states"]
        empty = self.empty().to(hidden.dtype)
        latents = hidden[..., : hidden.shape[-1] - empty.shape[-1]]
        # ``forward``, not the module's __call__: this hook must not run again on its own pass
        unconditional = module.forward(**{**kwargs, "hidden_states": torch.cat([latents, empty], dim=-1)})
        return (guided(output[0], unconditional[0], self.weight), *output[1:])
