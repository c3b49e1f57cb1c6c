"""The interface every method implements: samples in, amodal masks out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from amodal.sample import Sample


@dataclass
class Prediction:
    mask: np.ndarray
    """The predicted amodal mask Â: bool H×W at the image's original resolution."""
    pictures: dict[str, np.ndarray] = field(default_factory=dict)
    """Intermediate pictures for panels and W&B: the inpainting area (a bool mask at the original
    resolution), the condition image and the inpainted image (uint8 RGB at the model's view: the crop, or
    the whole image resized)."""


class Predictor:
    """A method (``conf/method/``). ``predict`` takes a batch of samples and one seed per sample."""

    name = "predictor"

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        raise NotImplementedError
