"""The modal baselines (SAM / SAM2 on the original image) and scoring external predictions."""

from pathlib import Path

import numpy as np
import pytest

from amodal.config import build
from amodal.data.files import read_mask
from amodal.data.synthetic import SyntheticDataset
from amodal.errors import ConfigError, ModelNotFoundError
from amodal.eval.results import read_rows
from amodal.method.external import ExternalPredictor
from amodal.method.modal import ModalPredictor
from tests.helpers import composed, write_png

ONE = ["dataset.n_images=1", "dataset.size=128"]


@pytest.mark.parametrize("overrides,model", [
    (["method=sam_modal"], "amodal.models.sam.SamModel"),
    (["method=sam2_modal"], "amodal.models.sam2.Sam2Model"),
    (["method=sam_modal", "extractor=tiny_sam"], "amodal.models.sam.TinySamModel"),
    (["method=sam2_modal", "extractor=tiny_sam"], "amodal.models.sam.TinySamModel"),
    (["extractor=tiny_sam2", "method=sam_modal"], "amodal.models.sam2.TinySam2Model"),
])
def test_modal_methods_default_to_their_segmenter_and_the_command_line_wins(overrides, model, tmp_path):
    real = "Tiny" not in model
    with composed([*overrides, *(["extractor.model.checkpoint_dir=/nowhere"] if real else [])], tmp_path) as cfg:
        assert cfg.method.extractor.model._target_ == model
        assert cfg.extractor.model._target_ == model  # one extractor node: what W&B and .hydra record
        if not real:
            assert isinstance(build(cfg.method, "method"), ModalPredictor)
        else:  # the checkpoint is checked when the method is built, before the run starts
            with pytest.raises(ModelNotFoundError, match="/nowhere/sam"):
                build(cfg.method, "method")


def test_sam_modal_with_tiny_sam_runs_and_masks_have_the_image_size(run_app):
    metrics, run_dir = run_app("method=sam_modal", "extractor=tiny_sam", "output.save_masks=true", *ONE)
    rows = read_rows(run_dir / "results.jsonl")
    assert metrics["n"] == len(rows) - metrics["counts"]["unoccluded"] > 0
    assert not metrics["counts"]["skipped"]
    for row in (r for r in rows if not r.get("unscored")):  # unoccluded objects are not predicted
        mask = read_mask(run_dir / "masks" / row["image_id"] / f"{row['object_id']}.png")
        assert mask.shape == (128, 128) and mask.sum() == row["predicted_area"]


def test_sam2_modal_with_tiny_sam2_runs_on_a_crop_view(run_app):
    metrics, _ = run_app("method=sam2_modal", "extractor=tiny_sam2", "method.view=${view}", "view.mode=crop",
                         "view.size=64", *ONE)
    assert metrics["n"] > 0 and not metrics["counts"]["skipped"]


def test_the_image_is_embedded_once_for_all_its_objects(tmp_path, monkeypatch):
    with composed(["method=sam_modal", "extractor=tiny_sam", "runtime.device=cpu"], tmp_path) as cfg:
        predictor = build(cfg.method, "method")
    library = predictor.extractor.predictor().predictor
    calls = []
    embed = library.set_image
    monkeypatch.setattr(library, "set_image", lambda image: (calls.append(image.shape), embed(image)))
    dataset = SyntheticDataset(n_images=2, size=96)
    samples = [dataset.load(key) for key in dataset.keys()]
    predictor.predict(samples, seeds=list(range(len(samples))))
    assert len(calls) == 2 < len(samples)


def test_modal_with_a_segmenter_free_extractor_is_exactly_the_visible_baseline(run_app, tmp_path):
    """The diff stand-in returns V when there is no condition image: every pixel of the plumbing
    (view, paste-back, scoring) must then reproduce Â = V."""
    modal, _ = run_app("method=sam_modal", "extractor=diff", *ONE, run_dir=tmp_path / "modal")
    visible, _ = run_app("method=visible", *ONE, run_dir=tmp_path / "visible")
    assert modal["miou"] == visible["miou"] and modal["n"] == visible["n"]


def test_external_predictions_saved_by_a_run_score_exactly_as_that_run(run_app, tmp_path):
    oracle, oracle_dir = run_app("method=oracle", "output.save_masks=true", *ONE, run_dir=tmp_path / "oracle")
    external, _ = run_app("method=external", f"method.root={oracle_dir / 'masks'}", *ONE,
                          run_dir=tmp_path / "external")
    assert external["miou"] == oracle["miou"] and external["n"] == oracle["n"]
    assert external["pixel_iou"] == oracle["pixel_iou"]


def perfect_predictions(root: Path) -> list:
    dataset = SyntheticDataset(n_images=1, size=128)
    for key in dataset.keys():
        write_png(root / key.image_id / f"{key.object_id}.png", dataset.load(key).amodal)
    return dataset.keys()


def test_with_missing_skip_missing_and_wrongly_sized_predictions_are_skipped_and_counted(run_app, tmp_path):
    root = tmp_path / "predictions"
    keys = perfect_predictions(root)
    missing = root / keys[0].image_id / f"{keys[0].object_id}.png"
    missing.unlink()
    write_png(root / keys[1].image_id / f"{keys[1].object_id}.png", np.ones((64, 64), dtype=bool))
    metrics, run_dir = run_app("method=external", f"method.root={root}", "method.missing=skip", *ONE)
    assert metrics["miou"] == 1.0 and metrics["n"] == len(keys) - 2 - metrics["counts"]["unoccluded"]
    skipped = {(r["image_id"], r["object_id"]): r["skipped"] for r in read_rows(run_dir / "results.jsonl")
               if r.get("skipped")}
    assert skipped[keys[0]] == f"no prediction for this object: expected {missing}"
    assert "mask is 64×64 (w×h) but its image is 128×128" in skipped[keys[1]]
    assert len(skipped) == 2


def test_external_root_must_be_given_and_exist(tmp_path):
    with pytest.raises(ConfigError, match="neither method.predictions nor method.root is set"):
        ExternalPredictor(None)
    with pytest.raises(ConfigError, match="does not exist"):
        ExternalPredictor(str(tmp_path / "nowhere"))


def test_sam_modal_embeds_each_image_of_the_cocoa_demo_once(run_app, tmp_path):
    """47 things in 5 images, 24 of them occluded: 24 objects predicted, 5 image-encoder passes."""
    demo = Path(__file__).parent / "data" / "cocoa_demo"
    metrics, run_dir = run_app("dataset=cocoa", f"dataset.root={demo}", "method=sam_modal", "extractor=tiny_sam",
                               "output.pictures=0", "output.save_masks=true")
    assert metrics["counts"]["predicted"] == 24 and metrics["image_embeddings"] == 5
    # the reused embedding gives the masks a fresh one does
    with composed(["method=sam_modal", "extractor=tiny_sam", "runtime.device=cpu"], tmp_path) as cfg:
        predictor = build(cfg.method, "method")
    from amodal.data.cocoa import CocoaDataset
    from amodal.seeding import object_seed

    dataset = CocoaDataset(root=str(demo))
    rows = [r for r in read_rows(run_dir / "results.jsonl") if not r.get("unscored")][-3:]
    for row in rows:
        sample = dataset.load(dataset.keys()[[k.object_id for k in dataset.keys()].index(row["object_id"])])
        predictor.extractor.predictor().image_digest = None  # embed afresh
        (fresh,) = predictor.predict([sample], [object_seed(0, sample.key)])
        assert np.array_equal(fresh.mask, read_mask(run_dir / "masks" / row["image_id"] / f"{row['object_id']}.png"))
