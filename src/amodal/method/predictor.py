"""The interface every method implements: samples in, amodal masks out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from amodal.data.base import ObjectDataset
from amodal.sample import Sample


@dataclass
class Prediction:
    mask: np.ndarray
    """The predicted amodal mask Â: bool H×W at the image's original resolution."""
    pictures: dict[str, np.ndarray] = field(default_factory=dict)
    """Intermediate pictures for panels and W&B: the inpainting area (a bool mask at the original
    resolution), the condition image and the inpainted image (uint8 RGB at the model's view: the crop, or
    the whole image resized)."""
    row: dict = field(default_factory=dict)
    """What the method adds to the object's row of results.jsonl (e.g. whether x̂₀ came from the cache),
    so that counts over a resumed or merged run come from its rows."""


class Predictor:
    """A method (``conf/method/``). ``predict`` takes a batch of samples and one seed per sample."""

    name = "predictor"

    def check_dataset(self, dataset: ObjectDataset) -> None:
        """Raise ``ConfigError`` before the run if the method cannot work on this dataset's samples."""

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        raise NotImplementedError
