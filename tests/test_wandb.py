"""W&B offline: the run logs its config, metrics, bucket table and panels; a multirun shares a group.

Offline runs are a binary log (``run-<id>.wandb``) plus media files; config values, metric names and
the group are stored as plain protobuf strings, so the tests look for them in the bytes.
"""

import base64
import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from amodal.eval.results import read_rows
from tests.helpers import cli, composed


def offline_runs(run_dir):
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def records(log: Path):
    """The protobuf ``Record``s of an offline ``run-<id>.wandb``: a header of 7 bytes, then LevelDB's log format
    (32 KiB blocks; each chunk has a 7-byte header of CRC, length and type, 1 a whole record, 2-4 its first,
    middle and last parts)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block, position, record = log.read_bytes(), 32768, 7, b""
    assert data.startswith(b":W&B")
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length, kind = int.from_bytes(data[position + 4:position + 6], "little"), data[position + 6]
        record += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            yield Record.FromString(record)
            record = b""


def run_record(log: Path):
    """The run's record (group, job type, name, tags, config)."""
    for record in records(log):
        if record.WhichOneof("record_type") == "run":
            return record.run
    raise AssertionError(f"no run record in {log}")


def history(log: Path) -> dict:
    """Every value the run logged, by its key (``miou``, ``miou/le50``), decoded; the last one where logged twice."""
    return {"/".join(item.nested_key) or item.key: json.loads(item.value_json)
            for record in records(log) if record.WhichOneof("record_type") == "history"
            for item in record.history.item}


def test_offline_wandb_run_is_written_and_resumed_into_the_same_run(tmp_path):
    args = ["amodal-run", "logger=wandb", "method=visible", "dataset.n_images=1", "output.progress=false",
            f"hydra.run.dir={tmp_path / 'run'}"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    (run,) = offline_runs(tmp_path / "run")
    run_id = (tmp_path / "run" / "wandb_run_id.txt").read_text().strip()
    log = (run / f"run-{run_id}.wandb").read_bytes()
    assert b"amodal.method.baselines.VisiblePredictor" in log  # the resolved config
    assert b"miou/le50" in log and b"method:visible" in log  # metrics and tags
    assert b"miou_occ/le50" in log  # logged as mIoU is
    (table,) = (run / "files" / "media" / "table").glob("buckets_*.table.json")
    buckets = json.loads(table.read_text())
    assert buckets["columns"] == ["bucket", "mIoU", "pixel IoU", "objects", "mIoU_occ", "objects_occ"]
    assert any(row[5] for row in buckets["data"])
    assert all(row[4] == 0.0 for row in buckets["data"] if row[5])  # Â = V completes nothing it hides
    assert len(list((run / "files" / "media" / "images").glob("panels_*.png"))) == 4
    second = cli(*args)  # resuming continues the same W&B run
    assert second.returncode == 0, second.stderr
    assert all(r.name.endswith(run_id) for r in offline_runs(tmp_path / "run"))


def test_runs_of_one_multirun_share_a_group(tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("amodal-run", "-m", "logger=wandb", "method=area", "area=hull,rect", "dataset.n_images=1",
                 "output.progress=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    for job in ("0", "1"):
        (run,) = offline_runs(sweep / job)
        (log,) = run.glob("*.wandb")
        assert b"sweep-sweep" in log.read_bytes()


def test_a_multirun_ends_with_a_summary_run_holding_the_report(tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("amodal-run", "-m", "logger=wandb", "method=area", "area=hull,rect", "dataset.n_images=1",
                 "output.progress=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    (summary,) = (sweep / "report" / "wandb").glob("offline-run-*")
    record = run_record(next(summary.glob("*.wandb")))
    assert (record.run_group, record.job_type) == ("sweep-sweep", "report")
    (run,) = offline_runs(sweep / "0")
    assert run_record(next(run.glob("*.wandb"))).job_type == ""  # the runs themselves have none
    assert list((summary / "files" / "media" / "images").glob("buckets_*.png"))
    (table,) = (summary / "files" / "media" / "table").glob("runs_*.table.json")
    assert len(json.loads(table.read_text())["data"]) == 2


def visible_wandb_run(tmp_path, *overrides: str):
    """(run folder, offline W&B run folder) of ``method=visible`` with ``backbone=sd15`` (which it does not
    read), logged offline to W&B."""
    run_dir = tmp_path / "run"
    result = cli("amodal-run", "logger=wandb", "method=visible", "backbone=sd15", *overrides,
                 "output.progress=False", "output.pictures=0", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    (run,) = offline_runs(run_dir)
    return run_dir, run


def test_a_run_logs_a_row_per_scored_object_and_its_files_as_an_artifact(tmp_path):
    run_dir, run = visible_wandb_run(tmp_path, "dataset.n_images=2")
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    scored = [r for r in read_rows(run_dir / "results.jsonl") if r.get("iou") is not None]
    (table,) = (run / "files" / "media" / "table").glob("objects_*.table.json")
    table = json.loads(table.read_text())
    assert table["columns"] == ["dataset", "image_id", "object_id", "category", "occlusion_rate", "iou", "iou_occ",
                                "seconds"]
    assert len(table["data"]) == len(scored) == metrics["counts"]["scored"] > 5
    assert table["data"] == [[r[c] for c in table["columns"]] for r in scored]
    log = (run / f"run-{run_id}.wandb").read_bytes()
    assert f"results-{run_id}".encode() in log  # the artifact, holding both files with their exact contents
    for name in ("results.jsonl", "metrics.json"):
        digest = base64.b64encode(hashlib.md5((run_dir / name).read_bytes()).digest())
        assert name.encode() in log and digest in log


def test_tags_and_name_hold_only_what_acts_on_the_method(tmp_path):
    run_dir, run = visible_wandb_run(tmp_path, "dataset.n_images=1")
    log = next(run.glob("*.wandb")).read_bytes()
    assert b"method:visible" in log and b"dataset:synthetic" in log
    assert b"backbone:sd15" not in log and b"logger:wandb" not in log  # visible reads no backbone
    assert b"method=visible dataset.n_images=1" in log  # the name: the overrides that act


@pytest.mark.parametrize("overrides,name,tags", [
    (["method=visible", "backbone=sd15", "logger=wandb", "output.progress=False"], "method=visible",
     ["dataset:synthetic", "method:visible"]),
    (["method=area", "area=rect", "backbone.s=0.5", "dataset.limit=3"], "method=area area=rect dataset.limit=3",
     ["dataset:synthetic", "method:area", "area:rect"]),
    (["method=inpaint", "backbone=tiny_sd", "extractor=tiny_sam", "backbone.s=0.5", "cache.enabled=false"],
     "method=inpaint backbone=tiny_sd extractor=tiny_sam backbone.s=0.5",
     ["dataset:synthetic", "method:inpaint", "area:hull", "backbone:tiny_sd", "background:histogram",
      "extractor:tiny_sam", "points:random"]),
    (["variant=sam", "extractor=tiny_sam"], "variant=sam extractor=tiny_sam",
     ["variant:sam", "dataset:synthetic", "method:sam_modal", "extractor:tiny_sam", "points:random"]),
])
def test_run_names_and_tags_come_from_the_choices_that_act(overrides, name, tags, tmp_path):
    from amodal.cli.run import run_identity

    with composed(overrides, tmp_path) as cfg:
        assert run_identity(cfg) == (name, None, tags)


def test_wandb_shows_ious_in_percent_a_name_without_paths_the_choices_and_same_size_panels(tmp_path):
    """It logged metrics.json's fractions (a W&B mIoU of 0.55 beside a report's 55.0), named the run with the
    dataset's absolute root, had no ``choices/…`` keys to group runs by, and warned "Images sizes do not
    match" on every run whose images differ in size (the COCO-A demo's do)."""
    demo = Path(__file__).parent / "data" / "cocoa_demo"
    run_dir = tmp_path / "run"
    result = cli("amodal-run", "logger=wandb", "method=visible", "dataset=cocoa", f"dataset.root={demo.resolve()}",
                 "dataset.limit=4", "output.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    assert "sizes do not match" not in result.stdout + result.stderr
    (run,) = offline_runs(run_dir)
    log = next(run.glob("*.wandb"))
    record = run_record(log)
    assert record.display_name == "method=visible dataset=cocoa dataset.root=cocoa_demo dataset.limit=4"
    config = {item.key: json.loads(item.value_json) for item in record.config.update}
    assert {k: v for k, v in config.items() if k.startswith("choices/")} == {
        "choices/dataset": "cocoa", "choices/method": "visible"}  # visible reads no backbone: no choices/backbone

    metrics = json.loads((run_dir / "metrics.json").read_text())
    logged = history(log)
    assert logged["miou"] == pytest.approx(100 * metrics["miou"]) and logged["n"] == metrics["n"] == 4
    assert logged["pixel_iou"] == pytest.approx(100 * metrics["pixel_iou"])
    le50 = next(b for b in metrics["buckets"] if b["max_occlusion"] == 0.5)
    assert logged["miou/le50"] == pytest.approx(100 * le50["miou"]) and logged["n/le50"] == le50["n"]
    (table,) = (run / "files" / "media" / "table").glob("buckets_*.table.json")
    rows = {row[0]: row for row in json.loads(table.read_text())["data"]}
    assert rows[le50["label"]][1] == pytest.approx(100 * le50["miou"])

    panels = sorted((run / "files" / "media" / "images").glob("panels_*.png"))
    originals = sorted((run_dir / "pictures").glob("*.png"))
    assert len(panels) == len(originals) == 4
    assert len({Image.open(p).size for p in originals}) > 1  # panels of images of different sizes ...
    assert len({Image.open(p).size for p in panels}) == 1  # ... on one canvas in W&B


@pytest.mark.parametrize("override,shown", [
    ("dataset.root=/home/someone/data/cocoa", "dataset.root=cocoa"),
    ("dataset.root=/datasets/cocoa/", "dataset.root=cocoa"),
    ("paths.data=data", "paths.data=data"),
    ("dataset.annotations=C:\\data\\kins\\update_test_2020.json", "dataset.annotations=update_test_2020.json"),
    ("backbone.s=0.3", "backbone.s=0.3"),
])
def test_a_path_in_a_run_name_is_its_last_part(override, shown):
    from amodal.loggers import short_override

    assert short_override(override) == shown
