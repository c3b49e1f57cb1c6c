"""SAM and SAM 2 extractors: the tiny models end to end, mask selection, model sharing, sam2 inside
Hydra, and missing checkpoints as one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amodal.config import build
from amodal.errors import ModelNotFoundError
from amodal.method.extract import ExtractionInput
from amodal.method.segment import PointPromptExtractor, select_mask
from amodal.models.sam import CHECKPOINTS, SamModel
from amodal.models.sam2 import Sam2Model, sam2_config
from tests.helpers import REPO, composed, in_process


def extractor_from_config(name: str, tmp_path: Path, *overrides: str) -> PointPromptExtractor:
    with composed([f"extractor={name}", "runtime.device=cpu", *overrides], tmp_path) as cfg:
        return build(cfg.extractor, "extractor")


def scene() -> ExtractionInput:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, size=(96, 128, 3), dtype=np.uint8)
    image[20:70, 30:90] = (200, 40, 40)
    visible = np.zeros((96, 128), dtype=bool)
    visible[25:65, 35:60] = True
    return ExtractionInput(inpainted=image, visible=visible, area=visible, seed=11)


def test_select_mask_keeps_the_best_scoring_or_the_largest_candidate():
    masks = np.zeros((3, 4, 4), dtype=bool)
    masks[0, :1] = True  # 4 pixels
    masks[1, :3] = True  # 12 pixels
    masks[2, :2] = True  # 8 pixels
    scores = np.array([0.2, 0.5, 0.9], dtype=np.float32)
    assert np.array_equal(select_mask(masks, scores, "score"), masks[2])
    assert np.array_equal(select_mask(masks, scores, "area"), masks[1])
    assert np.array_equal(select_mask(masks, np.array([0.7, 0.7, 0.1]), "score"), masks[0])  # first of a tie


@pytest.mark.parametrize("name", ["tiny_sam", "tiny_sam2"])
def test_tiny_extractor_prompts_with_points_of_v_and_keeps_the_chosen_candidate(name, tmp_path, monkeypatch):
    extractor = extractor_from_config(name, tmp_path)
    inputs = scene()
    mask = extractor(inputs)  # the tiny model end to end
    assert mask.dtype == bool and mask.shape == inputs.visible.shape
    assert np.array_equal(mask, extractor(inputs))  # deterministic for one seed

    # a hand-made answer: the model's predictor returns three known candidates with known predicted IoUs
    candidates = np.zeros((3, *inputs.visible.shape), dtype=np.float32)  # logits-like: inside where > 0
    candidates[0, :10] = 1.0  # a strip: the single-mask answer
    candidates[1, 20:70, 30:90] = 1.0  # the red rectangle: the best predicted IoU
    candidates[2, 5:90, 5:120] = 1.0  # the largest
    calls = []

    def predict(point_coords, point_labels, multimask_output):
        calls.append((point_coords, point_labels, multimask_output))
        if multimask_output:
            return candidates, np.array([0.2, 0.9, 0.5]), None
        return candidates[:1], np.array([0.1]), None

    monkeypatch.setattr(extractor.predictor().predictor, "predict", predict)  # shared by every tiny_* extractor
    assert np.array_equal(extractor(inputs), candidates[1] > 0)
    points, labels, multimask = calls[-1]
    assert points.shape == (9, 2) and multimask and np.array_equal(labels, np.ones(9))
    assert inputs.visible[points[:, 1].astype(int), points[:, 0].astype(int)].all()  # every prompt lies in V
    largest = extractor_from_config(name, tmp_path, "extractor.select=area")
    assert np.array_equal(largest(inputs), candidates[2] > 0)
    single = extractor_from_config(name, tmp_path, "extractor.multimask_output=false")
    assert np.array_equal(single(inputs), candidates[0] > 0) and calls[-1][2] is False


def test_a_model_is_built_once_per_process_and_shared(tmp_path):
    first = extractor_from_config("tiny_sam", tmp_path)
    second = extractor_from_config("tiny_sam", tmp_path, "points=grid")
    assert first.predictor() is second.predictor()
    other = extractor_from_config("tiny_sam", tmp_path, "extractor.model.seed=1")
    assert other.predictor() is not first.predictor()
    # another seed, other random weights: another mask for the same input
    assert not np.array_equal(other(scene()), first(scene()))


@pytest.mark.parametrize("model", [SamModel, Sam2Model])
def test_a_checkpoint_replaced_under_the_same_name_is_loaded_anew(model, tmp_path, monkeypatch):
    """The process keeps a model by its checkpoint as it is, not by its name only (a notebook that
    fine-tunes SAM into the same file)."""
    from amodal.models.sam import TinySamModel

    builds = []
    monkeypatch.setattr(model, "build", lambda self: builds.append(self) or TinySamModel().build())
    monkeypatch.setattr(model, "predictor", TinySamModel.predictor)
    checkpoint = tmp_path / "mine.pt"
    checkpoint.write_bytes(b"first weights")
    extractor = PointPromptExtractor(model(checkpoint=str(checkpoint)), device="cpu")
    first = extractor.predictor()
    assert extractor.predictor() is first and len(builds) == 1
    fine_tuned = bytes(255 - b for b in checkpoint.read_bytes())  # the same size, written a second later
    mtime = checkpoint.stat().st_mtime_ns
    checkpoint.write_bytes(fine_tuned)
    os.utime(checkpoint, ns=(mtime, mtime + 1_000_000_000))
    assert extractor.predictor() is not first and len(builds) == 2


def test_sam2_config_is_read_from_the_package_and_sizes_are_overridable():
    large = sam2_config("sam2.1_hiera_l.yaml")
    assert large.model.image_encoder.trunk.embed_dim == 144
    assert large.model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability is True
    small = sam2_config("sam2.1_hiera_t.yaml", {"image_encoder.trunk.embed_dim": 8, "image_size": 256})
    assert small.model.image_encoder.trunk.embed_dim == 8 and small.model.image_size == 256


def test_importing_sam2_leaves_hydra_to_the_caller():
    """sam2's __init__ initialises Hydra's global state; after our import nothing is initialised and
    the caller composes its own config (a fresh process: sam2 may already be imported here)."""
    code = (
        "from hydra.core.global_hydra import GlobalHydra\n"
        "from amodal.models.sam2 import TinySam2Model\n"
        "TinySam2Model().build()\n"
        "assert not GlobalHydra.instance().is_initialized()\n"
        "from hydra import compose, initialize_config_dir\n"
        "from amodal.config import config_dir\n"
        "with initialize_config_dir(version_base='1.3', config_dir=str(config_dir())):\n"
        "    print(compose('run', overrides=['extractor=tiny_sam2']).extractor.model._target_)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "amodal.models.sam2.TinySam2Model"


def test_missing_checkpoints_name_the_file_and_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        SamModel("vit_b", checkpoint_dir=str(tmp_path)).check()
    message = str(err.value)
    assert str(tmp_path / CHECKPOINTS["vit_b"]) in message and "\n" not in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in message
    with pytest.raises(ModelNotFoundError) as err:
        Sam2Model("b+", checkpoint=str(tmp_path / "mine.pt")).check()
    message = str(err.value)
    assert str(tmp_path / "mine.pt") in message and "sam2.1_hiera_base_plus.pt" in message
    assert "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_base_plus.pt" in message


def test_a_broken_checkpoint_file_is_one_line(tmp_path):
    path = tmp_path / CHECKPOINTS["vit_b"]
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotFoundError, match="cannot be read as a SAM vit_b checkpoint"):
        SamModel("vit_b", checkpoint=str(path)).build()


@pytest.mark.parametrize("method,file", [("sam_modal", "sam_vit_h_4b8939.pth"),
                                         ("sam2_modal", "sam2.1_hiera_large.pt")])
def test_cli_without_checkpoint_says_one_line_and_exits_2(method, file, tmp_path):
    out = in_process("amodal-run", f"method={method}", f"extractor.model.checkpoint=/nowhere/{file}", "logger=none",
                     "dataset.n_images=1", "output.progress=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("amodal-run: error: ") and f"/nowhere/{file} not found" in line
    assert f"wget -O /nowhere/{file} https://dl.fbaipublicfiles.com/" in line


def test_sweep_over_both_tiny_extractors_runs_in_one_process(tmp_path):
    sweep = tmp_path / "sweep"
    out = in_process("amodal-run", "-m", "method=sam_modal", "extractor=tiny_sam,tiny_sam2", "logger=none",
                     "dataset.n_images=1", "dataset.size=256", "dataset.limit=3", "output.progress=false",
                     f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    assert "Launching 2 jobs locally" in out.stdout + out.stderr
    rows = {}
    for job, target in [("0", "TinySamModel"), ("1", "TinySam2Model")]:
        config = (sweep / job / ".hydra" / "config.yaml").read_text()
        assert f"amodal.models.{'sam' if job == '0' else 'sam2'}.{target}" in config
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["n"] > 0
        rows[job] = [json.loads(line) for line in (sweep / job / "results.jsonl").read_text().splitlines()]
    assert [r["object_id"] for r in rows["0"]] == [r["object_id"] for r in rows["1"]]
    assert [r["predicted_area"] for r in rows["0"]] != [r["predicted_area"] for r in rows["1"]]


CHECKPOINT_DIR = os.environ.get("AMODAL_CHECKPOINTS", "checkpoints")
REAL = {  # the smallest official models, from $AMODAL_CHECKPOINTS (or the Hugging Face cache for sam2)
    "sam": (["extractor.model.size=vit_b"], SamModel("vit_b", checkpoint_dir=CHECKPOINT_DIR)),
    "sam2": (["extractor.model.size=t"], Sam2Model("t", checkpoint_dir=CHECKPOINT_DIR)),
}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.weights(model))
                                  for name, (_, model) in sorted(REAL.items())])
def test_real_segmenter_segments_a_flat_square_from_points_in_its_left_half(name, tmp_path):
    overrides, model = REAL[name]
    checkpoint = model.check()
    extractor = extractor_from_config(name, tmp_path, *overrides, f"extractor.model.checkpoint={checkpoint}")
    image = np.full((256, 256, 3), 30, dtype=np.uint8)
    image[64:192, 64:192] = (230, 200, 40)
    visible = np.zeros((256, 256), dtype=bool)
    visible[64:192, 64:128] = True
    mask = extractor(ExtractionInput(inpainted=image, visible=visible, area=visible, seed=0))
    square = np.zeros_like(visible)
    square[64:192, 64:192] = True
    assert (mask & square).sum() / (mask | square).sum() > 0.9


def test_real_sam2_loading_path_on_random_weights(tmp_path):
    """Sam2Model builds the official hiera_t from sam2's packaged YAML and loads an official-format
    checkpoint ({"model": state_dict}); random weights stand in for the real file."""
    import torch

    from amodal.models.sam2 import build_sam2_module
    from amodal.seeding import seeded

    reference = seeded(3, lambda: build_sam2_module(sam2_config("sam2.1_hiera_t.yaml")))
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": reference.state_dict()}, path)
    loaded = Sam2Model("t", checkpoint=str(path)).build()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_another_models_checkpoint_is_refused_in_one_line(tmp_path):
    import torch

    from amodal.models.sam import TinySamModel

    path = tmp_path / CHECKPOINTS["vit_b"]
    torch.save(TinySamModel().build().state_dict(), path)
    with pytest.raises(ModelNotFoundError, match=f"{path} is not a SAM vit_b checkpoint") as err:
        SamModel("vit_b", checkpoint=str(path)).build()
    assert "\n" not in str(err.value)
