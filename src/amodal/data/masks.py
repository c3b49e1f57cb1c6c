"""COCO-style mask encodings (polygons, compressed and uncompressed RLE) → ``bool`` H×W masks.

Every annotation format here stores masks the way pycocotools reads them, so pycocotools decodes them
all; what this module adds is the checks (an RLE of another size than its image, a polygon with a
non-finite or far-away coordinate) and one-line errors.

pycocotools is never handed a polygon it cannot rasterise: it walks every edge pixel by pixel, so a
NaN, an infinity or a coordinate of 1e12 makes it allocate without bound (or crash). A polygon must
have finite coordinates at most one image size outside the frame (x in [−W, 2W], y in [−H, 2H]):
amodal polygons do run past the border (the hidden part of a truncated object), but by less than the
image itself. Within that bound, many points (or long zigzags) still make pycocotools' work and memory
grow with the total edge length (20,000 points can take 1.7 GB for a 640×480 image): an object's polygons
are rasterised only when that work, Σ (5·max(|Δx|, |Δy|) + 1) over every edge in pycocotools' 5× upsampled
pixels, is at most ``POLYGON_WORK_PER_PIXEL`` per pixel of the image (or ``POLYGON_WORK_FLOOR``, for small
images), so that its memory (16 bytes per unit) stays within a small multiple of the image's; a polygon over
it is skipped with the reason.

pycocotools reads past an RLE's runs when they cover fewer pixels than the image and writes past its mask
when they cover more, so both kinds of RLE (run lists and compressed strings) must add up to height × width.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from amodal.errors import SampleError

POLYGON_WORK_PER_PIXEL = 2
"""At most 2 units per pixel: pycocotools' peak memory below 32 bytes per pixel (10 MB for 640×480)."""
POLYGON_WORK_FLOOR = 1 << 20
"""Any image allows this much work (16 MB), so a detailed outline in a small image is not refused."""


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
        if all(map(_is_number, segmentation)):  # one flat polygon (COCOA)
            segmentation = [segmentation]
        return _decode_polygons(segmentation, height, width, what)
    raise SampleError(f"{what}: expected a polygon list or an RLE dict, got {type(segmentation).__name__}")


def _decode_polygons(polygons: list, height: int, width: int, what: str) -> np.ndarray:
    parts = [_checked_polygon(polygon, height, width, what) for polygon in polygons]
    parts = [p for p in parts if len(p) >= 6]  # fewer than 3 points enclose no pixel (pycocotools reads 4 as a box)
    if not parts:
        points = max(len(p) for p in polygons) // 2
        raise SampleError(f"{what}: the polygon has {points} point{'s' * (points != 1)}, fewer than the 3 "
                          "that enclose a pixel")
    work = sum(_polygon_work(p) for p in parts)
    limit = max(POLYGON_WORK_PER_PIXEL * height * width, POLYGON_WORK_FLOOR)
    if work > limit:
        points = sum(len(p) for p in parts) // 2
        raise SampleError(
            f"{what}: the polygon is too long to rasterise in bounded memory: its {points} points' edges take "
            f"work {work:,}, over the limit of {limit:,} for a {width}×{height} (w×h) image "
            f"({POLYGON_WORK_PER_PIXEL} per pixel, data/masks.py); simplify the polygon"
        )
    rles = coco_mask.frPyObjects(parts, height, width)
    mask = coco_mask.decode(coco_mask.merge(rles)).astype(bool)
    if not mask.any():
        raise SampleError(f"{what}: the polygon encloses no pixel of the {width}×{height} (w×h) image "
                          "(its points are on one line, or it lies outside the frame)")
    return mask


def _polygon_work(polygon: list[float]) -> int:
    """pycocotools' work for one polygon: the points it walks along its closed boundary, upsampled 5×
    and rounded as it rounds them (``rleFrPoly``)."""
    scaled = np.trunc(5 * np.asarray(polygon, np.float64).reshape(-1, 2) + 0.5)  # C's (int) cast
    steps = np.abs(scaled - np.roll(scaled, -1, axis=0)).max(axis=1)
    return int(steps.sum()) + len(steps)


def _is_number(value: Any) -> bool:
    return type(value) in (float, int) or isinstance(value, Real)  # the plain types first: Real is slow


def _checked_polygon(polygon: Any, height: int, width: int, what: str) -> list[float]:
    """One flat polygon as floats, refused unless its coordinates are finite and near the frame."""
    if not isinstance(polygon, (list, tuple)) or not all(map(_is_number, polygon)):
        raise SampleError(f"{what}: a polygon must be a flat list of x, y numbers")
    if len(polygon) % 2:
        raise SampleError(f"{what}: a polygon has an odd number of coordinates ({len(polygon)})")
    try:
        coords = np.asarray(polygon, dtype=np.float64)
    except OverflowError:  # an integer beyond a double
        coords = np.array([v if isinstance(v, float) or abs(v) < 2**1023 else math.inf * (v > 0 or -1)
                           for v in polygon], np.float64)
    sizes = np.tile([width, height], len(polygon) // 2)
    finite = np.isfinite(coords)
    near = finite & (coords >= -sizes) & (coords <= 2 * sizes)
    if not near.all():
        index = int(np.flatnonzero(~near)[0])
        axis, value = "xy"[index % 2], coords[index]
        if not finite[index]:
            raise SampleError(f"{what}: polygon point {index // 2} has {axis}={value}, not a finite number")
        raise SampleError(
            f"{what}: polygon point {index // 2} has {axis}={value:g}, more than one image size outside the "
            f"{width}×{height} (w×h) image; are the coordinates in pixels of this image?"
        )
    return coords.tolist()


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
    if isinstance(counts, list):  # pycocotools reads past the runs it is given when they fall short
        if not all(isinstance(c, Integral) and c >= 0 for c in counts) or sum(counts) != height * width:
            raise SampleError(f"{what}: an uncompressed RLE's 'counts' must be whole run lengths ≥ 0 that add "
                              f"up to height × width = {height * width}")
    elif isinstance(counts, (str, bytes)):
        runs = compressed_runs(counts.encode("utf-8", "surrogatepass") if isinstance(counts, str) else counts)
        if runs is None or min(runs, default=0) < 0 or sum(runs) != height * width:
            covered = "" if runs is None else f", its runs add up to {sum(runs)}"
            raise SampleError(f"{what}: a compressed RLE's 'counts' must decode to run lengths ≥ 0 that add up "
                              f"to height × width = {height * width}{covered}")
    try:
        if isinstance(counts, list):  # uncompressed RLE
            encoded = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        else:
            encoded = {
                "size": [height, width],
                "counts": counts.encode() if isinstance(counts, str) else counts,
            }
        mask = coco_mask.decode(encoded)
    except (TypeError, ValueError, AttributeError, OverflowError) as err:
        raise SampleError(f"{what}: RLE 'counts' cannot be decoded ({err})") from err
    if mask.shape != (height, width):
        raise SampleError(f"{what}: RLE decodes to {mask.shape[1]}×{mask.shape[0]}, not {width}×{height}")
    return mask.astype(bool)


def compressed_runs(counts: bytes) -> list[int] | None:
    """The run lengths of a compressed RLE string (COCO's format: each run in 5-bit groups, the character
    48 + group, 0x20 set while more groups follow, 0x10 of the last the sign; from the fourth run on, the
    difference to the run two before); None when the string is not one (a character outside 48..111, or
    a run cut off)."""
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position == len(counts):
                return None
            group = counts[position] - 48
            if not 0 <= group < 64:
                return None
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position, shift = position + 1, shift + 5
            if not more and group & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def encode(mask: np.ndarray) -> dict:
    """A ``bool`` mask as compressed RLE with string counts, as the annotation files store it."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
