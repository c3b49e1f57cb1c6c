"""``extractor=region``: a CLASSICAL STAND-IN for SAM that needs no weights (SAM with random weights
segments nothing). It is what makes the synthetic backbone's completions measurable on a CPU; on real
images use ``extractor=sam`` / ``sam2``.

Like SAM it gets point prompts in V (``points``: the very points the SAM extractors draw, §5.1) and
segments the object they fall on in the inpainted image x̂₀, by region growing in CIELAB colour space:
1. colour samples of the object: x̂₀ on V's inside (V eroded past the blur); of the background:
   x̂₀ outside M grown by ``ring`` pixels;
2. a pixel is object-like when its colour is nearer the object's samples than the background's
   (nearest-sample distances, ``margin`` times);
3. the region is the object-like pixels connected to the prompt points, within ``reach`` pixels of M
   (the paper's soft inpainting may draw a little beyond M), with its small holes filled (specks of
   texture taken for background; a ring's hole is large and stays open), and V added.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal.errors import ConfigError
from amodal.method.extract import ExtractionInput, Extractor
from amodal.method.points import PointSampler, RandomPoints
from amodal.morphology import components_touching, dilate, erode, fill_holes
from amodal.seeding import POINTS_STREAM, numpy_rng


def lab(image: np.ndarray, blur: int) -> np.ndarray:
    """uint8 RGB → float32 CIELAB (L in 0–100), after a Gaussian blur of ``blur`` pixels (0 = none)."""
    if blur > 1:
        image = cv2.GaussianBlur(image, (blur | 1, blur | 1), 0)
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def nearest_distance(colours: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """For each colour (N×3), the distance to the nearest sample (K×3)."""
    squared = ((colours[:, None, :] - samples[None, :, :]) ** 2).sum(axis=2)
    return np.sqrt(squared.min(axis=1))


class RegionExtractor(Extractor):
    name = "region"

    keeps_visible = True

    def __init__(self, points: PointSampler | None = None, blur: int = 0, margin: float = 1.0, ring: int = 2,
                 reach: int = 0, samples: int = 256, holes: float = 0.02) -> None:
        if margin <= 0 or reach < 0 or ring < 0 or samples < 1 or not 0 <= holes <= 1:
            raise ConfigError("extractor: need margin > 0, reach ≥ 0, ring ≥ 0, samples ≥ 1 and 0 ≤ holes ≤ 1")
        self.points, self.blur, self.margin = points or RandomPoints(9), int(blur), float(margin)
        self.ring, self.reach, self.samples, self.holes = int(ring), int(reach), int(samples), float(holes)

    def __call__(self, inputs: ExtractionInput) -> np.ndarray:
        visible, area = inputs.visible, inputs.area
        rng = numpy_rng(inputs.seed, POINTS_STREAM)  # drawn first: the very prompts SAM would get
        columns, rows = np.floor(self.points(visible, rng)).astype(int).T if visible.any() else ([], [])
        colours = lab(inputs.inpainted, self.blur)
        background = ~dilate(area, self.ring)
        if not visible.any() or not background.any():
            return visible.copy()
        core = erode(visible, self.blur // 2 + 1)  # V's inside: its rim is blurred into the background
        obj = self._subsample(colours[core if core.any() else visible], rng)
        bck = self._subsample(colours[background], rng)
        flat = colours.reshape(-1, 3)
        nearer = self.margin * nearest_distance(flat, obj) < nearest_distance(flat, bck)
        likely = nearer.reshape(visible.shape)
        seeds = np.zeros_like(visible)
        seeds[rows, columns] = True  # (x, y) pixel centres → their pixels
        allowed = dilate(area, self.reach)
        region = components_touching((likely & allowed) | visible, seeds)
        return fill_holes(region, self.holes) | visible

    def _subsample(self, colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(colours) <= self.samples:
            return colours
        return colours[rng.choice(len(colours), size=self.samples, replace=False)]
