"""The mask operations every layer shares (``amodal/morphology.py``), on hand-made masks with known pixels.
(``fill_holes`` is tested with the region extractor that uses it, ``shifted`` with the training masks.)"""

import numpy as np

from amodal.morphology import components_touching, dilate, distance_to, erode


def pixels(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


def test_dilating_a_pixel_by_one_gives_its_four_neighbours_and_by_zero_a_copy():
    dot = pixels([".....", ".....", "..#..", ".....", "....."])
    assert np.array_equal(dilate(dot, 1), pixels([".....", "..#..", ".###.", "..#..", "....."]))
    copy = dilate(dot, 0)
    assert np.array_equal(copy, dot) and copy is not dot


def test_eroding_a_square_by_one_keeps_its_inside_and_leaves_the_input_alone():
    square = pixels([".......", ".#####.", ".#####.", ".#####.", ".#####.", ".#####.", "......."])
    before = square.copy()
    assert np.array_equal(erode(square, 1), pixels([
        ".......", ".......", "..###..", "..###..", "..###..", ".......", ".......",
    ]))
    assert np.array_equal(square, before)


def test_components_touching_keep_the_seeded_parts_whole_diagonals_included():
    mask = pixels([
        "##....#",
        "##....#",
        "..#...#",
        ".......",
        "####...",
    ])
    seeds = np.zeros_like(mask)
    seeds[0, 0] = True  # in the top-left block, which reaches (2, 2) through a corner
    seeds[3, 6] = True  # outside the mask: seeds nothing
    assert np.array_equal(components_touching(mask, seeds), pixels([
        "##.....",
        "##.....",
        "..#....",
        ".......",
        ".......",
    ]))


def test_distance_to_a_pixel_is_euclidean():
    dot = np.zeros((5, 6), bool)
    dot[0, 0] = True
    distance = distance_to(dot)
    assert distance[0, 0] == 0 and distance[0, 3] == 3
    assert abs(distance[4, 3] - 5.0) < 1e-3  # a 3-4-5 triangle, not the 7 of a city-block distance
