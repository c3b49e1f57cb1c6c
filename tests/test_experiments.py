"""Every experiment runs as a tiny sweep on the CPU, and its report shows the paper's tables beside ours.

The command is the one the issue names — ``amodal-run -m experiment=<name> backbone=tiny_sd
extractor=tiny_sam dataset=synthetic dataset.limit=4`` — with fewer denoising steps and scenes for
speed; a sweep over the depth area uses the tiny depth model.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from amodal.config import config_dir
from amodal.eval.paper import compare, metric, parse_column
from amodal.eval.runs import RunRecord, find_runs, load_runs
from tests.helpers import REPO, in_process

EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
TINY = ["backbone=tiny_sd", "extractor=tiny_sam", "dataset=synthetic", "dataset.limit=4", "dataset.n_images=2",
        "dataset.size=256",
        "backbone.steps=1", "logger=none", "output.progress=false", "output.pictures=1"]
EXTRA = {"area_types": ["area=hull,rect,tiny_depth"], "search": ["hydra.sweeper.n_trials=2"]}


def sweep_size(name: str) -> int:
    params = (yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text()).get("hydra") or {})
    params = (params.get("sweeper") or {}).get("params") or {}
    size = 1
    for key, values in params.items():
        if key != "dataset":  # dataset=synthetic replaces the sweep over datasets
            size *= len(str(values).split(","))
    return size


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_tiny_and_reports_beside_the_paper(name, tmp_path):
    sweep = tmp_path / "sweep"
    result = in_process("amodal-run", "-m", f"experiment={name}", *TINY, *EXTRA.get(name, []),
                        f"cache.dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    expected = 2 if name == "search" else sweep_size(name)
    assert len(runs) == expected
    for run in runs:
        assert json.loads((run / "metrics.json").read_text())["n"] == 4  # dataset.limit counts scored objects
    assert (sweep / "report" / "report.md").is_file() and (sweep / "report" / "buckets.png").is_file()
    report = in_process("amodal-report", str(sweep))
    assert report.returncode == 0, report.stderr
    paper = yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text()).get("paper") or []
    records = load_runs(find_runs([sweep]))
    for spec in paper:
        table = compare(spec, as_on_the_papers_data(records, spec))
        assert not table.warnings, table.warnings
        for (label, cells), row in zip(table.rows, spec["rows"]):
            if "match" in row:  # filled from a run of the sweep (a bucket the 4 objects leave empty has n=0)
                assert all(cell.runs and (cell.ours is not None or cell.n == 0) for cell in cells), label


STAND_INS = {"area": {"tiny_depth": "depth"}}
"""The tiny models the sweeps run with in place of the paper's."""


def as_on_the_papers_data(records: list[RunRecord], spec: dict) -> list[RunRecord]:
    """The tiny sweeps run on synthetic scenes in place of the paper's datasets: each run as if it had run
    on every dataset the table names (one copy per dataset), so that a row finds exactly its runs."""
    named = {str(spec.get("where", {}).get("dataset", ""))} | {
        str(row.get("match", {}).get("dataset", "")) for row in spec["rows"]} | {
        parse_column(c)[1].get("dataset", "") for c in spec["columns"]}
    datasets = sorted(named - {""}) or [None]
    relabelled = []
    for record in records:
        choices = {k: STAND_INS.get(k, {}).get(v, v) for k, v in record.choices.items()}
        for dataset in datasets:
            relabelled.append(dataclasses.replace(record, choices=choices if dataset is None
                                                  else {**choices, "dataset": dataset}))
    return relabelled


def record(choices, miou, buckets):
    metrics = {"miou": miou, "pixel_iou": miou, "n": 10, "seconds_per_object": 0.5, "peak_memory_mb": 2048.0,
               "buckets": [{"max_occlusion": b, "label": "", "miou": v, "n": 5} for b, v in buckets]}
    return RunRecord(path=None, metrics=metrics, choices=choices, config={"backbone": {"s": choices.get("s")}})


def test_a_paper_table_is_filled_from_the_matching_runs():
    runs = [record({"variant": "ours_sd15", "dataset": "cocoa", "s": 0.3}, 0.8, [(0.5, 0.81), (0.4, 0.83)]),
            record({"variant": "ours_sdxl", "dataset": "cocoa", "s": 0.3}, 0.7, [(0.5, 0.85), (0.4, 0.84)]),
            record({"variant": "ours_sd15", "dataset": "kins", "s": 0.1}, 0.6, [(0.5, 0.61), (0.4, 0.62)])]
    spec = {"table": "T", "where": {"dataset": "cocoa"}, "columns": ["le50", "le40", "miou@dataset=kins"],
            "rows": [{"label": "sd15", "match": {"variant": "ours_sd15"}, "values": [80.0, None, 50.0]},
                     {"label": "best", "match": {"backbone.s": 0.3}, "reduce": "max", "values": [90.0, 90.0, 1.0]},
                     {"label": "paper only", "values": [70.0, 71.0, 72.0]}]}
    table = compare(spec, runs)
    assert table.labels == ["≤50%", "≤40%", "mIoU"]  # headings say mIoU (issue 26)
    (_, sd15), (_, best), (_, paper_only) = table.rows
    assert sd15[0].ours == pytest.approx(81.0) and sd15[0].delta == pytest.approx(1.0)
    assert sd15[1].ours == pytest.approx(83.0) and sd15[1].paper is None
    assert sd15[2].ours is None  # the KINS run is outside the table's `where`
    assert best[0].ours == pytest.approx(85.0) and best[1].ours == pytest.approx(84.0)  # the best run per column
    assert all(cell.ours is None for cell in paper_only)
    assert metric(runs[0].metrics, "memory_gb") == 2.0 and metric(runs[0].metrics, "seconds") == 0.5


INDEX = REPO / "experiments" / "README.md"


def index_sections() -> dict[str, str]:
    """experiments/README.md's entries: study name → its text."""
    parts = re.split(r"^## `experiment=(\w+)`$", INDEX.read_text(), flags=re.M)
    names = parts[1::2]
    assert len(set(names)) == len(names), "a study is listed twice"
    return dict(zip(names, parts[2::2]))


def test_the_experiments_index_is_generated_from_the_sweep_files_and_current():
    check = subprocess.run([sys.executable, "scripts/experiments_index.py", "--check"], cwd=REPO, text=True,
                           capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert check.returncode == 0, check.stderr


def test_the_experiments_index_lists_every_study_and_names_no_missing_one():
    sections = index_sections()
    assert sorted(sections) == EXPERIMENTS
    text = INDEX.read_text()
    for name in EXPERIMENTS:
        assert f"[`{name}`](#experiment{name})" in text  # in the summary table, linked to its entry
        assert f"experiment={name}" in sections[name].split("```bash")[1]  # its command


def test_the_experiments_index_holds_exactly_the_papers_numbers_of_each_sweep_file():
    sections = index_sections()
    for name in EXPERIMENTS:
        tables = yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text()).get("paper") or []
        body = [line for line in sections[name].splitlines()
                if line.startswith("| ") and not line.startswith("|  |")]  # a table's rows, not its header
        expected = [f"| {row['label']} | " + " | ".join("–" if v is None else f"{float(v):.1f}" for v in row["values"])
                    + " |" for spec in tables for row in spec["rows"]]
        assert body == expected, name
