"""The oracle: a perfect inpainter on synthetic scenes, to prove the geometry of the whole loop.

It replaces the diffusion model's output by the object's unoccluded rendering (the object alone, with
an alpha channel) *at the model's view* (the run's ``view``, as the inpainting method's), segments it like
a point-prompted extractor would — the parts of the rendering (alpha ≥ ½) that hold a prompt point
sampled from V — and maps the mask back. Crops, resizing, paste-back and metrics must then give IoU ≈ 1;
anything less is a geometry bug.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from amodal.data.base import ObjectDataset
from amodal.errors import ConfigError, SampleError
from amodal.method.area import InpaintingArea
from amodal.method.points import PointSampler
from amodal.method.predictor import Predictor
from amodal.method.view import ViewSpec
from amodal.morphology import components_touching
from amodal.sample import Prediction, Sample
from amodal.seeding import POINTS_STREAM, numpy_rng


def unoccluded_rendering(sample: Sample) -> np.ndarray:
    rendering = sample.extras.get("unoccluded")
    if rendering is None:
        raise SampleError(
            f"method=oracle needs unoccluded renderings, which only dataset=synthetic has (got {sample.dataset})"
        )
    return rendering


class OraclePredictor(Predictor):
    name = "oracle"

    def __init__(self, area: InpaintingArea, view: ViewSpec, points: PointSampler | None = None) -> None:
        self.area = area
        self.view = view
        self.points = points

    def check_dataset(self, dataset: ObjectDataset) -> None:
        if "unoccluded" not in dataset.extras:
            raise ConfigError(f"method=oracle needs unoccluded renderings, which dataset={dataset.name} does not have: "
                              "use dataset=synthetic")

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        predictions = []
        for sample, seed in zip(samples, seeds):
            rendering = unoccluded_rendering(sample)
            area = self.area(sample)
            view = self.view.make(area)
            alpha = (rendering.max(axis=2) > 0).astype(np.uint8) * 255  # the renderer never draws black
            inpainted = view.image(np.dstack([rendering, alpha]))
            foreground = inpainted[:, :, 3] >= 128
            if self.points is not None:
                points = self.points(view.mask(sample.visible), numpy_rng(seed, POINTS_STREAM))
                prompted = np.zeros_like(foreground)
                prompted[points[:, 1].astype(int), points[:, 0].astype(int)] = True
                foreground = components_touching(foreground, prompted)
            mask = view.back(foreground)
            predictions.append(Prediction(mask=mask, pictures={"area": area, "inpainted": inpainted[:, :, :3]},
                                          view_box=view.box))
        return predictions
