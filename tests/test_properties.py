"""Properties that hold for every input, checked on inputs hypothesis draws (and shrinks when one fails).

The areas contain what they promise (V ⊆ hull(V) ⊆ rect(V)), IoU is a symmetric score in [0, 1], a
polygon decodes to the mask its RLE decodes to, and no polygon, however broken (NaN, inf, 1e12, too few
points), crashes a loader: it decodes or is one ``SampleError``. Examples are few and derandomized, so a
2-core CI runs them in seconds and every run tests the same ones.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco_mask

from amodal.data.cocoa import CocoaDataset
from amodal.data.masks import decode, encode
from amodal.errors import SampleError
from amodal.eval.metrics import iou
from amodal.method.area import bounding_box_area, convex_hull_area
from amodal.sample import ObjectKey
from tests.formats import H, W, write_cocoa

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)
LOADER = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])

shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))
masks = shapes.flatmap(lambda shape: arrays(np.bool_, shape))
mask_pairs = shapes.flatmap(lambda shape: st.tuples(arrays(np.bool_, shape), arrays(np.bool_, shape)))


@PROPERTY
@given(masks)
def test_the_hull_holds_v_and_the_rectangle_holds_the_hull(visible):
    hull, rect = convex_hull_area(visible), bounding_box_area(visible)
    assert hull.dtype == bool and hull.shape == visible.shape
    assert not (visible & ~hull).any()
    assert not (hull & ~rect).any()


@PROPERTY
@given(mask_pairs)
def test_iou_is_symmetric_and_between_0_and_1(pair):
    a, b = pair
    assert iou(a, b) == iou(b, a)
    assert 0.0 <= iou(a, b) <= 1.0
    assert iou(a, a) == 1.0


def polygon_near_the_frame(height: int, width: int):
    """Flat polygons of 3 to 8 points, mostly inside the frame, at most one image size outside it."""
    x = st.one_of(st.floats(0, width), st.floats(-width, 2 * width))
    y = st.one_of(st.floats(0, height), st.floats(-height, 2 * height))
    return st.lists(st.tuples(x, y), min_size=3, max_size=8).map(lambda points: [v for p in points for v in p])


sized_polygons = st.tuples(st.integers(2, 40), st.integers(2, 40)).flatmap(
    lambda shape: st.tuples(st.just(shape), polygon_near_the_frame(*shape)))


@PROPERTY
@given(sized_polygons)
def test_a_polygon_and_its_rle_decode_to_the_same_mask(case):
    shape, polygon = case
    reference = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([polygon], *shape))).astype(bool)
    try:
        mask = decode(polygon, shape, "polygon")
    except SampleError as err:  # refused only when the polygon truly covers nothing
        assert "encloses no pixel" in str(err) and not reference.any()
        return
    assert np.array_equal(mask, reference)
    compressed = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))  # counts as bytes
    for rle in (compressed, encode(mask), uncompressed_rle(mask)):
        assert np.array_equal(decode(rle, shape, "rle"), mask)


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths down the columns, the first one of 0s (maybe empty)."""
    flat = mask.flatten(order="F")
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], starts, [flat.size]])).tolist()
    return {"size": list(mask.shape), "counts": [0, *runs] if flat[0] else runs}


broken_coordinate = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e12, -1e12, 1e308, 10**400]),
    st.integers(-2 * W, 3 * W),
)


@st.composite
def spoiled_polygons(draw):
    """A good polygon of a W×H image with one coordinate made broken (NaN, inf, huge, far), or cut short."""
    polygon = draw(polygon_near_the_frame(H, W))
    index = draw(st.integers(0, len(polygon) - 1))
    if draw(st.booleans()):
        return polygon[:index]
    polygon[index] = draw(broken_coordinate)
    return polygon


any_polygon = st.one_of(polygon_near_the_frame(H, W), spoiled_polygons(), st.lists(broken_coordinate, max_size=10))
broken_segmentation = st.one_of(any_polygon, st.lists(any_polygon, max_size=3))


@PROPERTY
@given(broken_segmentation)
def test_any_polygon_decodes_to_a_mask_or_is_one_sample_error(segmentation):
    try:
        mask = decode(segmentation, (H, W), "f.json: image 1 object 2: segmentation")
    except SampleError as err:
        assert str(err).startswith("f.json: image 1 object 2: segmentation") and "\n" not in str(err)
        return
    assert mask.dtype == bool and mask.shape == (H, W)


@pytest.fixture(scope="module")
def cocoa_root(tmp_path_factory):
    return write_cocoa(tmp_path_factory.mktemp("cocoa"))


@LOADER
@given(segmentation=broken_segmentation)
def test_any_polygon_in_a_cocoa_file_loads_or_skips_only_its_object(cocoa_root, segmentation):
    path = cocoa_root / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    data["annotations"][1]["regions"][1]["segmentation"] = segmentation  # image 2's person, unoccluded
    path.write_text(json.dumps(data))
    dataset = CocoaDataset(root=str(cocoa_root))
    try:
        sample = dataset.load(ObjectKey("2", "20_1"))
        assert sample.amodal.shape == (H, W) and sample.amodal.dtype == bool  # empty ([]): the runner skips it
    except SampleError as err:
        assert "image 2 object 20_1: segmentation" in str(err)
    assert dataset.load(ObjectKey("2", "20_0")).visible.any()  # its neighbour loads either way
