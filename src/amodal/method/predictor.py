"""The interface every method implements: samples in, amodal masks (``Prediction``) out."""

from __future__ import annotations

from collections.abc import Sequence

from amodal.data.base import ObjectDataset
from amodal.sample import Prediction, Sample


class Predictor:
    """A method (``conf/method/``). ``predict`` takes a batch of samples and one seed per sample."""

    name = "predictor"

    def check_dataset(self, dataset: ObjectDataset) -> None:
        """Raise ``ConfigError`` before the run if the method cannot work on this dataset's samples."""

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        raise NotImplementedError
