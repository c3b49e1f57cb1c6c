"""Objects that will not be scored are not predicted: with ``eval.include_unoccluded=false`` (the
default), unoccluded objects are recorded as unscored, counted, and cost no network pass. On the real
COCO-A demo (tests/data/cocoa_demo: 47 things, 24 of them occluded) that halves the work."""

import json

import pytest

from amodal.errors import ConfigError
from amodal.eval.metrics import UNOCCLUDED
from amodal.eval.results import read_rows
from tests.helpers import REPO, in_process

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
    assert metrics["n"] == 10  # dataset.limit counts scored objects


def test_the_report_says_what_it_cannot_score_when_asked_for_unoccluded_objects(run_app):
    _, run_dir = run_app(*COCOA, "method=visible")
    asked = in_process("amodal-report", str(run_dir), "--include-unoccluded")
    assert asked.returncode == 0, asked.stderr
    assert "23 unoccluded objects were not predicted" in asked.stderr
    assert "eval.include_unoccluded=true" in asked.stderr
    header, _, row = [line for line in asked.stdout.splitlines() if line.startswith("|")]
    miou = [c.strip() for c in header.split("|")].index("mIoU")
    assert row.split("|")[miou].strip().endswith("(n=24)")  # n: the predicted objects only
    plain = in_process("amodal-report", str(run_dir))
    assert plain.returncode == 0 and "not predicted" not in plain.stderr


# -- dataset.limit counts scored objects (issue 26 item 9) ------------------------------------------------


def keys_of(rows: list[dict], scored: bool | None = None) -> list[tuple[str, str]]:
    return [(r["image_id"], r["object_id"]) for r in rows if scored is None or (r.get("iou") is not None) == scored]


@pytest.fixture(scope="module")
def whole_demo(tmp_path_factory):
    """The rows of method=visible over the whole demo, in dataset order."""
    from amodal.cli.run import evaluate
    from tests.helpers import composed

    run_dir = tmp_path_factory.mktemp("whole") / "run"
    with composed([*COCOA, "method=visible", "logger=none", "output.progress=false"], run_dir) as cfg:
        evaluate(cfg)
    return read_rows(run_dir / "results.jsonl")


def test_debug_fast_scores_four_objects_and_records_the_unoccluded_ones_before_them(run_app, whole_demo):
    """It scored 4 objects of which 3 were unoccluded (the demo's first four), so its mIoU was of one object."""
    metrics, run_dir = run_app(*COCOA, "method=visible", "debug=fast")
    rows = read_rows(run_dir / "results.jsonl")
    assert metrics["n"] == metrics["counts"]["predicted"] == 4
    # the first objects of the dataset up to its 4th occluded one, and not one more
    fourth = keys_of(whole_demo).index(keys_of(whole_demo, scored=True)[3])
    assert keys_of(rows) == keys_of(whole_demo)[: fourth + 1]
    assert metrics["counts"]["unoccluded"] == sum(r.get("unscored") == UNOCCLUDED for r in rows) == fourth + 1 - 4 > 0


def test_with_unoccluded_objects_included_the_limit_counts_them(run_app, whole_demo):
    metrics, run_dir = run_app(*COCOA, "method=visible", "dataset.limit=4", "eval.include_unoccluded=true")
    assert metrics["n"] == 4 and keys_of(read_rows(run_dir / "results.jsonl")) == keys_of(whole_demo)[:4]


def test_shards_split_the_objects_the_limit_selects(run_app, whole_demo, tmp_path):
    """Each shard counts the scored objects of all shards, so merged they are the unsharded run's."""
    shards = [read_rows(run_app(*COCOA, "method=visible", "dataset.limit=7", "shard.count=3", f"shard.index={i}",
                                run_dir=tmp_path / f"shard{i}")[1] / "results.jsonl") for i in range(3)]
    assert all(shards)
    fresh = read_rows(run_app(*COCOA, "method=visible", "dataset.limit=7", run_dir=tmp_path / "whole")[1]
                      / "results.jsonl")
    assert len(keys_of(fresh, scored=True)) == 7
    assert sorted(k for rows in shards for k in keys_of(rows)) == sorted(keys_of(fresh))


def test_a_resumed_run_counts_the_objects_it_scored_before(run_app, tmp_path):
    run_dir = tmp_path / "run"
    run_app(*COCOA, "method=visible", "dataset.limit=3", run_dir=run_dir)
    metrics, _ = run_app(*COCOA, "method=visible", "dataset.limit=6", run_dir=run_dir)
    fresh, _ = run_app(*COCOA, "method=visible", "dataset.limit=6", run_dir=tmp_path / "fresh")
    assert metrics["n"] == 6 and metrics["counts"] == fresh["counts"]
    assert keys_of(read_rows(run_dir / "results.jsonl")) == keys_of(read_rows(tmp_path / "fresh" / "results.jsonl"))
