"""What the model sees: the whole image or an object-centred crop, resized to the model's resolution.

A ``View`` maps images and masks from the original image to the model's input and maps the model's
mask back, exactly: a mask that goes to the view and back lands where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amodal.errors import ConfigError


@dataclass(frozen=True)
class View:
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1) of the original image shown to the model, x1/y1 exclusive."""
    size: tuple[int, int]
    """(width, height) of the model's input."""
    image_shape: tuple[int, int]
    """(height, width) of the original image."""

    @property
    def crop_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0

    def image(self, image: np.ndarray) -> np.ndarray:
        """The original image (uint8 H×W×C) at the view."""
        x0, y0, x1, y1 = self.box
        crop = image[y0:y1, x0:x1]
        if self.crop_size == self.size:
            return np.ascontiguousarray(crop)
        shrink = self.size[0] < self.crop_size[0]
        return cv2.resize(crop, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """A bool mask of the original image at the view (nearest neighbour: no pixel is invented)."""
        x0, y0, x1, y1 = self.box
        crop = mask[y0:y1, x0:x1]
        if self.crop_size == self.size:
            return crop.copy()
        return cv2.resize(crop.astype(np.uint8), self.size, interpolation=cv2.INTER_NEAREST).astype(bool)

    def back(self, mask: np.ndarray) -> np.ndarray:
        """A bool mask at the view, mapped back onto the original image (zero outside the box)."""
        if mask.shape != (self.size[1], self.size[0]):
            raise ValueError(f"mask is {mask.shape[::-1]} but the view is {self.size}")
        x0, y0, x1, y1 = self.box
        if self.crop_size == self.size:
            crop = mask
        else:
            crop = cv2.resize(mask.astype(np.float32), self.crop_size, interpolation=cv2.INTER_LINEAR) >= 0.5
        full = np.zeros(self.image_shape, dtype=bool)
        full[y0:y1, x0:x1] = crop
        return full


@dataclass(frozen=True)
class ViewSpec:
    """How to choose the view: ``mode=image`` shows the whole image, ``mode=crop`` a square box around
    the inpainting area enlarged by ``context`` (clamped into the image); both resized to ``size``."""

    mode: str = "image"
    context: float = 2.0
    size: int | tuple[int, int] | list[int] = 512
    multiple: int = 8
    """The model's input side must be a multiple of this (the VAE's downsampling, ×2 for Flux)."""

    def __post_init__(self) -> None:
        if self.mode not in ("image", "crop"):
            raise ConfigError(f"view.mode={self.mode!r}: use 'image' (whole image) or 'crop' (object-centred)")
        if self.context < 1.0:
            raise ConfigError(f"view.context={self.context}: the crop must hold the whole area, use ≥ 1")

    @property
    def model_size(self) -> tuple[int, int]:
        width, height = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
        if width % self.multiple or height % self.multiple:
            raise ConfigError(f"view size {width}×{height} must be a multiple of {self.multiple}")
        return int(width), int(height)

    def make(self, area: np.ndarray) -> View:
        height, width = area.shape
        if self.mode == "image" or not area.any():
            return View((0, 0, width, height), self.model_size, (height, width))
        rows = np.flatnonzero(area.any(axis=1))
        cols = np.flatnonzero(area.any(axis=0))
        cy, cx = (rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2
        side = max(rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]) * self.context
        box_w, box_h = min(width, int(np.ceil(side))), min(height, int(np.ceil(side)))
        x0 = int(np.clip(round(cx - box_w / 2), 0, width - box_w))
        y0 = int(np.clip(round(cy - box_h / 2), 0, height - box_h))
        return View((x0, y0, x0 + box_w, y0 + box_h), self.model_size, (height, width))
