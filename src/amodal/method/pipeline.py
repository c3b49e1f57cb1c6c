"""The paper's method (Fig. 2): area M → condition image x → inpainting x̂₀ → extraction Â.

For each object: the inpainting area M from V (§4.3), the model's view around it, the background
x_bck and the condition image x (§4.2, eqs. 8–9), then, for the whole batch at once, inpainting with
leakage and mask guidance (§4.1, eqs. 7 and 11), and per object the mask extraction at the view,
mapped back to the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amodal.errors import SampleError
from amodal.method.area import InpaintingArea
from amodal.method.background import Background
from amodal.method.condition import Condition, to_uint8
from amodal.method.extract import ExtractionInput, Extractor, extract_counting
from amodal.method.inpaint import DiffusionInpainter
from amodal.method.inpainted_cache import InpaintedImageCache, inputs_key
from amodal.method.predictor import Predictor
from amodal.method.view import View, ViewSpec
from amodal.sample import Prediction, Sample
from amodal.seeding import BACKGROUND_STREAM, CONDITION_STREAM, numpy_rng


@dataclass
class Prepared:
    view: View
    area: np.ndarray  # M at the original resolution
    visible_view: np.ndarray
    area_view: np.ndarray
    condition: np.ndarray  # x at the view, float [−1, 1]


class InpaintPredictor(Predictor):
    name = "inpaint"

    def __init__(
        self,
        area: InpaintingArea,
        background: Background,
        condition: Condition,
        inpainter: DiffusionInpainter,
        extractor: Extractor,
        view: ViewSpec,
        cache: InpaintedImageCache | None = None,
    ) -> None:
        self.area, self.background, self.condition = area, background, condition
        self.inpainter, self.extractor, self.view = inpainter, extractor, view
        self.cache = cache
        # every model must be there before any is built (each check takes well under a second)
        for component in (inpainter, extractor, area):
            component.check()

    def prepare(self, sample: Sample, seed: int) -> Prepared:
        area = self.area(sample)
        view = self.view.make(area)
        image = view.image(sample.image)
        visible = view.mask(sample.visible)
        if not visible.any():
            raise SampleError("the visible mask vanishes at the model's view (smaller than a view pixel); "
                              "try view.mode=crop")
        background = self.background(image, visible, numpy_rng(seed, BACKGROUND_STREAM))
        condition = self.condition(image, visible, background, numpy_rng(seed, CONDITION_STREAM))
        return Prepared(view, area, visible, view.mask(area), condition)

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        prepared = [self.prepare(sample, seed) for sample, seed in zip(samples, seeds)]
        inpainted, rows = self._inpaint(samples, prepared, seeds)
        predictions = []
        for sample, p, image, seed, row in zip(samples, prepared, inpainted, seeds, rows):
            condition = to_uint8(p.condition)
            inputs = ExtractionInput(inpainted=image, visible=p.visible_view, area=p.area_view,
                                     condition=condition, seed=seed)
            extracted, counts = extract_counting(self.extractor, inputs)
            mask = p.view.back(extracted)
            if self.extractor.keeps_visible:
                mask |= sample.visible  # V at full resolution, not its copy at the (coarser) view
            predictions.append(Prediction(mask=mask, pictures={"area": p.area, "condition": condition,
                                                               "inpainted": image}, view_box=p.view.box,
                                          row={**row, **counts}))
        return predictions

    def _inpaint(self, samples: Sequence[Sample], prepared: Sequence[Prepared], seeds: Sequence[int]):
        """x̂₀ for each object, from the cache where it holds one, else from the model in one batch; and per
        object the row fields that say which (``inpainted``: sent through the diffusion model; the cache's
        ``inpaint_cache``: hit or miss), from which metrics.json counts a resumed or merged run whole."""
        caching = self.cache is not None and self.cache.enabled
        inputs = [inputs_key(p.condition, p.area_view) if caching else "" for p in prepared]
        cached = [self.cache.get(s.dataset, s.key, seed, p.condition.shape[:2], key) if caching else None
                  for s, p, seed, key in zip(samples, prepared, seeds, inputs)]
        todo = [i for i, image in enumerate(cached) if image is None]
        if todo:
            fresh = self.inpainter.inpaint([prepared[i].condition for i in todo],
                                           [prepared[i].area_view for i in todo], [seeds[i] for i in todo])
            for i, image in zip(todo, fresh):
                cached[i] = image
                if caching:
                    self.cache.put(samples[i].dataset, samples[i].key, seeds[i], image, inputs[i])
        rows = [{"inpainted": i in todo} for i in range(len(samples))]
        if caching:
            for i, row in enumerate(rows):
                row["inpaint_cache"] = "miss" if i in todo else "hit"
        return cached, rows
