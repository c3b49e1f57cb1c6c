"""The oracle: a perfect inpainter on synthetic scenes, to prove the geometry of the whole loop.

It replaces the diffusion model's output by the object's unoccluded rendering (the object alone, with
an alpha channel) *at the model's view*, segments it (alpha ≥ ½) and maps the mask back. Crops,
resizing, paste-back and metrics must then give IoU ≈ 1; anything less is a geometry bug.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from amodal.errors import SampleError
from amodal.method.area import InpaintingArea
from amodal.method.predictor import Prediction, Predictor
from amodal.method.view import ViewSpec
from amodal.sample import Sample

def unoccluded_rendering(sample: Sample) -> np.ndarray:
    rendering = sample.extras.get("unoccluded")
    if rendering is None:
        raise SampleError(
            f"method=oracle needs unoccluded renderings, which only dataset=synthetic has (got {sample.dataset})"
        )
    return rendering


class OraclePredictor(Predictor):
    name = "oracle"

    def __init__(self, area: InpaintingArea, view: ViewSpec) -> None:
        self.area = area
        self.view = view

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        predictions = []
        for sample in samples:
            rendering = unoccluded_rendering(sample)
            area = self.area(sample)
            view = self.view.make(area)
            alpha = (rendering.max(axis=2) > 0).astype(np.uint8) * 255  # the renderer never draws black
            inpainted = view.image(np.dstack([rendering, alpha]))
            mask = view.back(inpainted[:, :, 3] >= 128)
            predictions.append(Prediction(mask=mask, pictures={"area": area, "inpainted": rendering}))
        return predictions
