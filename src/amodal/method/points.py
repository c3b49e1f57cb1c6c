"""Point prompts for the segmenter: ``n`` positive points inside the visible mask V (§5.1: "the mask is
extracted by uniformly sampling nine points from V using SAM").

A sampler maps a ``bool`` h×w mask and a ``numpy.random.Generator`` to an n×2 ``float32`` array of
(x, y) pixel coordinates in SAM's convention: pixel (row r, column c) covers [c, c+1) × [r, r+1), so
its centre is (c + ½, r + ½). Every point is the centre of a pixel of V. ``conf/points/`` picks one.
"""

from __future__ import annotations

import cv2
import numpy as np

from amodal.errors import ConfigError, SampleError


class PointSampler:
    name = "points"

    def __init__(self, n: int = 9) -> None:
        if n < 1:
            raise ConfigError(f"points.n={n}: the segmenter needs at least one point")
        self.n = int(n)

    def __call__(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not mask.any():
            raise SampleError("the visible mask is empty at the model's view, so no point prompt exists")
        return self.sample(mask, rng).astype(np.float32)

    def sample(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def pixel_centres(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.stack([cols + 0.5, rows + 0.5], axis=1)


class RandomPoints(PointSampler):
    """``n`` distinct pixels of V drawn uniformly (all of V when it has fewer than ``n`` pixels)."""

    name = "random"

    def sample(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows, cols = np.nonzero(mask)
        pick = rng.choice(rows.size, size=min(self.n, rows.size), replace=False)
        return pixel_centres(rows[pick], cols[pick])


class GridPoints(PointSampler):
    """Evenly spread points: a square lattice over V's bounding box, its spacing shrunk until at least
    ``n`` lattice points fall inside V; every part of V (8-connected component) gets one point first,
    largest parts first (the lattice point nearest the part's most interior pixel, or that pixel when
    the lattice misses the part), then farthest-point sampling over the lattice fills up to ``n``.
    Deterministic: the generator is not used."""

    name = "grid"

    def sample(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows, cols = self._lattice(mask)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        interior = most_interior_pixels(mask, labels, count)
        lattice_label = labels[rows, cols]
        seeds_rc = []
        for part in sorted(range(1, count), key=lambda k: -stats[k, cv2.CC_STAT_AREA]):
            on_part = np.flatnonzero(lattice_label == part)
            if on_part.size:
                d = (rows[on_part] - interior[part][0]) ** 2 + (cols[on_part] - interior[part][1]) ** 2
                seeds_rc.append((rows[on_part[np.argmin(d)]], cols[on_part[np.argmin(d)]]))
            else:
                seeds_rc.append(interior[part])
        seeds = pixel_centres(*np.array(seeds_rc).T)[: self.n]
        candidates = np.unique(np.concatenate([seeds, pixel_centres(rows, cols)]), axis=0)
        chosen = [int(np.flatnonzero((candidates == seed).all(axis=1))[0]) for seed in seeds]
        distance = np.min([((candidates - candidates[i]) ** 2).sum(axis=1) for i in chosen], axis=0)
        while len(chosen) < min(self.n, len(candidates)):
            chosen.append(int(np.argmax(distance)))
            distance = np.minimum(distance, ((candidates - candidates[chosen[-1]]) ** 2).sum(axis=1))
        return candidates[chosen]

    def _lattice(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = np.nonzero(mask)
        y0, x0 = ys.min(), xs.min()
        spacing = max(1.0, np.sqrt(ys.size / self.n))
        while True:
            # lattice offset by half a spacing, so a convex V is covered symmetrically
            grid_y = np.arange(y0 + spacing / 2, ys.max() + 1, spacing).astype(int)
            grid_x = np.arange(x0 + spacing / 2, xs.max() + 1, spacing).astype(int)
            gy, gx = np.meshgrid(grid_y, grid_x, indexing="ij")
            inside = mask[gy, gx]
            if inside.sum() >= self.n or spacing == 1.0:
                return gy[inside], gx[inside]
            spacing = max(1.0, spacing * 0.8)


def most_interior_pixels(mask: np.ndarray, labels: np.ndarray, count: int) -> dict[int, tuple[int, int]]:
    """For each component label 1..count-1, its (row, column) farthest from V's outside."""
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1].ravel()
    flat = labels.ravel()
    order = np.lexsort((-depth, flat))  # by label, deepest first
    first = np.searchsorted(flat[order], np.arange(1, count))
    return {k: divmod(int(order[i]), mask.shape[1]) for k, i in zip(range(1, count), first, strict=True)}
