"""W&B offline: the run logs its config, metrics, bucket table and panels; a multirun shares a group.

Offline runs are a binary log (``run-<id>.wandb``) plus media files; config values, metric names and
the group are stored as plain protobuf strings, so the tests look for them in the bytes.
"""

import json

from tests.conftest import cli


def offline_runs(run_dir):
    return sorted((run_dir / "wandb").glob("offline-run-*"))


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
    (table,) = (run / "files" / "media" / "table").glob("buckets_*.table.json")
    assert json.loads(table.read_text())["columns"] == ["bucket", "mIoU", "pixel IoU", "objects"]
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
    log = next(summary.glob("*.wandb")).read_bytes()
    assert b"sweep-sweep" in log and b"report" in log  # the sweep's group, job type "report"
    assert list((summary / "files" / "media" / "images").glob("buckets_*.png"))
    (table,) = (summary / "files" / "media" / "table").glob("runs_*.table.json")
    assert len(json.loads(table.read_text())["data"]) == 2
