"""Methods without a generative model: the visible mask and the inpainting area as predictions."""

from __future__ import annotations

from collections.abc import Sequence

from amodal.method.area import InpaintingArea
from amodal.method.predictor import Predictor
from amodal.sample import Prediction, Sample


class VisiblePredictor(Predictor):
    """Â = V: the modal mask itself, the floor any amodal method must beat."""

    name = "visible"

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        return [Prediction(mask=s.visible.copy()) for s in samples]


class AreaPredictor(Predictor):
    """Â = M: the inpainting area as the prediction (the paper's Table S2)."""

    name = "area"

    def __init__(self, area: InpaintingArea) -> None:
        self.area = area
        area.check()  # a missing depth model is found now, not at the first object

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        predictions = []
        for sample in samples:
            area = self.area(sample)
            predictions.append(Prediction(mask=area, pictures={"area": area}))
        return predictions
