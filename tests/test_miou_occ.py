"""mIoU_occ (C2F-Seg's IoU of the hidden part, IoU(Â \\ V, A \\ V)) and the per-category table, end to end:
on the real COCO-A demo (tests/data/cocoa_demo) against an independent computation from the saved masks, and
through amodal-report (tables, --by category, --metric miou_occ, paper columns, old run folders)."""

import csv
import io
import json

import numpy as np
import pytest

from amodal.data.cocoa import CocoaDataset
from amodal.data.files import mask_path, read_mask
from amodal.eval.paper import compare
from amodal.eval.plot import bucket_figure
from amodal.eval.results import read_rows
from amodal.eval.runs import find_runs, load_runs
from amodal.sample import ObjectKey
from tests.helpers import REPO, in_process

DEMO = REPO / "tests" / "data" / "cocoa_demo"
COCOA = ["dataset=cocoa", f"dataset.root={DEMO}", "output.pictures=0"]


def c2f_hidden_iou(predicted: np.ndarray, amodal: np.ndarray, visible: np.ndarray) -> float | None:
    """C2F-Seg's reading, in its own arithmetic: masks as integers, the visible mask subtracted, > 0.5."""
    hidden_truth = (amodal.astype(np.int64) - visible.astype(np.int64)) > 0.5
    hidden_predicted = (predicted.astype(np.int64) - visible.astype(np.int64)) > 0.5
    if hidden_truth.sum() == 0:
        return None  # C2F-Seg's ``counts -= 1``
    return float((hidden_predicted * hidden_truth).sum() / (hidden_predicted + hidden_truth).sum())


@pytest.fixture(scope="module")
def area_run(tmp_path_factory):
    """method=area on the COCO-A demo, its masks saved."""
    run_dir = tmp_path_factory.mktemp("area") / "run"
    result = in_process("amodal-run", *COCOA, "method=area", "output.save_masks=true", "logger=none",
                        "output.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_miou_occ_of_method_area_on_the_cocoa_demo_is_c2f_segs(area_run):
    metrics = json.loads((area_run / "metrics.json").read_text())
    dataset = CocoaDataset(root=str(DEMO))
    rows = [r for r in read_rows(area_run / "results.jsonl") if r.get("iou") is not None and not r.get("unscored")]
    expected = {}
    for row in rows:
        key = ObjectKey(row["image_id"], row["object_id"])
        sample = dataset.load(key)
        predicted = read_mask(mask_path(area_run / "masks", key))
        expected[key] = c2f_hidden_iou(predicted, sample.amodal, sample.visible)
        assert row["iou_occ"] == pytest.approx(expected[key], abs=1e-12) if expected[key] is not None \
            else row["iou_occ"] is None
    scored = [v for v in expected.values() if v is not None]
    assert len(rows) == 24 and 0 < len(scored) and 0 < metrics["miou_occ"] < 1
    assert metrics["n_occ"] == len(scored)
    assert metrics["miou_occ"] == pytest.approx(sum(scored) / len(scored), abs=1e-12)
    le50 = [v for row, v in zip(rows, expected.values()) if v is not None and row["occlusion_rate"] <= 0.5]
    bucket = next(b for b in metrics["buckets"] if b["max_occlusion"] == 0.5)
    assert bucket["n_occ"] == len(le50) and bucket["miou_occ"] == pytest.approx(sum(le50) / len(le50), abs=1e-12)
    log = (area_run / "run.log").read_text()  # the table amodal-run prints at the end
    assert f"| mIoU_occ | {100 * metrics['miou_occ']:.1f} |" in log and f"| n_occ | {len(scored)} |" in log


def test_categories_of_the_cocoa_demo_and_the_report_by_category(area_run):
    metrics = json.loads((area_run / "metrics.json").read_text())
    rows = [r for r in read_rows(area_run / "results.jsonl") if r.get("iou") is not None and not r.get("unscored")]
    by_name: dict[str, list[float]] = {}
    for row in rows:
        by_name.setdefault(row["category"], []).append(row["iou"])
    assert set(metrics["categories"]) == set(by_name) and len(by_name) > 1
    for name, ious in by_name.items():
        assert metrics["categories"][name]["n"] == len(ious)
        assert metrics["categories"][name]["miou"] == pytest.approx(sum(ious) / len(ious), abs=1e-12)
    report = in_process("amodal-report", str(area_run), "--by", "category")
    assert report.returncode == 0, report.stderr
    table = [line.split("|")[1:-1] for line in report.stdout.splitlines() if line.startswith("| ")]
    header, *body = [[cell.strip() for cell in line] for line in table]
    assert header[0] == "category" and len(header) == 2
    assert [row[0] for row in body] == [*sorted(by_name), "all"]
    for name, cell in body[:-1]:
        ious = by_name[name]
        assert cell == f"{100 * sum(ious) / len(ious):.1f} (n={len(ious)})"
    hidden = in_process("amodal-report", str(area_run), "--by", "category", "--metric", "miou_occ")
    assert hidden.returncode == 0, hidden.stderr
    assert f"| all | {100 * metrics['miou_occ']:.1f} (n={metrics['n_occ']}) |" in hidden.stdout


def test_the_report_refuses_by_category_when_no_run_names_one(run_app):
    _, run_dir = run_app("method=visible", "dataset.n_images=1")
    results = run_dir / "results.jsonl"  # as a dataset that names no category writes it
    results.write_text("".join(json.dumps({**r, "category": ""}) + "\n" for r in read_rows(results)))
    report = in_process("amodal-report", str(run_dir), "--by", "category")
    assert report.returncode == 2 and "none of the runs names categories" in report.stderr
    assert "Traceback" not in report.stderr


def test_the_runs_table_and_the_plot_carry_miou_occ(area_run, tmp_path, monkeypatch):
    from amodal.eval import plot

    metrics = json.loads((area_run / "metrics.json").read_text())
    out = tmp_path / "report"
    drawn = []  # the report's buckets.png: which metric it was drawn for
    monkeypatch.setattr(plot, "bucket_figure", lambda records, tables=(), baseline=False, metric="miou":
                        drawn.append(metric) or bucket_figure(records, tables, baseline, metric))
    report = in_process("amodal-report", str(area_run), "--out", str(out), "--metric", "miou_occ")
    assert report.returncode == 0, report.stderr
    assert (out / "buckets.png").is_file() and drawn == ["miou_occ"]
    header, _, row = [line.split("|")[1:-1] for line in report.stdout.splitlines() if line.startswith("|")][:3]
    header, row = [c.strip() for c in header], [c.strip() for c in row]
    assert row[header.index("mIoU_occ")] == f"{100 * metrics['miou_occ']:.1f} (n={metrics['n_occ']})"
    (table,) = csv.DictReader(io.StringIO((out / "runs.csv").read_text()))
    assert float(table["miou_occ"]) == pytest.approx(100 * metrics["miou_occ"], abs=1e-4)
    assert int(table["n_occ_le50"]) == metrics["buckets"][0]["n_occ"]
    (record,) = load_runs(find_runs([area_run]))
    figure = bucket_figure([record], metric="miou_occ")
    (line,) = figure.axes[0].get_lines()
    assert list(line.get_ydata()) == pytest.approx([100 * b["miou_occ"] for b in metrics["buckets"]])
    assert figure.axes[0].get_ylabel() == "mIoU_occ (%)"


def test_an_old_run_folder_without_iou_occ_reports_it_empty_not_zero(area_run, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    rows = [{k: v for k, v in r.items() if k != "iou_occ"} for r in read_rows(area_run / "results.jsonl")]
    (old / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = json.loads((area_run / "metrics.json").read_text())
    (old / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items()
                                                  if k not in ("miou_occ", "n_occ", "categories")}))
    out = tmp_path / "report"
    report = in_process("amodal-report", str(old), "--out", str(out), "--metric", "miou_occ")
    assert report.returncode == 0, report.stderr
    header, _, row = [line.split("|")[1:-1] for line in report.stdout.splitlines() if line.startswith("|")][:3]
    header, row = [c.strip() for c in header], [c.strip() for c in row]
    assert row[header.index("mIoU_occ")] == "–"
    assert row[header.index("mIoU")] == f"{100 * metrics['miou']:.1f} (n={metrics['n']})"  # the rest as before
    (table,) = csv.DictReader(io.StringIO((out / "runs.csv").read_text()))
    assert table["miou_occ"] == "" and table["n_occ"] == "" and table["miou"] != ""
    (old / "results.jsonl").unlink()  # only an old metrics.json left
    again = in_process("amodal-report", str(old))
    assert again.returncode == 0, again.stderr
    header, _, row = [line.split("|")[1:-1] for line in again.stdout.splitlines() if line.startswith("|")][:3]
    assert [c.strip() for c in row][[c.strip() for c in header].index("mIoU_occ")] == "–"


def test_a_paper_column_the_paper_has_no_number_for_stays_empty_on_its_side(area_run):
    (record,) = load_runs(find_runs([area_run]))
    spec = {"table": "T", "columns": ["miou", "miou_occ"],
            "rows": [{"label": "area", "match": {"method": "area"}, "values": [70.0]}]}
    (label, (miou, hidden)), = compare(spec, [record]).rows
    assert miou.paper == 70.0 and hidden.paper is None
    assert hidden.ours == pytest.approx(100 * record.metrics["miou_occ"]) and hidden.n == record.metrics["n_occ"]


def test_seeds_made_one_row_average_miou_occ_and_the_categories_too(tmp_path):
    """``--seeds`` must not show the first seed's mIoU_occ or categories as the group's."""
    from amodal.eval.runs import RunRecord
    from amodal.eval.spread import seed_groups

    def run(seed: int, miou_occ: float | None, cat: float) -> RunRecord:
        metrics = {"miou": 0.5, "n": 4, "pixel_iou": 0.5, "miou_occ": miou_occ, "n_occ": 3, "buckets": [],
                   "categories": {"cat": {"miou": cat, "miou_occ": miou_occ, "n": 2, "n_occ": 1}},
                   "counts": {}}
        record = RunRecord(path=tmp_path / str(seed), metrics=metrics, label=f"s/{seed}")
        record.settings = {"method": "area", "runtime.seed": str(seed)}
        return record

    (group,) = seed_groups([run(1, 0.2, 0.4), run(2, 0.4, 0.8)])
    assert group.metrics["miou_occ"] == pytest.approx(0.3) and group.metrics["n_occ"] == 3
    assert group.metrics["categories"]["cat"]["miou"] == pytest.approx(0.6)
    (unknown,) = seed_groups([run(1, 0.2, 0.4), run(2, None, 0.8)])  # a seed that predates iou_occ
    assert unknown.metrics["miou_occ"] is None
