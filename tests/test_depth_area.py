"""The depth-filtered area D (§S2) on hand-made masks and a hand-made nearness map (larger = nearer)."""

import numpy as np
import pytest

from amodal.config import build
from amodal.errors import ModelNotFoundError
from amodal.method.area import convex_hull_area
from amodal.method.depth_area import DepthArea, occluders
from amodal.models.depth import DepthEstimator, DepthModel
from amodal.sample import Sample
from tests.helpers import composed, in_process

TARGET_NEARNESS = 5.0


def box(shape, top, left, bottom, right) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def layout():
    """V: an L shape (rows 40-69; columns 40-59, then 40-79 in rows 60-69) at nearness 5, and
    neighbours named by their distance to V (between pixel centres) and their depth."""
    shape = (100, 120)
    visible = box(shape, 40, 40, 60, 60) | box(shape, 60, 40, 70, 80)
    nearness = np.zeros(shape, dtype=np.float32)
    nearness[visible] = TARGET_NEARNESS
    others = {
        "touching_nearer": (box(shape, 30, 40, 40, 60), 9.0),  # the row above V
        "gap_10_nearer": (box(shape, 40, 20, 50, 31), 9.0),    # column 30 vs V's column 40
        "gap_11_nearer": (box(shape, 60, 10, 70, 30), 9.0),    # column 29 vs column 40
        "diagonal_10_nearer": (box(shape, 75, 87, 80, 92), 9.0),  # (75, 87) vs V's corner (69, 79): 6, 8
        "diagonal_10.6_nearer": (box(shape, 50, 87, 54, 92), 9.0),  # (53, 87) vs (60, 79): 7, 8
        "touching_farther": (box(shape, 70, 40, 80, 80), 1.0),  # the rows below V, behind it
        "touching_equal": (box(shape, 50, 30, 60, 40), TARGET_NEARNESS),  # left of V, same depth
    }
    masks = []
    for mask, value in others.values():
        nearness[mask] = value
        masks.append(mask)
    return visible, dict(zip(others, masks, strict=True)), nearness


def test_distances_of_the_layout_are_what_the_names_say():
    from amodal.morphology import distance_to

    visible, others, _ = layout()
    distance = distance_to(visible)
    nearest = {name: float(distance[mask].min()) for name, mask in others.items()}
    assert nearest == pytest.approx({
        "touching_nearer": 1.0, "gap_10_nearer": 10.0, "gap_11_nearer": 11.0, "diagonal_10_nearer": 10.0,
        "diagonal_10.6_nearer": float(np.hypot(7, 8)), "touching_farther": 1.0, "touching_equal": 1.0,
    })


def test_neighbours_in_front_and_within_the_radius_are_the_occluders():
    visible, others, nearness = layout()
    names = list(others)

    def chosen(radius):
        return {names[i] for i in occluders(visible, list(others.values()), nearness, radius)}

    assert chosen(10) == {"touching_nearer", "gap_10_nearer", "diagonal_10_nearer"}  # ≤ radius counts
    assert chosen(10.7) == chosen(10) | {"diagonal_10.6_nearer"}
    assert chosen(11) == chosen(10.7) | {"gap_11_nearer"}
    assert chosen(1) == {"touching_nearer"}  # behind or at the same depth never counts
    assert chosen(0) == set()


def test_the_median_decides_not_a_few_pixels_across_a_depth_edge():
    visible, others, nearness = layout()
    farther = others["touching_farther"]
    nearness[70:72, 40:80] = 20.0  # 2 of its 10 rows bleed the nearer value of an edge
    assert occluders(visible, [farther], nearness, radius=10) == []
    nearness[70:76, 40:80] = 20.0  # now 6 of 10 rows: its median is nearer
    assert occluders(visible, [farther], nearness, radius=10) == [0]


def sample_of(visible, others, image_id="img") -> Sample:
    image = np.zeros((*visible.shape, 3), dtype=np.uint8)
    return Sample(dataset="hand", image_id=image_id, object_id="target", image=image, visible=visible,
                  others=tuple(others))


class CountingDepth:
    def __init__(self, nearness):
        self.nearness, self.calls = nearness, 0

    def __call__(self, image):
        self.calls += 1
        return self.nearness


def test_d_is_v_and_the_occluders_and_the_depth_map_is_computed_once_per_image():
    visible, others, nearness = layout()
    depth = CountingDepth(nearness)
    area = DepthArea(radius=10, estimator=depth)
    expected = visible | others["touching_nearer"] | others["gap_10_nearer"] | others["diagonal_10_nearer"]
    assert np.array_equal(area(sample_of(visible, others.values())), expected)
    # another object of the same image reuses the map (for it, the nearer L is the occluder)
    farther = others["touching_farther"]
    assert np.array_equal(area(sample_of(farther, [visible, others["touching_nearer"]])), farther | visible)
    assert depth.calls == 1
    area(sample_of(visible, others.values(), image_id="other"))  # another image computes its own
    assert depth.calls == 2
    hulled = DepthArea(radius=10, hull=True, estimator=depth)(sample_of(visible, others.values()))
    assert np.array_equal(hulled, expected | convex_hull_area(visible))
    assert hulled.sum() > expected.sum()


def test_an_object_alone_in_its_image_needs_no_depth_map():
    visible, _, nearness = layout()
    depth = CountingDepth(nearness)
    assert np.array_equal(DepthArea(estimator=depth)(sample_of(visible, [])), visible)
    assert depth.calls == 0


def test_tiny_depth_anything_gives_a_map_at_the_image_resolution():
    estimator = DepthEstimator(DepthModel("tiny"), device="cpu")
    image = np.random.default_rng(0).integers(0, 255, size=(90, 150, 3), dtype=np.uint8)
    nearness = estimator(image)
    assert nearness.shape == (90, 150) and nearness.dtype == np.float32 and np.isfinite(nearness).all()
    assert nearness.std() > 0
    assert np.array_equal(nearness, DepthEstimator(DepthModel("tiny"), device="cpu")(image))


def test_a_depth_model_saved_to_a_folder_loads_through_the_real_path(tmp_path):
    """area.model=/folder goes through AutoImageProcessor / AutoModelForDepthEstimation.from_pretrained
    (local files only), the way a hub id does; the tiny model saved there gives the same map."""
    from amodal.models.depth import tiny_depth_anything

    processor, module = tiny_depth_anything(seed=0)
    processor.save_pretrained(tmp_path / "tiny-depth")
    module.save_pretrained(tmp_path / "tiny-depth")
    image = np.random.default_rng(1).integers(0, 255, size=(40, 70, 3), dtype=np.uint8)
    saved = DepthEstimator(DepthModel(str(tmp_path / "tiny-depth")), device="cpu")
    saved.check()
    assert np.allclose(saved(image), DepthEstimator(DepthModel("tiny"), device="cpu")(image), atol=1e-6)
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        DepthModel(str(tmp_path)).check()
    # weights saved again into the folder (another seed): the process loads them, not the model it kept
    tiny_depth_anything(seed=1)[1].save_pretrained(tmp_path / "tiny-depth")
    again, seeds = saved(image), [DepthEstimator(DepthModel("tiny", seed=s), device="cpu")(image) for s in (0, 1)]
    assert np.allclose(again, seeds[1], rtol=1e-4, atol=1e-12)  # the tiny maps are ~1e-7: relative
    assert not np.allclose(again, seeds[0], rtol=1e-4, atol=1e-12)


def test_area_depth_with_the_tiny_model_runs_and_matches_tiny_depth(run_app, tmp_path):
    with composed(["area=tiny_depth"], tmp_path) as cfg:
        tiny = dict(cfg.area)
    with composed(["area=depth", "area.model=tiny"], tmp_path) as cfg:
        assert dict(cfg.area) == tiny
        assert isinstance(build(cfg.area, "area"), DepthArea)
    metrics, _ = run_app("method=area", "area=depth", "area.model=tiny", "dataset.n_images=1",
                         "dataset.size=128")
    assert metrics["n"] > 0 and 0 < metrics["miou"] <= 1


def test_missing_depth_model_is_one_line_and_exit_2(tmp_path):
    with pytest.raises(ModelNotFoundError, match="nobody/no-such-depth is not in the Hugging Face cache"):
        DepthArea(model="nobody/no-such-depth").check()
    out = in_process("amodal-run", "method=area", "area=depth", "area.model=nobody/no-such-depth", "logger=none",
                     "dataset.n_images=1", "dataset.size=128", "output.progress=false", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("amodal-run: error: depth model nobody/no-such-depth")
    assert "huggingface-cli download nobody/no-such-depth" in line
