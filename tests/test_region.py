"""The region extractor (a classical stand-in for SAM): it segments the object the prompt points fall on
in the inpainted image, and nothing the inpainting did not draw."""

import cv2
import numpy as np
import pytest

from amodal.errors import ConfigError
from amodal.method.area import convex_hull_area
from amodal.method.extract import ExtractionInput
from amodal.method.points import PointSampler
from amodal.method.region import RegionExtractor
from amodal.morphology import fill_holes

SIZE = 64


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.fixture
def scene():
    """A striped disc on a smooth background of its own mean colour (what the histogram background looks
    like), with its right third hidden: V is the rest of the disc."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    disc = (yy - 32) ** 2 + (xx - 30) ** 2 < 16**2
    stripes = np.where(((xx // 4) % 2 == 0)[..., None], [200, 60, 40], [40, 90, 220]).astype(np.uint8)
    mean = stripes[disc].mean(axis=0)
    background = np.broadcast_to(mean, (SIZE, SIZE, 3)).astype(np.uint8)
    completed = np.where(disc[..., None], stripes, background).astype(np.uint8)
    visible = disc & (xx < 38)
    return completed, background, disc, visible


def extract(image, visible, area, **settings):
    return RegionExtractor(**settings)(ExtractionInput(inpainted=image, visible=visible, area=area, seed=1))


def test_a_completed_object_is_segmented_whole(scene):
    completed, _, disc, visible = scene
    area = np.ones_like(visible)
    area[:, :4] = area[:, -4:] = False  # a border of background colour outside M
    mask = extract(completed, visible, area)
    assert iou(mask, disc) > 0.95
    assert iou(visible, disc) < 0.8


def test_nothing_drawn_beyond_v_gives_v(scene):
    _, background, _, visible = scene
    image = background.copy()
    image[visible] = scene[0][visible]
    mask = extract(image, visible, convex_hull_area(visible))
    assert iou(mask, visible) > 0.97


def test_the_region_stays_within_reach_of_the_area(scene):
    completed, _, disc, visible = scene
    area = convex_hull_area(visible)
    mask = extract(completed, visible, area, reach=0, ring=10)  # the disc's rest is no background sample
    assert not (mask & ~area).any()
    assert (extract(completed, visible, area, reach=8, ring=10) & ~area).any()


class FixedPoint(PointSampler):
    def __init__(self, x: float, y: float) -> None:
        super().__init__(1)
        self.point = np.array([[x, y]], np.float32)

    def sample(self, mask, rng):
        return self.point


def test_the_region_grows_from_the_prompt_points(scene):
    """Seeds are the pixels of the sampler's (x, y) prompts: a prompt on a detached speck of V grows
    nothing of the hidden part; a prompt on the disc's visible part grows the whole disc."""
    completed, _, disc, visible = scene
    speck = np.zeros_like(visible)
    speck[2:5, 2:5] = True
    area = np.ones_like(visible)
    area[:, :1] = area[:, -4:] = False
    on_speck = extract(completed, visible | speck, area, points=FixedPoint(3.5, 3.5))
    on_disc = extract(completed, visible | speck, area, points=FixedPoint(30.5, 32.5))
    assert not (on_speck & disc & ~visible).any()
    assert iou(on_disc & disc, disc) > 0.95


def test_fill_holes_fills_only_enclosed_regions():
    ring = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(ring, (32, 32), 12, 1, 3)
    filled = fill_holes(ring.astype(bool))
    assert filled[32, 32] and not filled[0, 0]


def test_fill_holes_keeps_holes_larger_than_asked():
    yy, xx = np.mgrid[:SIZE, :SIZE]
    ring = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20**2) & ((yy - 32) ** 2 + (xx - 32) ** 2 >= 10**2)
    speck = ring.copy()
    speck[32, 14] = False  # one pixel inside the ring's band: a speck of texture
    filled = fill_holes(speck, largest=0.02)
    assert filled[32, 14] and not filled[32, 32]  # the speck is filled, the ring's hole (~25 % of it) is not
    assert np.array_equal(fill_holes(speck, largest=0.0), speck)


def test_a_ring_keeps_its_hole(scene):
    completed, background, _, _ = scene
    yy, xx = np.mgrid[:SIZE, :SIZE]
    radius = (yy - 32) ** 2 + (xx - 32) ** 2
    ring = (radius < 20**2) & (radius >= 9**2)
    image = np.where(ring[..., None], completed, background).astype(np.uint8)
    visible = ring & (xx < 40)
    found = extract(image, visible, convex_hull_area(visible))
    assert iou(found, ring & convex_hull_area(visible)) > 0.95
    assert not found[32, 32] and not found[(radius < 8**2)].any()


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="margin"):
        RegionExtractor(margin=0)
