"""The background x_bck of the condition image (§4.2, "Background pixels").

Because the leakage term of eq. 7 shows the condition image to the model at every step, the colour
around the object matters: black or white puts a sharp edge around the object's contour. The paper's
background matches the object's colours instead: a colour histogram of V's pixels in I, background
pixels sampled by histogram frequency, then a Gaussian blur.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal.errors import ConfigError


class Background:
    """Makes x_bck (uint8 h×w×3) from the image and the visible mask at the model's view."""

    name = "background"

    def __call__(self, image: np.ndarray, visible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def colour_histogram(image: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct RGB colours of the visible pixels and how often each occurs."""
    colours, counts = np.unique(image[visible].reshape(-1, 3), axis=0, return_counts=True)
    return colours, counts


def sample_from_histogram(
    colours: np.ndarray, counts: np.ndarray, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """An h×w×3 image of colours drawn independently with probability count / Σ counts."""
    index = rng.choice(len(colours), size=shape, p=counts / counts.sum())
    return colours[index].astype(np.uint8)


class HistogramBackground(Background):
    """The paper's background: colours drawn from V's colour histogram, then a Gaussian blur.

    ``kernel`` is the blur's kernel size in view pixels (odd; 0 = no blur) and ``sigma`` its standard
    deviation (0 = derived from the kernel size, OpenCV's rule).
    """

    name = "histogram"

    def __init__(self, kernel: int = 21, sigma: float = 0.0) -> None:
        if kernel < 0 or (kernel and kernel % 2 == 0):
            raise ConfigError(f"background.kernel={kernel}: use an odd kernel size, or 0 for no blur")
        self.kernel, self.sigma = kernel, sigma

    def __call__(self, image: np.ndarray, visible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        colours, counts = colour_histogram(image, visible)
        background = sample_from_histogram(colours, counts, visible.shape, rng)
        if self.kernel:
            background = cv2.GaussianBlur(background, (self.kernel, self.kernel), self.sigma,
                                          borderType=cv2.BORDER_REFLECT)
        return background


class FlatBackground(Background):
    """A constant colour: ``white`` and ``black`` (the usual inpainting fill, Table 9's baseline)."""

    def __init__(self, colour: tuple[int, int, int] | list[int] = (255, 255, 255), name: str = "flat") -> None:
        if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
            raise ConfigError(f"background.colour={list(colour)}: use three values in 0..255")
        self.colour = np.asarray(colour, dtype=np.uint8)
        self.name = name

    def __call__(self, image: np.ndarray, visible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.broadcast_to(self.colour, (*visible.shape, 3)).copy()
