"""Point prompts: inside V (holes and separate parts included), seeded, spread over V's parts."""

import dataclasses

import cv2
import numpy as np
import pytest

from amodal.errors import ConfigError, SampleError
from amodal.method.points import GridPoints, RandomPoints
from amodal.seeding import numpy_rng


def rings_and_blobs() -> np.ndarray:
    """Three separate parts: a ring with a hole, a thin diagonal line and a small square."""
    mask = np.zeros((120, 160), dtype=np.uint8)
    cv2.circle(mask, (40, 40), 30, 1, thickness=-1)
    cv2.circle(mask, (40, 40), 18, 0, thickness=-1)  # the hole
    cv2.line(mask, (90, 10), (150, 70), 1, thickness=1)
    mask[95:105, 20:30] = 1
    return mask.astype(bool)


def pixels(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (row, column) of the pixel each (x, y) point lies in."""
    return np.floor(points[:, 1]).astype(int), np.floor(points[:, 0]).astype(int)


@pytest.mark.parametrize("sampler", [RandomPoints(9), RandomPoints(40), GridPoints(9), GridPoints(25)])
def test_every_point_is_the_centre_of_a_pixel_of_v(sampler):
    mask = rings_and_blobs()
    for seed in range(20):
        points = sampler(mask, numpy_rng(seed, 1))
        assert points.shape == (sampler.n, 2) and points.dtype == np.float32
        rows, cols = pixels(points)
        assert mask[rows, cols].all()
        assert np.allclose(points % 1, 0.5)  # pixel centres, SAM's coordinate convention
        assert len({(r, c) for r, c in zip(rows, cols, strict=True)}) == sampler.n  # distinct pixels


def test_same_seed_gives_the_same_points_and_another_seed_others():
    mask = rings_and_blobs()
    sampler = RandomPoints(9)
    first = sampler(mask, numpy_rng(123, 7))
    assert np.array_equal(first, sampler(mask, numpy_rng(123, 7)))
    assert not np.array_equal(first, sampler(mask, numpy_rng(124, 7)))


def test_random_points_are_uniform_over_v():
    mask = np.zeros((10, 20), dtype=bool)
    mask[:, :10] = True  # the left half
    rng = numpy_rng(0, 0)
    xs = np.concatenate([RandomPoints(9)(mask, rng)[:, 0] for _ in range(400)])
    assert xs.max() < 10 and abs(xs.mean() - 5.0) < 0.15  # uniform over columns 0..9: mean 5


def test_grid_points_spread_over_every_component():
    mask = rings_and_blobs()
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    assert count - 1 == 3
    points = GridPoints(9)(mask, numpy_rng(0, 0))
    hit = set(labels[pixels(points)].tolist())
    assert hit == {1, 2, 3}
    # deterministic: the generator is not used
    assert np.array_equal(points, GridPoints(9)(mask, numpy_rng(99, 0)))


def test_grid_points_on_a_square_are_a_regular_3x3_lattice():
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:35, 5:35] = True
    points = GridPoints(9)(mask, numpy_rng(0, 0))
    xs, ys = sorted(set(points[:, 0].tolist())), sorted(set(points[:, 1].tolist()))
    assert xs == ys == [10.5, 20.5, 30.5]


def test_a_mask_smaller_than_n_gives_all_its_pixels():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2, 3] = mask[6, 1] = True
    for sampler in (RandomPoints(9), GridPoints(9)):
        points = sampler(mask, numpy_rng(0, 0))
        assert sorted(map(tuple, points.tolist())) == [(1.5, 6.5), (3.5, 2.5)]


def test_empty_mask_and_bad_n_are_one_line_errors():
    with pytest.raises(SampleError, match="visible mask is empty"):
        RandomPoints(9)(np.zeros((4, 4), dtype=bool), numpy_rng(0, 0))
    with pytest.raises(ConfigError, match="points.n=0"):
        RandomPoints(0)


def test_grid_with_more_parts_than_points_takes_the_largest_parts():
    mask = np.zeros((20, 60), dtype=bool)
    for left, side in [(0, 2), (10, 6), (25, 3), (40, 8)]:
        mask[:side, left : left + side] = True
    points = GridPoints(2)(mask, numpy_rng(0, 0))
    _, cols = pixels(points)
    assert sorted(cols // 10) == [1, 4]  # the 6×6 and the 8×8 squares


# --- the extractors prompt with points of V, not of M -------------------------------------------------------


def concave_scene():
    """A V-shaped visible mask whose hull M is a filled triangle: M ≠ V, and most of M lies outside V."""
    from amodal.method.area import convex_hull_area
    from amodal.method.extract import ExtractionInput

    visible = np.zeros((96, 128), dtype=bool)
    for row in range(60):  # two arms 6 px wide, meeting at the bottom
        visible[10 + row, 10 + row:16 + row] = True
        visible[10 + row, 112 - row:118 - row] = True
    area = convex_hull_area(visible)
    assert area.sum() > 2 * visible.sum()  # most of M is not V
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, size=(96, 128, 3), dtype=np.uint8)
    image[area] = (200, 40, 40)  # x̂₀ drew the whole object: the colour the region extractor grows
    return ExtractionInput(inpainted=image, visible=visible, area=area, seed=11)


def extractor_from_config(name: str, tmp_path):
    from amodal.config import build
    from tests.helpers import composed

    with composed([f"extractor={name}", "runtime.device=cpu"], tmp_path) as cfg:
        return build(cfg.extractor, "extractor")


@pytest.mark.parametrize("name", ["tiny_sam", "tiny_sam2"])  # sam and sam2: the same extractor, other models
def test_sam_and_sam2_are_prompted_with_points_of_v_where_m_is_larger(name, tmp_path, monkeypatch):
    """§5.1: "the mask M is extracted by uniformly sampling nine points from V using SAM". Points drawn from
    M would land outside the object's visible part, on what the model drew."""
    extractor = extractor_from_config(name, tmp_path)
    inputs = concave_scene()
    prompted = []
    predictor = extractor.predictor().predictor
    real_predict = predictor.predict

    def spy(point_coords, point_labels, multimask_output):
        prompted.append(np.asarray(point_coords))
        return real_predict(point_coords=point_coords, point_labels=point_labels, multimask_output=multimask_output)

    monkeypatch.setattr(predictor, "predict", spy)
    for seed in range(5):
        extractor(dataclasses.replace(inputs, seed=seed))
    assert len(prompted) == 5
    for points in prompted:
        assert points.shape == (9, 2)
        rows, cols = pixels(points)
        assert inputs.visible[rows, cols].all()  # every prompt in V


def test_the_region_extractor_grows_from_points_of_v_where_m_is_larger(tmp_path, monkeypatch):
    """The classical stand-in for SAM takes SAM's prompts: its seeds lie in V, never in M \\ V."""
    import amodal.method.region as region

    extractor = extractor_from_config("region", tmp_path)
    inputs = concave_scene()
    seeds_seen = []
    real = region.components_touching

    def spy(mask, seeds):
        seeds_seen.append(seeds.copy())
        return real(mask, seeds)

    monkeypatch.setattr(region, "components_touching", spy)
    for seed in range(5):
        extractor(dataclasses.replace(inputs, seed=seed))
    assert len(seeds_seen) == 5
    for seeds in seeds_seen:
        assert seeds.sum() == 9 and not (seeds & ~inputs.visible).any()  # nine seeds, all in V


def test_the_method_hands_the_extractor_v_not_m(tmp_path, monkeypatch):
    """The whole method (area=hull, a tiny backbone, tiny SAM): the prompts that reach SAM lie in V at the
    model's view, where M is a V's filled hull. Catches the pipeline handing M to the extractor as V."""
    from amodal.config import build
    from amodal.method.pipeline import InpaintPredictor
    from amodal.sample import Sample
    from tests.helpers import composed

    scene = concave_scene()
    with composed(["method=inpaint", "area=hull", "backbone=tiny_sd", "extractor=tiny_sam", "runtime.device=cpu",
                   "cache.enabled=false"], tmp_path) as cfg:
        method = build(cfg.method, "method")
    views, prompted = [], []
    prepare = InpaintPredictor.prepare

    def spy_prepare(self, sample, seed):
        prepared = prepare(self, sample, seed)
        views.append(prepared)
        return prepared

    predictor = method.extractor.predictor().predictor
    real_predict = predictor.predict

    def spy_predict(point_coords, point_labels, multimask_output):
        prompted.append(np.asarray(point_coords))
        return real_predict(point_coords=point_coords, point_labels=point_labels, multimask_output=multimask_output)

    monkeypatch.setattr(InpaintPredictor, "prepare", spy_prepare)
    monkeypatch.setattr(predictor, "predict", spy_predict)
    sample = Sample("t", "1", "1", scene.inpainted, scene.visible, amodal=scene.area)
    method.predict([sample], [7])
    (prepared,), (points,) = views, prompted
    assert (prepared.area_view & ~prepared.visible_view).sum() > prepared.visible_view.sum()  # M ≠ V at the view
    rows, cols = pixels(points)
    assert points.shape == (9, 2) and prepared.visible_view[rows, cols].all()
