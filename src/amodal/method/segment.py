"""Point-prompted segmentation: the amodal mask Â is what SAM or SAM 2 segments in the inpainted image
x̂₀ when prompted with points sampled from V (§4, §5.1).

SAM's ``SamPredictor`` and sam2's ``SAM2ImagePredictor`` share one interface (``set_image``, then
``predict(point_coords, point_labels, multimask_output)`` → masks, predicted IoUs, logits), so one
extractor serves both; the ``model`` node (``amodal.models.sam`` / ``amodal.models.sam2``) says which.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings

import numpy as np
import torch

from amodal.config import auto_device, auto_dtype, half_precision, torch_dtype
from amodal.errors import ConfigError
from amodal.method.extract import ExtractionInput, Extractor
from amodal.method.points import PointSampler, RandomPoints
from amodal.models.model_cache import cached_model
from amodal.seeding import POINTS_STREAM, numpy_rng

SELECTIONS = ("score", "area")


def select_mask(masks: np.ndarray, scores: np.ndarray, how: str = "score") -> np.ndarray:
    """One of the C×h×w candidate masks: the highest predicted IoU (``score``) or the largest (``area``);
    the first wins a tie."""
    if how == "score":
        index = int(np.argmax(scores))
    elif how == "area":
        index = int(np.argmax(masks.reshape(len(masks), -1).sum(axis=1)))
    else:
        raise ConfigError(f"extractor.select={how!r}: use one of {', '.join(SELECTIONS)}")
    return masks[index].astype(bool)


class PromptedPredictor:
    """A model's predictor on one device, remembering which image it embedded last: the objects of one
    image (the modal baselines) pay for the image encoder once."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor
        self.image_digest: bytes | None = None

    def set_image(self, image: np.ndarray, precision: str = "float32") -> bool:
        """Embed ``image`` unless it is the one embedded last; True when the image encoder ran."""
        digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()
        digest += repr((image.shape, precision)).encode()
        if digest == self.image_digest:
            return False
        self.image_digest = None  # a failure inside set_image leaves no stale embedding
        with quiet_root_logger():
            self.predictor.set_image(image)
        self.image_digest = digest
        return True


@contextlib.contextmanager
def quiet_root_logger():
    """sam2 logs three INFO lines per image on the root logger, which Hydra's job logging prints."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        yield
    finally:
        logging.disable(previous)


class PointPromptExtractor(Extractor):
    """Â = the mask SAM / SAM 2 predicts for x̂₀ with ``points`` (positive labels) sampled from V.

    ``multimask_output``: ask for three candidate masks and keep one by ``select`` (``score``: the
    highest predicted IoU, as SAM's authors advise for ambiguous prompts; ``area``: the largest).
    ``dtype``: on a GPU, float16/bfloat16 run the model under autocast (``auto``: float16); the CPU always
    runs float32.
    """

    name = "sam"

    def __init__(
        self,
        model,
        points: PointSampler | None = None,
        multimask_output: bool = True,
        select: str = "score",
        device: str = "auto",
        dtype: str = "float32",
    ) -> None:
        if select not in SELECTIONS:
            raise ConfigError(f"extractor.select={select!r}: use one of {', '.join(SELECTIONS)}")
        self.device, self.dtype = auto_device(device), auto_dtype(dtype, device)
        torch_dtype(self.dtype, "extractor.dtype")  # refused now, not at the first object
        self.model = model
        self.points = points or RandomPoints(9)
        self.multimask_output, self.select = bool(multimask_output), select
        self.name = model.name
        self.image_embeddings = 0  # image-encoder passes (metrics.json): one per image for the modal baselines

    def check(self) -> None:
        """Raise ``ModelNotFoundError`` now if the weights are missing (building never loads them)."""
        self.model.check()

    def predictor(self) -> PromptedPredictor:
        """The model on its device, built on first use and shared by every extractor of this process."""

        def make():
            self.model.check()
            module = self.model.build().to(self.device)
            with warnings.catch_warnings():  # sam2's transforms still use the deprecated torch.jit.script
                warnings.simplefilter("ignore", FutureWarning)
                return PromptedPredictor(self.model.predictor(module))

        return cached_model(("prompted", self.model, self.model.stamp(), self.device), make)

    def autocast(self):
        return half_precision(self.device, torch_dtype(self.dtype))

    def prompt(self, inputs: ExtractionInput) -> np.ndarray:
        """The n×2 (x, y) point prompts of this object: seeded by the object's seed, inside V."""
        return self.points(inputs.visible, numpy_rng(inputs.seed, POINTS_STREAM))

    def __call__(self, inputs: ExtractionInput) -> np.ndarray:
        points = self.prompt(inputs)
        predictor = self.predictor()
        with torch.inference_mode(), self.autocast():
            self.image_embeddings += predictor.set_image(inputs.inpainted, self.dtype)
            masks, scores, _ = predictor.predictor.predict(
                point_coords=points,
                point_labels=np.ones(len(points), dtype=np.int64),
                multimask_output=self.multimask_output,
            )
        return select_mask(np.asarray(masks) > 0, np.asarray(scores, dtype=np.float32), self.select)
