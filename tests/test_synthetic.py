import numpy as np
import pytest

from amodal.data import synthetic
from amodal.data.synthetic import SyntheticDataset, render_scene
from amodal.sample import ObjectKey


def test_scenes_are_a_pure_function_of_seed_and_index():
    a = render_scene(seed=1, index=4, size=128)
    b = render_scene(seed=1, index=4, size=128)
    c = render_scene(seed=2, index=4, size=128)
    assert np.array_equal(a.image, b.image)
    assert all(np.array_equal(x, y) for x, y in zip(a.amodal, b.amodal))
    assert not np.array_equal(a.image, c.image)


def test_later_shapes_occlude_earlier_ones_exactly():
    scene = render_scene(seed=0, index=0, size=256)
    for i, amodal in enumerate(scene.amodal):
        in_front = np.zeros_like(amodal)
        for later in scene.amodal[i + 1 :]:
            in_front |= later
        assert np.array_equal(scene.visible[i], amodal & ~in_front)
        # the image shows the object's own pixels where it is visible, and its rendering agrees there
        rendering = scene.unoccluded[i]
        assert np.array_equal(scene.image[scene.visible[i]], rendering[scene.visible[i]])
        assert np.array_equal(rendering.max(axis=2) > 0, amodal)


def test_listing_objects_renders_nothing_and_matches_what_loads(monkeypatch):
    rendered = []

    def spy(seed, index, *args, **kwargs):
        rendered.append(index)
        return render_scene(seed, index, *args, **kwargs)

    monkeypatch.setattr(synthetic, "render_scene", spy)
    synthetic._SCENES.clear()  # scenes another test of this process rendered
    dataset = SyntheticDataset(n_images=3, seed=5, size=128)
    keys = dataset.keys()
    assert rendered == []
    assert len({k for k in keys}) == len(keys)
    for key in keys:
        sample = dataset.load(key)
        assert sample.key == key
        assert sample.image.dtype == np.uint8 and sample.image.shape == (128, 128, 3)
        assert sample.visible.dtype == bool and sample.amodal.dtype == bool
        assert len(sample.others) == sum(k.image_id == key.image_id for k in keys) - 1
    assert rendered == [0, 1, 2]  # each scene once, when its first object loads


def test_datasets_of_one_process_share_each_scene_and_no_one_can_change_it(monkeypatch):
    """The jobs of a multirun each build a dataset: a scene is rendered once for all of them, and locked."""
    rendered = []
    monkeypatch.setattr(synthetic, "render_scene",
                        lambda *args, **kwargs: rendered.append(args[1]) or render_scene(*args, **kwargs))
    synthetic._SCENES.clear()
    key = ObjectKey("scene00000", "0")
    first, again = (SyntheticDataset(n_images=1, seed=6, size=96).load(key) for _ in range(2))
    other_seed = SyntheticDataset(n_images=1, seed=7, size=96).load(key)
    assert rendered == [0, 0]  # seed 6 once, seed 7 once
    assert np.array_equal(first.image, again.image) and not np.array_equal(first.image, other_seed.image)
    arrays = (first.image, first.visible, first.amodal, first.extras["unoccluded"], *first.others)
    for array in arrays:  # a sample's arrays are its own: changed, they change no other sample
        array[...] = 0
    assert all(kept.any() for kept in (again.image, again.visible, again.amodal, again.extras["unoccluded"],
                                       *again.others))
    scene = synthetic._SCENES.get((6, 0, 96, (3, 6), 0.7, "test"), lambda: None)
    with pytest.raises(ValueError, match="read-only"):  # and the scene they are copied from is locked
        scene.image[0, 0] = 1


def test_occlusion_rates_spread_over_zero_to_seventy_percent():
    dataset = SyntheticDataset(n_images=16, seed=0, size=512)
    rates = np.array([dataset.load(k).occlusion_rate for k in dataset.keys()])
    occluded = rates[rates > 0]
    assert len(occluded) >= 30
    assert occluded.max() <= 0.7 + 1e-9
    assert np.histogram(occluded, bins=[0, 0.2, 0.4, 0.7])[0].min() >= 5  # every range is populated


def test_limit_is_kept_for_the_runner_and_the_listing_has_every_object():
    """``dataset.limit`` counts scored objects, which only the runner knows (tests/test_unoccluded.py)."""
    full = SyntheticDataset(n_images=2, size=128).keys()
    limited = SyntheticDataset(n_images=2, size=128, limit=3)
    assert limited.limit == 3 and limited.keys() == full and len(full) > 3


def test_splits_are_disjoint_streams_and_test_is_the_default():
    test = SyntheticDataset(n_images=1, size=128)
    train = SyntheticDataset(n_images=1, size=128, split="train")
    assert np.array_equal(test.load(test.keys()[0]).image, render_scene(0, 0, 128).image)
    assert not np.array_equal(test.load(test.keys()[0]).image, train.load(train.keys()[0]).image)
