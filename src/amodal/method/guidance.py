"""Mask guidance (§4.3, eq. 11): classifier-free guidance on the inpainting area instead of a prompt.

    x̃_t^CFG = (1 + w) · x̃_t(M) − w · x̃_t(∅)                          (eq. 11)

∅, the "empty representation of M", is an all-zero mask; the masked image the model sees with it is
then the whole condition image (nothing is masked out). Diffusers' pipelines compute
u + g·(c − u) = (1 + w)·c − w·u with g = 1 + w, so eq. 11 is their guidance with ``guidance_scale``
= 1 + w, provided the two halves differ only in the mask: the text halves get the same empty prompt,
and the unconditional half's mask channels are replaced by ∅ (``EmptyMaskHook``).
"""

from __future__ import annotations

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
