"""The modal baselines (the paper's SAM and SAM2 rows, Tables 1-3): the segmenter on the *original*
image, prompted with the same points from V, without inpainting. Whatever they gain over Â = V comes
from SAM filling V's gaps, not from seeing the hidden part."""

from __future__ import annotations

from collections.abc import Sequence

from amodal.method.extract import ExtractionInput, Extractor, extract_counting
from amodal.method.predictor import Predictor
from amodal.method.view import View, ViewSpec
from amodal.sample import Prediction, Sample


class ModalPredictor(Predictor):
    """Â = extractor(I, V) at ``view`` (null: the original image as it is, SAM resizes it itself; the
    inpainting method's ``${view}`` to see exactly what the segmenter sees there)."""

    name = "modal"

    def __init__(self, extractor: Extractor, view: ViewSpec | None = None) -> None:
        self.extractor = extractor
        self.view = view
        self.name = f"{getattr(extractor, 'name', 'extractor')}_modal"
        # the weights must be there before the run starts (a fast file check; nothing is loaded)
        extractor.check()

    def view_of(self, sample: Sample) -> View:
        if self.view is None:
            height, width = sample.size
            return View((0, 0, width, height), (width, height), (height, width))
        return self.view.make(sample.visible)  # nothing is inpainted: M = V

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        predictions = []
        for sample, seed in zip(samples, seeds, strict=True):
            view = self.view_of(sample)
            visible = view.mask(sample.visible)
            image = view.image(sample.image)
            inputs = ExtractionInput(inpainted=image, visible=visible, area=visible, seed=seed)
            mask, counts = extract_counting(self.extractor, inputs)
            predictions.append(Prediction(mask=view.back(mask), row=counts))
        return predictions
