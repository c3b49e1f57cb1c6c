"""The Hydra app end to end on the embedded default: metrics, resume, errors, sweeps and reports."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from amodal.config import build
from amodal.data.synthetic import SyntheticDataset
from amodal.eval.results import read_rows
from tests.helpers import REPO, cli, composed, in_process, write_png

LIMIT = ["dataset.n_images=4"]


def test_oracle_proves_the_geometry_for_whole_image_and_crop_views(run_app, tmp_path):
    metrics, run_dir = run_app("method=oracle", *LIMIT, run_dir=tmp_path / "whole")
    assert metrics["miou"] >= 0.99 and metrics["n"] > 5
    metrics, _ = run_app("method=oracle", "view.mode=crop", "view.size=256", *LIMIT, run_dir=tmp_path / "crop")
    assert metrics["miou"] >= 0.99
    assert {"metrics.json", "pictures", "results.jsonl", ".hydra"} <= {p.name for p in run_dir.iterdir()}
    assert len(list((run_dir / "pictures").glob("*.png"))) == 4


def test_the_oracle_sees_the_view_an_inpainter_would(run_app, tmp_path):
    """view.size (by default the backbone's resolution) sizes the oracle's view, as the inpainter's."""
    dataset = SyntheticDataset(n_images=1)
    sample = dataset.load(dataset.keys()[0])
    for overrides, side in ((["backbone=sd15"], 512), (["view.size=256"], 256),
                            (["view.mode=crop", "view.size=64"], 64)):
        with composed(["method=oracle", *overrides], tmp_path) as cfg:
            oracle = build(cfg.method, "method")
        (prediction,) = oracle.predict([sample], [0])
        assert prediction.pictures["inpainted"].shape == (side, side, 3), overrides
    coarse, _ = run_app("method=oracle", "view.size=16", *LIMIT, run_dir=tmp_path / "coarse")
    assert coarse["miou"] < 0.95  # a 16 px view of a 512 px scene loses the outlines


def test_simple_methods_score_below_the_oracle(run_app, tmp_path):
    visible, visible_dir = run_app("method=visible", *LIMIT, run_dir=tmp_path / "v")
    hull, _ = run_app("method=area", "area=hull", *LIMIT, run_dir=tmp_path / "h")
    rect, _ = run_app("method=area", "area=rect", *LIMIT, run_dir=tmp_path / "r")
    for metrics in (visible, hull, rect):
        assert 0.3 < metrics["miou"] < 0.99
    assert rect["miou"] < hull["miou"]  # boxes add background the hull does not
    # V ⊆ A, so IoU(V, A) = |V| / |A| = 1 − the occlusion rate, object by object and in the mean
    scored = [r for r in read_rows(visible_dir / "results.jsonl") if r.get("iou") is not None]
    assert len(scored) == visible["n"] > 5
    assert [r["iou"] for r in scored] == pytest.approx([1 - r["occlusion_rate"] for r in scored])
    assert visible["miou"] == pytest.approx(np.mean([1 - r["occlusion_rate"] for r in scored]))


def test_results_rows_hold_the_contract_fields(run_app):
    _, run_dir = run_app("method=visible", "dataset.n_images=1")
    rows = read_rows(run_dir / "results.jsonl")
    for field in ("dataset", "image_id", "object_id", "occlusion_rate", "iou", "seconds"):
        assert all(field in r for r in rows)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [b["label"] for b in metrics["buckets"]] == ["≤50%", "≤40%", "≤30%", "≤20%", "≤10%", "≤5%"]
    assert metrics["peak_memory_mb"] > 0


def test_a_run_killed_halfway_resumes_to_the_same_rows_and_metrics(tmp_path):
    args = ["amodal-run", "logger=none", "method=oracle", "dataset.n_images=10", "output.progress=false"]
    reference = in_process(*args, f"hydra.run.dir={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr
    run_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([f"{os.path.dirname(sys.executable)}/amodal-run", *args[1:],
                                f"hydra.run.dir={run_dir}"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    results = run_dir / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not results.exists() or len(results.read_bytes().splitlines()) < 8):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(read_rows(results))
    total = len(read_rows(tmp_path / "ref" / "results.jsonl"))
    assert 0 < done_before < total, "the run should have been killed halfway"
    resumed = in_process(*args, f"hydra.run.dir={run_dir}")
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(results)
    keys = [(r["image_id"], r["object_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == total
    ref_metrics = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("miou", "pixel_iou", "n", "buckets", "counts"):
        assert metrics[key] == ref_metrics[key]


def test_resuming_with_another_config_is_refused(run_app, tmp_path):
    from amodal.errors import ConfigError

    run_app("method=visible", "dataset.n_images=1", run_dir=tmp_path / "x")
    with pytest.raises(ConfigError, match="holds results of another config"):
        run_app("method=area", "dataset.n_images=1", run_dir=tmp_path / "x")


def test_multirun_sweep_and_report(tmp_path):
    sweep = tmp_path / "sweep"
    result = in_process("amodal-run", "-m", "logger=none", "method=area", "area=hull,rect,visible",
                        "dataset.n_images=2", "output.progress=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    report = cli("amodal-report", str(sweep), "--csv", str(tmp_path / "t.csv"), "--latex", str(tmp_path / "t.tex"))
    assert report.returncode == 0, report.stderr
    lines = [line for line in report.stdout.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| run | area | mIoU | ≤50%")
    assert [line.split("|")[2].strip() for line in lines[1:]] == ["hull", "rect", "visible"]
    assert (tmp_path / "t.csv").read_text().count("\n") == 4
    assert r"\begin{tabular}" in (tmp_path / "t.tex").read_text()


def test_bad_input_gets_one_clear_line(tmp_path, folder_dataset):
    missing = in_process("amodal-run", "logger=none", "dataset=folder", f"hydra.run.dir={tmp_path / 'a'}")
    assert missing.returncode == 2
    assert "dataset.root is not set" in missing.stderr and "Traceback" not in missing.stderr
    unknown = in_process("amodal-run", "method=nonsense", f"hydra.run.dir={tmp_path / 'b'}")
    assert unknown.returncode != 0
    assert "Could not find 'method/nonsense'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_bad_objects_are_skipped_and_counted_not_fatal(run_app, folder_dataset):
    image_id = "scene00000"
    write_png(folder_dataset / "visible" / image_id / "empty.png", np.zeros((128, 128), bool))
    write_png(folder_dataset / "visible" / image_id / "wrong_size.png", np.ones((64, 64), bool))
    metrics, run_dir = run_app("dataset=folder", f"dataset.root={folder_dataset}", "method=visible")
    skipped = metrics["counts"]["skipped"]
    assert skipped.pop("empty visible mask") == 1
    (reason,) = skipped
    assert "wrong_size.png" in reason and "64×64" in reason
    assert metrics["n"] > 0


def test_without_ground_truth_masks_are_saved_and_nothing_is_scored(run_app, folder_dataset):
    import shutil

    shutil.rmtree(folder_dataset / "amodal")
    metrics, run_dir = run_app("dataset=folder", f"dataset.root={folder_dataset}", "method=area")
    assert metrics["n"] == 0 and metrics["counts"]["without_ground_truth"] > 0
    masks = list((run_dir / "masks").rglob("*.png"))
    assert len(masks) == metrics["counts"]["predicted"]


def test_an_unoccluded_object_with_an_empty_amodal_mask_is_named_by_its_amodal_mask():
    from amodal.eval.evaluator import skip_reason
    from amodal.sample import Sample

    empty = np.zeros((4, 4), bool)  # COCO-A: no visible_mask, so V is A, and A decoded to nothing
    sample = Sample("cocoa", "1", "2_0", np.zeros((4, 4, 3), np.uint8), visible=empty, amodal=empty)
    assert skip_reason(sample) == "empty amodal mask"
    assert skip_reason(Sample("folder", "1", "a", sample.image, visible=empty)) == "empty visible mask"


def test_the_run_folder_records_the_config_as_composed_and_resolved(run_app):
    """.hydra/config.yaml keeps interpolations such as ${device:auto}; resolved.yaml beside it holds what ran."""
    import yaml

    from amodal.config import auto_device

    _, run_dir = run_app("method=visible", "dataset.n_images=1")
    composed = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    resolved = yaml.safe_load((run_dir / ".hydra" / "resolved.yaml").read_text())
    assert composed["runtime"]["device"] == "${device:auto}" and composed["view"]["size"] == "${backbone.resolution}"
    assert resolved["runtime"]["device"] == auto_device()
    assert resolved["view"]["size"] == resolved["backbone"]["resolution"] == 1024
    assert "method=visible" in yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    hydra_yaml = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())
    assert hydra_yaml["hydra"]["runtime"]["choices"]["method"] == "visible"


def test_run_log_records_the_choices_where_the_results_are_and_the_metrics(tmp_path):
    run_dir = tmp_path / "run"
    result = in_process("amodal-run", "logger=none", "method=area", "area=rect", "dataset.n_images=1",
                        "output.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    log = (run_dir / "run.log").read_text()
    assert "choices: dataset=synthetic method=area area=rect; device cpu, dtype float32, seed 0" in log
    assert f"results: {run_dir / 'results.jsonl'}" in log and f"metrics: {run_dir / 'metrics.json'}" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (miou,) = [line for line in log.splitlines() if line.startswith("| mIoU |")]
    assert miou.split("|")[2].strip() == f"{100 * metrics['miou']:.1f}"
    assert f"| n | {metrics['n']} |" in log
