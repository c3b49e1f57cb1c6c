"""One object to segment, the unit every stage hands on, and what a method predicts for it.

Masks are ``bool`` H×W arrays at the image's original resolution and images are ``uint8`` H×W×3 RGB,
everywhere. Anything else is converted once, here, or refused with a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from amodal.errors import SampleError


class ObjectKey(NamedTuple):
    """Identifies one object of a dataset; stable across runs, shards and resumes."""

    image_id: str
    object_id: str


@dataclass
class Sample:
    """An image, the visible mask V of one of its objects and, when known, its amodal mask A."""

    dataset: str
    image_id: str
    object_id: str
    image: np.ndarray
    visible: np.ndarray
    amodal: np.ndarray | None = None
    category: str = ""
    others: tuple[np.ndarray, ...] = ()
    """Visible masks of the other objects of the same image (the depth-filtered area needs them)."""
    annotated_occlusion: float | None = None
    """The occlusion rate the annotation file states, if it states one (checked against the masks)."""
    image_file: str | None = None
    """The file the image was read from (None: generated, as synthetic scenes are); amodal-export lists it."""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.image_id, self.object_id)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return self.image.shape[0], self.image.shape[1]

    @property
    def occlusion_rate(self) -> float | None:
        """1 − |V|/|A| from the masks themselves (None without ground truth)."""
        if self.amodal is None:
            return None
        return occlusion_rate(self.visible, self.amodal)


@dataclass
class Prediction:
    """What a method (``method/predictor.py``) returns for one sample."""

    mask: np.ndarray
    """The predicted amodal mask Â: bool H×W at the image's original resolution."""
    pictures: dict[str, np.ndarray] = field(default_factory=dict)
    """Intermediate pictures for panels and W&B: the inpainting area (a bool mask at the original
    resolution), the condition image and the inpainted image (uint8 RGB at the model's view: the crop, or
    the whole image resized)."""
    view_box: tuple[int, int, int, int] | None = None
    """(x0, y0, x1, y1) of the image that the pictures at the model's view show (panels stretch them back)."""
    row: dict = field(default_factory=dict)
    """What the method adds to the object's row of results.jsonl (e.g. whether x̂₀ came from the cache),
    so that counts over a resumed or merged run come from its rows."""


def occlusion_rate(visible: np.ndarray, amodal: np.ndarray) -> float:
    """The fraction of the amodal mask that is hidden: 1 − |V ∩ A| / |A|, in [0, 1]."""
    area = int(amodal.sum())
    if area == 0:
        raise SampleError("the amodal mask is empty, so no occlusion rate exists")
    return 1.0 - float(np.logical_and(visible, amodal).sum()) / area


def as_image(array: np.ndarray, name: str) -> np.ndarray:
    """An RGB ``uint8`` H×W×3 image from greyscale, RGBA or float input in [0, 1]."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise SampleError(f"{name}: expected an H×W×3 RGB image, got an array of shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating) and array.size and array.max() <= 1.0:
        array = array * 255.0
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def mask_values(array: np.ndarray, name: str) -> np.ndarray:
    """A mask's values as H×W: the largest colour channel of an RGB or RGBA mask (alpha is not the mask)."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array.max(axis=2) if array.shape[2] != 4 else array[:, :, :3].max(axis=2)
    if array.ndim != 2:
        raise SampleError(f"{name}: expected an H×W mask, got an array of shape {array.shape}")
    return array


def as_mask(array: np.ndarray, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ``bool`` H×W mask, checked against the image's (height, width). A pixel is inside when its value
    is at least half the mask's largest value: 0/1, 0/255 and palette masks read as they are meant, and a
    soft edge (a gradient, JPEG artefacts) is cut at half its height."""
    array = mask_values(array, name)
    if shape is not None and array.shape != tuple(shape):
        raise SampleError(
            f"{name}: mask is {array.shape[1]}×{array.shape[0]} (w×h) but its image is "
            f"{shape[1]}×{shape[0]}; masks must have their image's size"
        )
    if array.dtype == bool:
        return array
    top = array.max(initial=0)
    return (array > 0) & (array >= top / 2)


def soft_pixels(values: np.ndarray) -> int:
    """How many pixels of a mask (``mask_values``) are neither 0 nor its maximum: none in a binary mask."""
    top = values.max(initial=0)
    return int(np.count_nonzero((values != 0) & (values != top)))
