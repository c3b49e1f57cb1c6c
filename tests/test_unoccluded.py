"""Objects that will not be scored are not predicted: with ``eval.include_unoccluded=false`` (the
default), unoccluded objects are recorded as unscored, counted, and cost no network pass. On the real
COCO-A demo (tests/data/cocoa_demo: 47 things, 24 of them occluded) that halves the work."""

import json

import pytest

from amodal.errors import ConfigError
from amodal.eval.metrics import UNOCCLUDED
from amodal.eval.results import read_rows
from tests.conftest import REPO, cli

DEMO = REPO / "tests" / "data" / "cocoa_demo"
COCOA = ["dataset=cocoa", f"dataset.root={DEMO}", "output.pictures=0"]


def test_only_the_occluded_objects_of_the_cocoa_demo_go_through_the_diffusion_model(run_app):
    metrics, run_dir = run_app(*COCOA, "method=inpaint", "backbone=tiny_sd", "backbone.steps=1",
                               "backbone.resolution=64", "extractor=diff", "cache.enabled=false")
    assert metrics["objects_inpainted"] == 24
    assert metrics["counts"]["objects"] == 47 and metrics["counts"]["unoccluded"] == 23
    assert metrics["counts"]["unscored"] == {UNOCCLUDED: 23} and metrics["n"] == 24
    unscored = [r for r in read_rows(run_dir / "results.jsonl") if r.get("unscored")]
    assert len(unscored) == 23
    assert all(r["occlusion_rate"] == 0 and r["iou"] is None and "predicted_area" not in r for r in unscored)


def test_with_unoccluded_objects_included_every_object_is_predicted_and_scored(run_app):
    metrics, _ = run_app(*COCOA, "method=visible", "eval.include_unoccluded=true")
    assert metrics["n"] == metrics["counts"]["predicted"] == 47 and metrics["counts"]["unscored"] == {}
    assert metrics["counts"]["unoccluded"] == 23


def test_a_run_cannot_resume_with_include_unoccluded_flipped(run_app, tmp_path):
    """Its unscored rows would otherwise stay unpredicted and silently out of the new mIoU."""
    run_dir = tmp_path / "run"
    run_app(*COCOA, "method=visible", "dataset.limit=5", run_dir=run_dir)
    with pytest.raises(ConfigError, match=r"differs in: eval.include_unoccluded \(true here vs false in the folder\)"):
        run_app(*COCOA, "method=visible", "eval.include_unoccluded=true", run_dir=run_dir)


def test_a_resume_file_written_before_include_unoccluded_counted_still_resumes(run_app, tmp_path):
    run_dir = tmp_path / "run"
    run_app(*COCOA, "method=visible", "dataset.limit=5", run_dir=run_dir)
    resume = run_dir / "resume.json"
    fingerprint = json.loads(resume.read_text())
    del fingerprint["include_unoccluded"]
    resume.write_text(json.dumps(fingerprint))
    metrics, _ = run_app(*COCOA, "method=visible", "dataset.limit=10", run_dir=run_dir)
    assert metrics["counts"]["objects"] == 10


def test_the_report_says_what_it_cannot_score_when_asked_for_unoccluded_objects(run_app):
    _, run_dir = run_app(*COCOA, "method=visible")
    asked = cli("amodal-report", str(run_dir), "--include-unoccluded")
    assert asked.returncode == 0, asked.stderr
    assert "23 unoccluded objects were not predicted" in asked.stderr
    assert "eval.include_unoccluded=true" in asked.stderr
    header, _, row = [line for line in asked.stdout.splitlines() if line.startswith("|")]
    miou = [c.strip() for c in header.split("|")].index("mIoU")
    assert row.split("|")[miou].strip().endswith("(n=24)")  # n: the predicted objects only
    plain = cli("amodal-report", str(run_dir))
    assert plain.returncode == 0 and "not predicted" not in plain.stderr
