"""Random inpainting masks for training the synthetic backbone, one function per kind.

SD-inpainting models are trained on random masks; these kinds are chosen for what the method asks
of the model (§4.3): the convex hull of a partly hidden object's visible pixels (what eq. 10 gives at
inference), that hull together with the hidden part, the object's own outline, another object's
outline laid over it (an occluder), plus the usual boxes and strokes, and the empty mask ∅ that
eq. 11's unconditional term uses. All are pure functions of their inputs and a ``numpy`` generator;
masks are ``bool`` h×w.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal.method.area import convex_hull_area
from amodal.morphology import dilate, shifted

KINDS = ("hull_hidden", "hull", "object", "occluder", "box", "stroke", "empty")


def hull_with_hidden(visible: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """hull(V) ∪ (A \\ V): the method's area with every hidden pixel in it, so the masked image shows
    nothing of the hidden part and the model learns to draw all of it."""
    return convex_hull_area(visible) | (amodal & ~visible)


def object_mask(amodal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The whole object, dilated by 0–3 pixels: a mask shaped like an object asks for a whole object."""
    return dilate(amodal, int(rng.integers(0, 4)))


def place_occluder(amodal: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``shape`` (another object's outline) moved so that its centre lands near a random pixel of the
    object, pushed outwards by up to its own radius: it covers part of the object, rarely all of it."""
    ys, xs = np.nonzero(amodal)
    sy, sx = np.nonzero(shape)
    if len(ys) == 0 or len(sy) == 0:
        return np.zeros_like(amodal)
    k = int(rng.integers(len(ys)))
    radius = np.sqrt(len(sy) / np.pi)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    target = np.array([ys[k], xs[k]]) + direction * radius * rng.uniform(0.2, 1.0)
    dy, dx = np.round(target - [sy.mean(), sx.mean()]).astype(int)
    return shifted(shape, int(dy), int(dx))


def boxes(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One to three axis-aligned boxes of 15–60 % of the side."""
    h, w = shape
    mask = np.zeros(shape, bool)
    for _ in range(int(rng.integers(1, 4))):
        bh, bw = (rng.uniform(0.15, 0.6, 2) * [h, w]).astype(int)
        y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mask[y0 : y0 + bh, x0 : x0 + bw] = True
    return mask


def strokes(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One to four free-form strokes: random walks drawn with a thick round brush (LaMa-style)."""
    h, w = shape
    canvas = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        point = rng.uniform(0, 1, 2) * [w, h]
        width = int(rng.integers(max(2, w // 16), max(3, w // 5)))
        for _ in range(int(rng.integers(2, 6))):
            step = rng.normal(size=2)
            step = step / (np.linalg.norm(step) + 1e-9) * rng.uniform(0.1, 0.4) * w
            end = np.clip(point + step, 0, [w - 1, h - 1])
            cv2.line(canvas, tuple(int(v) for v in point), tuple(int(v) for v in end), 1, width)
            point = end
    return canvas.astype(bool)


def draw_mask(kind: str, visible: np.ndarray, amodal: np.ndarray, other: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """A training mask of ``kind`` for an object with visible part V and amodal mask A; ``other`` is
    another object's amodal mask, the outline an occluder takes."""
    if kind == "hull_hidden":
        return hull_with_hidden(visible, amodal)
    if kind == "hull":
        return convex_hull_area(visible)
    if kind == "object":
        return object_mask(amodal, rng)
    if kind == "occluder":
        return place_occluder(amodal, other, rng)
    if kind == "box":
        return boxes(visible.shape, rng)
    if kind == "stroke":
        return strokes(visible.shape, rng)
    if kind == "empty":
        return np.zeros_like(visible)
    raise ValueError(f"unknown mask kind {kind!r}; use one of {', '.join(KINDS)}")
