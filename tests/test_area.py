import numpy as np
import pytest

from amodal.method.area import HullArea, RectArea, VisibleArea, bounding_box_area, convex_hull_area
from amodal.sample import Sample


def mask_from(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


def test_hull_of_an_l_shape_fills_the_triangle_between_its_arms():
    visible = mask_from([
        "#.....",
        "#.....",
        "#.....",
        "######",
    ])
    expected = mask_from([
        "#.....",
        "##....",
        "####..",
        "######",
    ])
    assert (convex_hull_area(visible) == expected).all()


def test_hull_joins_separate_components_and_fills_holes():
    visible = mask_from([
        "##....##",
        "##....##",
        "........",
        "........",
    ])
    hull = convex_hull_area(visible)
    assert hull[:2].all() and not hull[2:].any()
    ring = mask_from([
        "#####",
        "#...#",
        "#...#",
        "#####",
    ])
    assert convex_hull_area(ring).all()


def test_hull_of_a_single_pixel_and_of_a_line_is_themselves():
    one = np.zeros((5, 5), bool)
    one[2, 3] = True
    assert (convex_hull_area(one) == one).all()
    line = np.zeros((5, 7), bool)
    line[1, 1:6] = True
    assert (convex_hull_area(line) == line).all()


def test_hull_touching_the_border_and_empty_mask():
    visible = np.zeros((6, 6), bool)
    visible[0, :] = True
    visible[:, 5] = True
    hull = convex_hull_area(visible)
    assert hull[np.triu_indices(6)].all()
    assert not hull[np.tril_indices(6, -2)].any()
    assert not convex_hull_area(np.zeros((4, 4), bool)).any()


@pytest.mark.parametrize("seed", range(5))
def test_every_area_contains_the_visible_mask(seed):
    rng = np.random.default_rng(seed)
    visible = rng.random((40, 50)) > 0.97
    sample = Sample("t", "i", "o", np.zeros((40, 50, 3), np.uint8), visible)
    for area in (HullArea(), RectArea(), VisibleArea()):
        assert (area(sample) >= visible).all()


def test_rect_is_the_smallest_box_around_all_components():
    visible = np.zeros((10, 12), bool)
    visible[2, 3] = True
    visible[6, 9] = True
    box = bounding_box_area(visible)
    assert box.sum() == 5 * 7
    assert box[2:7, 3:10].all()
    assert not bounding_box_area(np.zeros((3, 3), bool)).any()


def test_area_hull_builds_the_convex_hull_of_a_concave_v(tmp_path):
    """Eq. 10: M is "the smallest convex polygon ConvHull(∪ C_i) that can enclose all contours" of V. The
    class `area=hull` composes (not only the function it is meant to call) fills the V's notch, and only
    that: its bounding box would also take the two corners below the arms."""
    from amodal.config import build
    from tests.helpers import composed

    visible = mask_from([
        "#.......#",
        ".#.....#.",
        "..#...#..",
        "...#.#...",
        "....#....",
    ])
    hull = mask_from([
        "#########",
        ".#######.",
        "..#####..",
        "...###...",
        "....#....",
    ])
    with composed(["area=hull"], tmp_path) as cfg:
        area = build(cfg.area, "area")
    sample = Sample("t", "i", "o", np.zeros((*visible.shape, 3), np.uint8), visible)
    assert np.array_equal(area(sample), hull)
