"""The condition image x (§4.2): the object's visible pixels, lightly noised, on the background.

    x = V ⊙ x_obj + (1 − V) ⊙ x_bck                                   (eq. 8)
    x_obj = s_obj · ε + (1 − s_obj) · I,   ε ~ N(0, 1)                 (eq. 9)

Eq. 9 is evaluated in the model's pixel space, [−1, 1] (the range the VAE encodes; 0 is mid-grey), so
ε has unit standard deviation in that space: half a full intensity range, i.e. 127.5 grey levels per
unit of ε. x is clipped back to [−1, 1]. With s_obj = 0.3 the object keeps 70 % of its contrast
around mid-grey and gets noise of standard deviation 0.3 (about 38 grey levels).
"""

from __future__ import annotations

import numpy as np

from amodal.errors import ConfigError


def to_model_space(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [−1, 1]."""
    return image.astype(np.float32) / 127.5 - 1.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [−1, 1] → uint8 [0, 255]."""
    return np.clip(np.rint((image + 1.0) * 127.5), 0, 255).astype(np.uint8)


def noised_object(image: np.ndarray, strength: float, noise: np.ndarray) -> np.ndarray:
    """Eq. 9 in model space: s·ε + (1 − s)·I."""
    return strength * noise + (1.0 - strength) * to_model_space(image)


def condition_image(
    image: np.ndarray, visible: np.ndarray, background: np.ndarray, strength: float, rng: np.random.Generator
) -> np.ndarray:
    """Eq. 8: x in model space, float32 h×w×3 in [−1, 1]."""
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    x_obj = noised_object(image, strength, noise)
    x_bck = to_model_space(background)
    x = np.where(visible[..., None], x_obj, x_bck)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


class Condition:
    """``conf/method/inpaint.yaml``'s ``condition`` node: the object noise strength s_obj of eq. 9."""

    def __init__(self, object_noise: float = 0.3) -> None:
        if not 0.0 <= object_noise <= 1.0:
            raise ConfigError(f"method.condition.object_noise={object_noise}: eq. 9's noise strength must lie "
                              "in [0, 1] (it follows backbone.s unless set)")
        self.object_noise = object_noise

    def __call__(self, image, visible, background, rng) -> np.ndarray:
        return condition_image(image, visible, background, self.object_noise, rng)
