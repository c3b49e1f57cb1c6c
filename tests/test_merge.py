"""Sharded evaluation: stable, balanced shards; amodal-merge gives exactly the unsharded run; SLURM config."""

import json
import shutil
from pathlib import Path

import pytest
import tomllib

from amodal.cli.merge import main as merge_main
from amodal.data.base import Shard
from amodal.data.cocoa import CocoaDataset
from amodal.eval.results import read_rows
from amodal.eval.runs import load_run
from amodal.sample import ObjectKey
from tests.helpers import REPO, in_process

RUN = [
    "dataset.n_images=4",
    "dataset.size=128",
    "logger=none",
    "method=oracle",
    "output.progress=false",
    "output.pictures=0",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An unsharded run and the same run as 4 shards of one multirun (the CLI, as users run it)."""
    root = tmp_path_factory.mktemp("runs")
    whole = in_process("amodal-run", *RUN, f"hydra.run.dir={root / 'whole'}")
    assert whole.returncode == 0, whole.stderr
    sweep = in_process(
        "amodal-run",
        "-m",
        "shard.index=range(0,4)",
        "shard.count=4",
        *RUN,
        f"hydra.sweep.dir={root / 'shards'}",
    )
    assert sweep.returncode == 0, sweep.stderr
    return root


def merged(runs, tmp_path, *paths, extra=()):
    shards = tmp_path / "shards"
    if not shards.exists():
        shutil.copytree(runs / "shards", shards)
    return merge_main([*(str(shards / p) for p in paths or [""]), "--out", str(tmp_path / "merged"), *extra])


def keys(path: Path) -> list[tuple[str, str]]:
    return [(r["image_id"], r["object_id"]) for r in read_rows(path / "results.jsonl")]


def test_four_merged_shards_are_exactly_the_unsharded_run(runs, tmp_path, capsys):
    shards = sorted(p.name for p in (runs / "shards").iterdir() if (p / "results.jsonl").exists())
    assert shards == ["0", "1", "2", "3"]  # beside them: the sweep's report/
    sizes = [len(keys(runs / "shards" / str(i))) for i in range(4)]
    assert all(sizes) and sum(sizes) == len(keys(runs / "whole"))
    assert merged(runs, tmp_path) == 0
    out = tmp_path / "merged"
    assert sorted(keys(out)) == sorted(keys(runs / "whole")) and len(set(keys(out))) == sum(sizes)
    whole_rows = {(r["image_id"], r["object_id"]): r for r in read_rows(runs / "whole" / "results.jsonl")}
    for row in read_rows(out / "results.jsonl"):
        reference = whole_rows[row["image_id"], row["object_id"]]
        assert {k: row.get(k) for k in ("iou", "occlusion_rate", "intersection", "union", "seed", "unscored")} == {
            k: reference.get(k) for k in ("iou", "occlusion_rate", "intersection", "union", "seed", "unscored")
        }
    metrics = json.loads((out / "metrics.json").read_text())
    reference = json.loads((runs / "whole" / "metrics.json").read_text())
    for key in ("miou", "pixel_iou", "n", "buckets", "counts", "include_unoccluded"):
        assert metrics[key] == reference[key], key
    assert str(out) in capsys.readouterr().out
    # the merged folder reads like the unsharded run: amodal-report, and its config says one shard
    assert load_run(out).metrics["buckets"] == load_run(runs / "whole").metrics["buckets"]
    assert "shard.index=0" not in (out / ".hydra" / "overrides.yaml").read_text()
    assert json.loads((out / "resume.json").read_text()) == json.loads(
        (runs / "whole" / "resume.json").read_text()
    )


def test_a_missing_shard_is_named(runs, tmp_path, capsys):
    assert merged(runs, tmp_path, "0", "1", "3") == 2
    assert capsys.readouterr().err.strip() == (
        "amodal-merge: error: missing shard 2 of 4 (found 0, 1, 3): run it "
        "with shard.index=… shard.count=4, or pass --partial"
    )
    assert merged(runs, tmp_path, "0", "1", "3", extra=["--partial"]) == 0
    assert len(keys(tmp_path / "merged")) == len(keys(runs / "whole")) - len(keys(runs / "shards" / "2"))


def test_an_object_in_two_shards_is_refused(runs, tmp_path, capsys):
    shutil.copytree(runs / "shards", tmp_path / "shards")
    row = (tmp_path / "shards" / "0" / "results.jsonl").read_text().splitlines()[0]
    with (tmp_path / "shards" / "3" / "results.jsonl").open("a") as handle:
        handle.write(row + "\n")
    assert merged(runs, tmp_path) == 2
    image_id, object_id = json.loads(row)["image_id"], json.loads(row)["object_id"]
    assert capsys.readouterr().err.strip() == (
        f"amodal-merge: error: object {image_id}/{object_id} is in both "
        f"{tmp_path / 'shards' / '0'} and {tmp_path / 'shards' / '3'}"
    )
    assert not (tmp_path / "merged" / "results.jsonl").exists()


def test_shards_of_other_configs_or_repeated_or_unfinished_shards_are_refused(runs, tmp_path, capsys):
    shards = tmp_path / "shards"
    shutil.copytree(runs / "shards", shards)
    resume = json.loads((shards / "3" / "resume.json").read_text())
    (shards / "3" / "resume.json").write_text(json.dumps({**resume, "method": {"name": "area"}}))
    assert merged(runs, tmp_path) == 2
    assert "ran different configs (differ in: method (\"amodal.method." in capsys.readouterr().err
    (shards / "3" / "resume.json").write_text(json.dumps(resume))
    shutil.copytree(shards / "1", tmp_path / "again")
    assert merge_main([str(shards), str(tmp_path / "again"), "--out", str(tmp_path / "merged")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"{shards / '1'} and {tmp_path / 'again'} are both shard 1 of 4")
    )
    (shards / "2" / "metrics.json").unlink()
    assert merged(runs, tmp_path) == 2
    assert "shard 2 of 4" in (err := capsys.readouterr().err) and "has not finished (no metrics.json)" in err


def test_shards_are_balanced_and_keep_their_objects_when_the_dataset_is_filtered(cocoa_dataset):
    keys = [ObjectKey(f"img{i // 7}", f"{i // 7}_{i % 7}") for i in range(20000)]
    sizes = [sum(Shard(i, 4).holds(k) for k in keys) for i in range(4)]
    assert sum(sizes) == 20000 and max(sizes) - min(sizes) < 0.04 * 5000
    things = CocoaDataset(root=str(cocoa_dataset))
    everything = CocoaDataset(root=str(cocoa_dataset), stuff=True)
    for index in range(3):
        shard = Shard(index, 3)
        assert things.keys(shard) == [k for k in everything.keys(shard) if k in things.keys()]
    # with dataset.limit, shards split the unsharded run's objects: tests/test_unoccluded.py


def test_the_console_script_is_declared():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["amodal-merge"] == "amodal.cli.merge:main"


def test_the_slurm_launcher_config_composes_into_an_sbatch_array(tmp_path, monkeypatch):
    """No SLURM here: run the plugin's launch up to the sbatch script it would submit."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.utils import instantiate

    from amodal.config import config_dir

    submitted = {}

    def map_array(executor, function, *arguments):
        submitted["overrides"] = arguments[0]
        submitted["sbatch"] = executor._executor._make_submission_file_text("python job.py", "uid")
        submitted["max_num_timeout"] = executor._executor.max_num_timeout
        submitted["array_parallelism"] = executor._executor.parameters["array_parallelism"]
        return []

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun is there"
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    (sweep,) = OverridesParser.create().parse_overrides(["shard.index=range(0,4)"])
    jobs = [[f"shard.index={i}", "shard.count=4"] for i in sweep.sweep_string_iterator()]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
            cfg = compose(
                "run",
                overrides=[
                    "hydra/launcher=slurm",
                    "hydra.launcher.partition=gpu",
                    f"hydra.sweep.dir={tmp_path}",
                    "hydra.job.name=amodal-run",
                ],
                return_hydra_config=True,
            )
            launcher = instantiate(cfg.hydra.launcher)
            launcher.setup(hydra_context=None, task_function=None, config=cfg)
            launcher.launch(jobs, initial_job_idx=0)
    finally:
        GlobalHydra.instance().clear()
    assert submitted["overrides"] == tuple(jobs) and len(jobs) == 4
    for line in (
        "--partition=gpu",
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--mem=64GB",
        "--time=240",
        "--signal=USR2@120",
        f"--output={tmp_path}/.submitit/%j/%j_0_log.out",
    ):
        assert f"#SBATCH {line}\n" in submitted["sbatch"]
    assert submitted["max_num_timeout"] == 3 and submitted["array_parallelism"] == 64
