"""Leakage conditioning (§4.1, eq. 7), applied to the latents after every denoising step:

    x̂_t = s · (M ⊙ x̃_t + (1 − M) ⊙ x_t) + (1 − s) · x_t                (eq. 7)

x̃_t is what the model just produced, x_t the condition image's latents noised to the same step, M the
inpainting area at latent resolution and s the leakage strength (s = 1 is plain inpainting, eq. 5).

Taken literally, eq. 7 leaves the known latents x_t outside M (the default, ``region="literal"``);
the paper's text says pixels outside M can change, which ``region="everywhere"`` allows:
x̂_t = s · x̃_t + (1 − s) · x_t. ``until`` is the fraction of the steps during which leakage applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from amodal.errors import ConfigError

REGIONS = ("literal", "everywhere")


def leak(generated: torch.Tensor, known: torch.Tensor, area: torch.Tensor, strength: float,
         region: str = "literal") -> torch.Tensor:
    """Eq. 7 on latents (any shape that ``area`` broadcasts against), rearranged as
    x̂_t = x_t + s·M⊙(x̃_t − x_t) so that x̂_t is exactly x_t wherever M = 0 or s = 0."""
    if region == "literal":
        return known + strength * area * (generated - known)
    return known + strength * (generated - known)


@dataclass(frozen=True)
class Leakage:
    strength: float = 0.3
    region: str = "literal"
    until: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"backbone.s={self.strength}: the leakage strength must lie in [0, 1] "
                              "(1 = plain inpainting)")
        if self.region not in REGIONS:
            raise ConfigError(f"backbone.leakage_region={self.region!r}: use one of {', '.join(REGIONS)}")
        if not 0.0 <= self.until <= 1.0:
            raise ConfigError(f"backbone.leakage_until={self.until}: a fraction of the steps, in [0, 1]")

    def applies(self, step: int, steps: int) -> bool:
        """Whether leakage follows denoising step ``step`` (0-based) of ``steps``."""
        return step < round(self.until * steps)

    def __call__(self, generated, known, area):
        return leak(generated, known, area, self.strength, self.region)
