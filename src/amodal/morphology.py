"""Pure operations on ``bool`` H×W masks: grow, shrink, fill holes, keep components, measure distances.

One home for them at the bottom of the package, so that every layer uses the same ones: the method's
areas and extractors (``method/``), the training masks (``train/``) and anything else that needs them.
Each returns a new mask and never changes its input.
"""

from __future__ import annotations

import cv2
import numpy as np


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` grown by a disc of radius ``pixels``."""
    if pixels <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` shrunk by a disc of radius ``pixels``: what stays is farther than that from its outside."""
    return ~dilate(~mask, pixels)


def fill_holes(mask: np.ndarray, largest: float = 1.0) -> np.ndarray:
    """The mask with the regions it encloses (not reachable from the border) filled, each hole only
    when its area is at most ``largest`` × the mask's area (1.0 = every hole, 0 = none)."""
    count, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes = np.bincount(labels.ravel(), minlength=count)
    small = sizes <= largest * mask.sum()
    small[border] = False
    small[0] = False  # label 0 is the mask itself
    return mask | small[labels]


def components_touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected components of ``mask`` (8-connected) that contain a pixel of ``seeds``."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[seeds & mask])
    keep = keep[keep > 0]
    return np.isin(labels, keep)


def distance_to(mask: np.ndarray) -> np.ndarray:
    """Each pixel's Euclidean distance to the nearest pixel of ``mask`` (0 on it)."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by (dy, dx) pixels; what leaves the frame is lost."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, xs = slice(max(dy, 0), min(h + dy, h)), slice(max(dx, 0), min(w + dx, w))
    yt, xt = slice(max(-dy, 0), min(h - dy, h)), slice(max(-dx, 0), min(w - dx, w))
    out[ys, xs] = mask[yt, xt]
    return out
