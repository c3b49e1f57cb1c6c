"""The depth-filtered inpainting area D (§S2): the target's visible mask and the neighbouring objects
in front of it, i.e. the likely occluders, whose pixels may hide the target.

The paper: "we only include objects that are neighbors within 10 pixel-wise L2 distances from the
target object. Then, we filter out any objects farther than the target object using the estimated
depth map." Read here as:

* neighbour: another object of the image (``sample.others``, its visible mask O) with a pixel within
  ``radius`` of a pixel of V, by the Euclidean distance between pixel centres (touching = 1);
* in front: O's median nearness is strictly greater than V's, nearness being the depth model's output
  oriented so that larger = nearer (Depth Anything's relative disparity as it is); the median over each
  visible mask, so that a few pixels across a depth edge do not decide;
* D = V ∪ ⋃ those O — whole objects, as the paper includes "objects". With ``hull=true``, D is
  ConvHull(V) ∪ ⋃ O instead (eq. 10's M widened by the occluders), an option the paper does not state.

The depth map is computed once per image and reused by all its objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from amodal.errors import ConfigError
from amodal.lru import LRUCache
from amodal.method.area import InpaintingArea, convex_hull_area
from amodal.models.depth import DepthEstimator, DepthModel
from amodal.morphology import distance_to
from amodal.sample import Sample


def occluders(
    visible: np.ndarray, others: Sequence[np.ndarray], nearness: np.ndarray, radius: float
) -> list[int]:
    """Indices of the ``others`` within ``radius`` of V and nearer than V (medians of ``nearness``)."""
    if not visible.any():
        return []
    distance = distance_to(visible)
    target = float(np.median(nearness[visible]))
    chosen = []
    for index, other in enumerate(others):
        other = other & ~visible
        if other.any() and distance[other].min() <= radius and float(np.median(nearness[other])) > target:
            chosen.append(index)
    return chosen


def depth_filtered_area(visible: np.ndarray, others: Sequence[np.ndarray], nearness: np.ndarray,
                        radius: float = 10.0, hull: bool = False) -> np.ndarray:
    area = convex_hull_area(visible) if hull else visible.copy()
    for index in occluders(visible, others, nearness, radius):
        area |= others[index]
    return area


class DepthArea(InpaintingArea):
    """The paper's D. ``model``: a Depth Anything id or folder, or ``tiny``; ``estimator`` replaces the
    model by any function image → nearness (tests)."""

    name = "depth"

    def __init__(
        self,
        model: str = "LiheYoung/depth-anything-large-hf",
        radius: float = 10.0,
        hull: bool = False,
        device: str = "auto",
        dtype: str = "float32",
        estimator: Callable[[np.ndarray], np.ndarray] | None = None,
        cache: int = 4,
    ) -> None:
        if radius < 0:
            raise ConfigError(f"area.radius={radius}: use a distance in pixels ≥ 0")
        self.radius, self.hull = float(radius), bool(hull)
        self.estimator = estimator or DepthEstimator(DepthModel(str(model)), device=device, dtype=dtype)
        self._maps: LRUCache[np.ndarray] = LRUCache(size=cache)

    def check(self) -> None:
        if isinstance(self.estimator, DepthEstimator):  # a function given in has no model file to check
            self.estimator.check()

    def nearness(self, sample: Sample) -> np.ndarray:
        """The image's nearness map, once per image (objects come grouped by image)."""
        key = f"{sample.dataset}\0{sample.image_id}\0{sample.image.shape}"
        return self._maps.get(key, lambda: np.asarray(self.estimator(sample.image), dtype=np.float32))

    def __call__(self, sample: Sample) -> np.ndarray:
        if not sample.others:
            return convex_hull_area(sample.visible) if self.hull else sample.visible.copy()
        nearness = self.nearness(sample)
        return depth_filtered_area(sample.visible, sample.others, nearness, self.radius, self.hull)
