"""COCO-style mask encodings (polygons, compressed and uncompressed RLE) → ``bool`` H×W masks.

Every annotation format here stores masks the way pycocotools reads them, so pycocotools decodes them
all; what this module adds is the checks (an RLE of another size than its image) and one-line errors.
"""

from __future__ import annotations

from numbers import Number
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from amodal.errors import SampleError


def decode(segmentation: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """The mask of a polygon list, a flat polygon, an RLE dict or a list of RLE dicts, at ``shape``
    (height, width). ``what`` names the mask in errors ("file.json: object 7: visible_mask")."""
    height, width = int(shape[0]), int(shape[1])
    if segmentation is None:
        raise SampleError(f"{what} is missing")
    if isinstance(segmentation, dict):
        return _decode_rle(segmentation, height, width, what)
    if isinstance(segmentation, (list, tuple)):
        if not segmentation:
            return np.zeros((height, width), bool)
        if all(isinstance(part, dict) for part in segmentation):  # several RLEs of one object
            masks = [_decode_rle(part, height, width, what) for part in segmentation]
            return np.logical_or.reduce(masks)
        if all(isinstance(v, Number) for v in segmentation):  # one flat polygon (COCOA)
            segmentation = [segmentation]
        return _decode_polygons(segmentation, height, width, what)
    raise SampleError(f"{what}: expected a polygon list or an RLE dict, got {type(segmentation).__name__}")


def _decode_polygons(polygons: list, height: int, width: int, what: str) -> np.ndarray:
    parts = []
    for polygon in polygons:
        if not isinstance(polygon, (list, tuple)) or not all(isinstance(v, Number) for v in polygon):
            raise SampleError(f"{what}: a polygon must be a flat list of x, y numbers")
        if len(polygon) % 2:
            raise SampleError(f"{what}: a polygon has an odd number of coordinates ({len(polygon)})")
        if len(polygon) >= 6:  # fewer than 3 points enclose no pixel (and pycocotools reads 4 as a box)
            parts.append([float(v) for v in polygon])
    if not parts:
        return np.zeros((height, width), bool)
    rles = coco_mask.frPyObjects(parts, height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(bool)


def _decode_rle(rle: dict, height: int, width: int, what: str) -> np.ndarray:
    if "counts" not in rle or "size" not in rle:
        raise SampleError(f"{what}: an RLE needs 'counts' and 'size', it has {sorted(rle)}")
    try:
        rle_height, rle_width = (int(v) for v in rle["size"])
    except (TypeError, ValueError) as err:
        raise SampleError(f"{what}: RLE 'size' must be [height, width], got {rle['size']!r}") from err
    if (rle_height, rle_width) != (height, width):
        raise SampleError(
            f"{what}: RLE is {rle_width}×{rle_height} (w×h) but its image is {width}×{height}; "
            "the annotation does not belong to this image file"
        )
    counts = rle["counts"]
    try:
        if isinstance(counts, list):  # uncompressed RLE
            encoded = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        else:
            encoded = {
                "size": [height, width],
                "counts": counts.encode() if isinstance(counts, str) else counts,
            }
        mask = coco_mask.decode(encoded)
    except (TypeError, ValueError, AttributeError) as err:
        raise SampleError(f"{what}: RLE 'counts' cannot be decoded ({err})") from err
    if mask.shape != (height, width):
        raise SampleError(f"{what}: RLE decodes to {mask.shape[1]}×{mask.shape[0]}, not {width}×{height}")
    return mask.astype(bool)


def encode(mask: np.ndarray) -> dict:
    """A ``bool`` mask as compressed RLE with string counts, as the annotation files store it."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
