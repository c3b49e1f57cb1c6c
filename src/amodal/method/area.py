"""The inpainting area M (§4.3): where the inpainting model is asked to draw.

Pure functions on ``bool`` H×W masks, and the small classes that ``conf/area/`` builds from them.
Every area contains the visible mask V, so the object's known pixels are never outside M.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal.method.component import Component
from amodal.sample import Sample


def convex_hull_area(visible: np.ndarray) -> np.ndarray:
    """Eq. 10: M = 1 inside ConvHull(∪ᵢ Cᵢ), the convex hull of the union of V's contours."""
    if not visible.any():
        return np.zeros_like(visible, dtype=bool)
    contours, _ = cv2.findContours(visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points = np.concatenate([c.reshape(-1, 2) for c in contours], axis=0)
    hull = cv2.convexHull(points).reshape(-1, 2)
    return fill_convex_polygon(hull, visible.shape) | visible


def fill_convex_polygon(vertices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres lie in the closed convex polygon (x, y vertices in order).

    Exact, unlike a rasteriser that also sets every pixel the outline touches: row by row, the polygon
    covers one interval [lo, hi] of x, found from where its edges cross the row.
    """
    vertices = vertices.astype(np.float64)
    x0, y0 = vertices[:, 0], vertices[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rows = np.arange(int(y0.min()), int(np.ceil(y0.max())) + 1)
    slanted = y1 != y0
    t = (rows[None, :] - y0[slanted, None]) / (y1 - y0)[slanted, None]
    crossing = (t >= 0) & (t <= 1)
    x = x0[slanted, None] + t * (x1 - x0)[slanted, None]
    lo = np.where(crossing, x, np.inf).min(axis=0, initial=np.inf)
    hi = np.where(crossing, x, -np.inf).max(axis=0, initial=-np.inf)
    for vx, vy in vertices:  # vertices themselves (a polygon may be a point or a horizontal line)
        r = int(vy) - rows[0]
        lo[r], hi[r] = min(lo[r], vx), max(hi[r], vx)
    mask = np.zeros(shape, dtype=bool)
    for row, start, stop in zip(rows, np.ceil(lo - 1e-9), np.floor(hi + 1e-9)):
        if start <= stop:
            mask[row, int(start) : int(stop) + 1] = True
    return mask


def bounding_box_area(visible: np.ndarray) -> np.ndarray:
    """The paper's R (§S2): the smallest axis-aligned box that contains V."""
    area = np.zeros_like(visible, dtype=bool)
    if not visible.any():
        return area
    rows = np.flatnonzero(visible.any(axis=1))
    cols = np.flatnonzero(visible.any(axis=0))
    area[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = True
    return area


class InpaintingArea(Component):
    """Builds M for one sample. Subclasses say how; ``conf/area/<name>.yaml`` picks one."""

    name = "area"

    def __call__(self, sample: Sample) -> np.ndarray:
        raise NotImplementedError


class HullArea(InpaintingArea):
    """The paper's M (eq. 10)."""

    name = "hull"

    def __call__(self, sample: Sample) -> np.ndarray:
        return convex_hull_area(sample.visible)


class RectArea(InpaintingArea):
    """The paper's R: the bounding box of V."""

    name = "rect"

    def __call__(self, sample: Sample) -> np.ndarray:
        return bounding_box_area(sample.visible)


class VisibleArea(InpaintingArea):
    """M = V: inpaint nothing beyond what is seen (a lower bound for the area's effect)."""

    name = "visible"

    def __call__(self, sample: Sample) -> np.ndarray:
        return sample.visible.copy()
