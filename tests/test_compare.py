"""amodal-compare (paired ΔIoU of two runs, bootstrap intervals, wins/losses/ties, buckets, gallery) and the
bootstrap intervals of amodal-report (--ci, --seeds), on hand-made rows and on real runs of method=visible
and method=area over a few synthetic scenes."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from amodal.cli.compare import main as compare_main
from amodal.data.files import mask_path, read_mask
from amodal.data.synthetic import SyntheticDataset
from amodal.eval import bootstrap
from amodal.eval.compare import compare_runs
from amodal.eval.metrics import BUCKETS, summarize
from amodal.eval.pictures import COLOURS, overlay, tile_row
from amodal.sample import ObjectKey
from tests.helpers import cli, composed, in_process


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """method=visible (A) and method=area (B) on the same 3 synthetic scenes, masks saved, as amodal-run writes them."""
    from amodal.cli.run import evaluate

    root = tmp_path_factory.mktemp("runs")
    for method in ("visible", "area"):
        overrides = [f"method={method}", "dataset.n_images=3", "logger=none", "output.progress=false",
                     "output.pictures=0", "output.save_masks=true", f"cache.dir={root / 'cache'}"]
        with composed(overrides, root / method) as cfg:
            evaluate(cfg)
    return root / "visible", root / "area"


def rows_of(run) -> dict:
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    return {(r["image_id"], r["object_id"]): r for r in rows if r.get("iou") is not None and r["occlusion_rate"] > 0}


# --- hand-made rows -------------------------------------------------------------------------------------

def write_run(folder, rows, config=None):
    folder.mkdir(parents=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if config is not None:
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "resolved.yaml").write_text(yaml.safe_dump(config))


def row(object_id, rate, iou, iou_occ=None, **extra):
    """A row as amodal-run writes it; intersection and union over 1000 pixels of union."""
    pixels = {} if iou is None else {"intersection": round(1000 * iou), "union": 1000}
    return {"dataset": "synthetic", "image_id": "im", "object_id": object_id, "occlusion_rate": rate, "iou": iou,
            "iou_occ": iou_occ, **pixels, **extra}


HAND_A = [row("0", 0.45, 0.5, 0.1), row("1", 0.3, 0.6, 0.2), row("2", 0.08, 0.7, None), row("3", 0.35, 0.8, 0.3),
          row("4", 0.0, 0.9),  # unoccluded: counts in neither run's mIoU
          row("5", 0.2, 0.4, 0.0)]  # B skipped it
HAND_B = [row("0", 0.45, 0.6, 0.4), row("1", 0.3, 0.6, 0.1), row("2", 0.08, 0.5, None), row("3", 0.35, 0.9, 0.3),
          row("4", 0.0, 1.0), row("5", 0.2, None, skipped="image file x.png does not exist"),
          row("6", 0.3, 0.7, 0.5)]  # not in A's rows
DATASET = {"dataset": {"_target_": "amodal.data.synthetic.SyntheticDataset", "seed": 0, "split": "test", "limit": None}}


def test_hand_made_runs_give_the_exact_mean_delta_counts_and_buckets(tmp_path):
    write_run(tmp_path / "a", HAND_A, DATASET)
    write_run(tmp_path / "b", HAND_B, {"dataset": {**DATASET["dataset"], "limit": 7}})  # limit is not the dataset
    result, *_ = compare_runs(tmp_path / "a", tmp_path / "b", resamples=2000)
    # objects 0–3: Δ = +0.1, 0, −0.2, +0.1
    assert result["n"] == 4
    assert result["mean_delta"] == pytest.approx(0.0, abs=1e-15)
    assert result["mean_a"] == pytest.approx(0.65) and result["mean_b"] == pytest.approx(0.65)
    assert (result["wins"], result["losses"], result["ties"]) == (2, 1, 1)
    by_label = {b["label"]: b for b in result["buckets"]}
    assert [b["max_occlusion"] for b in result["buckets"]] == list(BUCKETS)
    assert by_label["≤50%"]["n"] == 4
    assert by_label["≤40%"]["n"] == 3 and by_label["≤40%"]["mean_delta"] == pytest.approx((0 - 0.2 + 0.1) / 3)
    assert by_label["≤30%"]["n"] == 2 and by_label["≤30%"]["mean_delta"] == pytest.approx(-0.1)
    assert (by_label["≤30%"]["wins"], by_label["≤30%"]["losses"], by_label["≤30%"]["ties"]) == (0, 1, 1)
    assert by_label["≤20%"]["n"] == 1 and by_label["≤20%"]["mean_delta"] == pytest.approx(-0.2)  # 0.3 is in ≤30%
    assert by_label["≤5%"]["n"] == 0 and by_label["≤5%"]["mean_delta"] is None and by_label["≤5%"]["ci95"] is None
    occ = result["miou_occ"]  # objects 0, 1, 3 (2 has no hidden part): Δ = +0.3, −0.1, 0
    assert occ["n"] == 3 and occ["mean_delta"] == pytest.approx(0.2 / 3)
    assert (occ["wins"], occ["losses"], occ["ties"]) == (1, 1, 1)
    assert result["only_a"]["count"] == 1 and result["only_a"]["objects"][0]["object_id"] == "5"
    assert "image file x.png does not exist" in result["only_a"]["objects"][0]["why"]
    assert result["only_b"]["count"] == 1 and result["only_b"]["objects"][0]["object_id"] == "6"
    assert "not in" in result["only_b"]["objects"][0]["why"]


def test_a_wider_tie_turns_small_differences_into_ties(tmp_path):
    write_run(tmp_path / "a", HAND_A, DATASET)
    write_run(tmp_path / "b", HAND_B, DATASET)
    result, *_ = compare_runs(tmp_path / "a", tmp_path / "b", tie=0.15, resamples=100)
    assert (result["wins"], result["losses"], result["ties"]) == (0, 1, 3)


def test_rows_without_iou_occ_give_no_miou_occ(tmp_path):
    strip = [{k: v for k, v in r.items() if k != "iou_occ"} for r in HAND_A]
    write_run(tmp_path / "a", strip, DATASET)
    write_run(tmp_path / "b", HAND_B, DATASET)
    result, *_ = compare_runs(tmp_path / "a", tmp_path / "b", resamples=100)
    assert result["miou_occ"] is None and result["n"] == 4


def test_runs_on_different_datasets_are_refused_in_one_line(tmp_path, capsys):
    write_run(tmp_path / "a", HAND_A, DATASET)
    write_run(tmp_path / "b", HAND_B, {"dataset": {**DATASET["dataset"], "split": "val", "seed": 3}})
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("amodal-compare: error:")
    assert "dataset.split: test vs val" in error and "dataset.seed: 0 vs 3" in error
    assert not (tmp_path / "out").exists()


def test_folders_without_a_config_are_told_apart_by_their_rows_dataset(tmp_path, capsys):
    write_run(tmp_path / "a", HAND_A)
    write_run(tmp_path / "b", [{**r, "dataset": "cocoa"} for r in HAND_B])
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 2
    assert "synthetic vs cocoa" in capsys.readouterr().err
    write_run(tmp_path / "c", HAND_B, DATASET)  # a config on one side only: the rows' names decide
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "out")]) == 0
    assert "no gallery" in (tmp_path / "out" / "compare.md").read_text()


def test_a_folder_without_results_is_refused_in_one_line(tmp_path, capsys):
    write_run(tmp_path / "a", HAND_A, DATASET)
    (tmp_path / "b").mkdir()
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "results.jsonl" in error and str(tmp_path / "b") in error


# --- the bootstrap --------------------------------------------------------------------------------------

@pytest.mark.parametrize("scipy", [True, False], ids=["scipy", "numpy"])
def test_the_interval_is_seeded_and_matches_the_normal_approximation(scipy, monkeypatch):
    if not scipy:
        monkeypatch.setattr(bootstrap, "_stats", None)
    elif bootstrap._stats is None:
        pytest.skip("scipy is not installed")
    values = np.random.default_rng(5).normal(0.02, 0.1, size=400)
    first = bootstrap.seeded_interval(values, seed=3, resamples=4000)
    assert bootstrap.seeded_interval(values, seed=3, resamples=4000) == first
    assert bootstrap.seeded_interval(values, seed=4, resamples=4000) != first
    half = 1.959964 * values.std(ddof=1) / math.sqrt(len(values))  # the CLT's 95 % half-width
    assert first[0] < values.mean() < first[1]
    assert (first[1] - first[0]) / 2 == pytest.approx(half, rel=0.1)
    assert (first[0] + first[1]) / 2 == pytest.approx(values.mean(), abs=0.1 * half)


def test_one_value_has_no_interval_and_equal_values_a_point():
    assert bootstrap.seeded_interval([0.4]) is None
    assert bootstrap.seeded_interval([0.4, 0.4, 0.4]) == (0.4, 0.4)


# --- real runs: method=visible against method=area --------------------------------------------------

def test_visible_against_area_gives_the_exact_mean_delta_and_a_seeded_interval(two_runs, tmp_path):
    visible, area = two_runs
    a, b = rows_of(visible), rows_of(area)
    assert a.keys() == b.keys() and len(a) > 5
    deltas = [b[k]["iou"] - a[k]["iou"] for k in a]
    out = tmp_path / "cmp"
    assert compare_main([str(visible), str(area), "--out", str(out), "--resamples", "3000"]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["n"] == len(deltas)
    assert result["mean_delta"] == pytest.approx(sum(deltas) / len(deltas), abs=1e-12)
    assert result["wins"] == sum(d > 1e-9 for d in deltas) and result["losses"] == sum(d < -1e-9 for d in deltas)
    assert result["wins"] + result["losses"] + result["ties"] == result["n"]
    low, high = result["ci95"]
    assert low < result["mean_delta"] < high
    for bucket in result["buckets"]:
        members = [k for k in a if a[k]["occlusion_rate"] <= bucket["max_occlusion"] + 1e-9]
        assert bucket["n"] == len(members)
        if members:
            assert bucket["mean_delta"] == pytest.approx(np.mean([b[k]["iou"] - a[k]["iou"] for k in members]))
    assert result["bootstrap"]["resamples"] == 3000 and result["bootstrap"]["seed"] == 0
    again = tmp_path / "again"
    assert compare_main([str(visible), str(area), "--out", str(again), "--resamples", "3000"]) == 0
    assert json.loads((again / "compare.json").read_text())["ci95"] == result["ci95"]
    other = tmp_path / "other"
    assert compare_main([str(visible), str(area), "--out", str(other), "--resamples", "3000",
                         "--bootstrap-seed", "1"]) == 0
    assert json.loads((other / "compare.json").read_text())["ci95"] != result["ci95"]
    summary = (out / "compare.md").read_text()
    assert f"{100 * result['mean_delta']:+.2f}" in summary and "95 % CI" in summary


def test_the_gallery_shows_the_largest_wins_and_losses_with_each_runs_mask(two_runs, tmp_path):
    visible, area = two_runs
    out = tmp_path / "cmp"
    assert compare_main([str(visible), str(area), "--out", str(out), "--gallery", "5", "--resamples", "100"]) == 0
    assert len(list((out / "gallery").iterdir())) > 4  # an earlier comparison's panels, removed by the next one
    assert compare_main([str(visible), str(area), "--out", str(out), "--gallery", "2", "--resamples", "100"]) == 0
    result = json.loads((out / "compare.json").read_text())
    a, b = rows_of(visible), rows_of(area)
    deltas = {k: b[k]["iou"] - a[k]["iou"] for k in a}
    best = sorted(deltas, key=lambda k: -deltas[k])[:2]
    worst = sorted(deltas, key=lambda k: deltas[k])[:2]
    assert [(g["image_id"], g["object_id"]) for g in result["gallery"]] == best + worst
    assert [g["kind"] for g in result["gallery"]] == ["win", "win", "loss", "loss"]
    assert sorted(p.name for p in (out / "gallery").iterdir()) == sorted(g["file"].split("/")[1]
                                                                         for g in result["gallery"])
    # the panel of the largest win: image, V, A's Â, B's Â, the ground truth, pixel for pixel
    first = result["gallery"][0]
    key = ObjectKey(first["image_id"], first["object_id"])
    sample = SyntheticDataset(n_images=3).load(key)
    masks = [read_mask(mask_path(run / "masks", key)) for run in (visible, area)]
    expected = tile_row([("image", sample.image),
                         ("visible V", overlay(sample.image, sample.visible, COLOURS["visible"])),
                         (f"A {result['label_a']}: IoU {100 * first['iou_a']:.1f}",
                          overlay(sample.image, masks[0], COLOURS["prediction"])),
                         (f"B {result['label_b']}: IoU {100 * first['iou_b']:.1f}",
                          overlay(sample.image, masks[1], COLOURS["prediction"])),
                         ("ground truth", overlay(sample.image, sample.amodal, COLOURS["amodal"]))])
    assert np.array_equal(np.asarray(Image.open(out / first["file"])), expected)


def test_without_saved_masks_the_comparison_is_written_and_the_gallery_explained(two_runs, tmp_path, capsys):
    copies = []
    for run in two_runs:
        copy = tmp_path / run.name
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("masks"))
        copies.append(copy)
    out = tmp_path / "cmp"
    assert compare_main([*map(str, copies), "--out", str(out), "--resamples", "100"]) == 0
    assert json.loads((out / "compare.json").read_text())["gallery"] == []
    assert "output.save_masks=true" in (out / "compare.md").read_text()
    assert "output.save_masks=true" in capsys.readouterr().err


def test_the_installed_command_runs_and_its_help_has_examples(two_runs, tmp_path):
    help_text = in_process("amodal-compare", "--help")
    assert help_text.returncode == 0 and "examples:" in help_text.stdout
    assert "amodal-compare outputs/runs/visible outputs/runs/area --out" in help_text.stdout
    result = cli("amodal-compare", *map(str, two_runs), "--out", str(tmp_path / "cmp"), "--gallery", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# ") and (tmp_path / "cmp" / "compare.json").is_file()


# --- amodal-report --ci and --seeds ---------------------------------------------------------------------

def report_run(folder, ious, seed=0, method="visible", rates=None):
    """A run folder as amodal-run writes it (rows, .hydra/config.yaml and hydra.yaml's choices)."""
    rates = rates or [0.3] * len(ious)
    rows = [row(str(i), rate, iou) for i, (iou, rate) in enumerate(zip(ious, rates))]
    config = {"dataset": DATASET["dataset"], "method": {"_target_": f"amodal.method.baselines.{method}"},
              "runtime": {"seed": seed}, "eval": {"include_unoccluded": False, "buckets": list(BUCKETS)}}
    write_run(folder, rows)
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"runtime": {"choices": {"dataset": "synthetic", "method": method}}}}))


def report_csv(args, capsys, tmp_path):
    """amodal-report ARGS --csv: (stdout, stderr, the CSV's rows)."""
    from amodal.cli.report import main as report_main

    assert report_main([*args, "--csv", str(tmp_path / "runs.csv")]) == 0
    import csv
    captured = capsys.readouterr()
    return captured.out, captured.err, list(csv.DictReader((tmp_path / "runs.csv").open()))


def test_report_ci_puts_the_seeded_interval_beside_every_miou(tmp_path, capsys):
    ious, rates = [0.2, 0.5, 0.9, 0.7, 0.6], [0.45, 0.35, 0.25, 0.15, 0.04]
    report_run(tmp_path / "sweep" / "0", ious, rates=rates)
    out, _, table = report_csv([str(tmp_path / "sweep"), "--ci", "--resamples", "2000"], capsys, tmp_path)
    (csv_row,) = table
    low, high = bootstrap.seeded_interval(ious, seed=0, resamples=2000)
    assert float(csv_row["miou_ci_low"]) == pytest.approx(100 * low, abs=1e-4)
    assert float(csv_row["miou_ci_high"]) == pytest.approx(100 * high, abs=1e-4)
    assert 100 * low < float(csv_row["miou"]) < 100 * high
    le30 = bootstrap.seeded_interval([0.9, 0.7, 0.6], seed=0, resamples=2000)  # the objects at most 30 % hidden
    assert float(csv_row["miou_ci_low_le30"]) == pytest.approx(100 * le30[0], abs=1e-4)
    assert csv_row["miou_ci_low_le05"] == "" and csv_row["n_le05"] == "1"  # one object: no interval
    assert f"58.0 [{100 * low:.1f}, {100 * high:.1f}] (n=5)" in out and "(n=1)" in out and "[–]" in out
    again, _, _ = report_csv([str(tmp_path / "sweep"), "--ci", "--resamples", "2000"], capsys, tmp_path)
    assert again == out
    (tmp_path / "sweep" / "0" / "metrics.json").write_text(json.dumps(summarize(HAND_A)))
    (tmp_path / "sweep" / "0" / "results.jsonl").unlink()  # a folder with metrics.json alone: no rows to resample
    _, err, table = report_csv([str(tmp_path / "sweep"), "--ci"], capsys, tmp_path)
    assert "miou_ci_low" not in table[0]
    assert "holds no results.jsonl, so its mIoU has no interval" in err
    plain, _, table = report_csv([str(tmp_path / "sweep")], capsys, tmp_path)
    assert "[" not in plain.split("| run")[1] and "miou_ci_low" not in table[0]


def test_report_ci_draws_each_runs_interval_as_a_band(tmp_path):
    from amodal.eval.plot import bucket_figure
    from amodal.eval.runs import find_runs, load_runs
    from amodal.eval.spread import add_intervals

    report_run(tmp_path / "s" / "0", [0.2, 0.5, 0.9, 0.7], rates=[0.45, 0.35, 0.25, 0.15])
    records = load_runs(find_runs([tmp_path / "s"]))
    add_intervals(records, resamples=500)
    (band,) = bucket_figure(records).axes[0].collections
    top = [b["ci95"][1] for b in records[0].metrics["buckets"] if b["ci95"]]
    assert band.get_paths()[0].vertices[:, 1].max() == pytest.approx(100 * max(top))


def test_report_seeds_makes_runs_that_differ_only_in_the_seed_one_row(tmp_path, capsys):
    for seed, ious in ((1, [0.5, 0.7]), (2, [0.6, 0.8]), (3, [0.4, 0.9])):  # mIoU 0.6, 0.7, 0.65
        report_run(tmp_path / "sweep" / str(seed - 1), ious, seed=seed)
    report_run(tmp_path / "sweep" / "3", [0.1, 0.3], seed=1, method="area")
    out, _, table = report_csv([str(tmp_path / "sweep"), "--seeds"], capsys, tmp_path)
    assert [r["run"] for r in table] == ["sweep/0,1,2", "sweep/3"]
    assert "runtime.seed" not in table[0]
    by_hand = np.std([0.6, 0.7, 0.65], ddof=1)
    assert float(table[0]["miou"]) == pytest.approx(65.0)
    assert float(table[0]["miou_std"]) == pytest.approx(100 * by_hand)
    assert table[0]["seeds"] == "3" and table[1]["seeds"] == "1" and table[1]["miou_std"] == ""
    assert f"65.0 ± {100 * by_hand:.1f} (n=2, 3 seeds)" in out
    _, _, table = report_csv([str(tmp_path / "sweep"), "--seeds", "--ci", "--resamples", "500"], capsys, tmp_path)
    low, high = bootstrap.seeded_interval([0.5, 0.8], resamples=500)  # each object's IoU averaged over the seeds
    assert float(table[0]["miou_ci_low"]) == pytest.approx(100 * low, abs=1e-4)
    assert float(table[0]["miou_ci_high"]) == pytest.approx(100 * high, abs=1e-4)
    separate, _, table = report_csv([str(tmp_path / "sweep")], capsys, tmp_path)
    assert len(table) == 4 and "runtime.seed" in table[0]


def test_cocoa_runs_compare_with_a_gallery_and_another_root_is_refused(run_app, cocoa_dataset, tmp_path, capsys):
    """An annotation dataset rebuilt from the run's .hydra/resolved.yaml for the gallery; the same files under
    another root are another dataset (their objects share ids, not necessarily pixels)."""
    common = ["dataset=cocoa", "output.save_masks=true", "output.pictures=0"]
    run_app(*common, f"dataset.root={cocoa_dataset}", "method=visible", run_dir=tmp_path / "visible")
    run_app(*common, f"dataset.root={cocoa_dataset}", "method=area", run_dir=tmp_path / "area")
    a, b = rows_of(tmp_path / "visible"), rows_of(tmp_path / "area")
    assert compare_main([str(tmp_path / "visible"), str(tmp_path / "area"), "--out", str(tmp_path / "cmp"),
                         "--resamples", "200"]) == 0
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["n"] == len(a) > 1
    assert result["mean_delta"] == pytest.approx(np.mean([b[k]["iou"] - a[k]["iou"] for k in a]), abs=1e-12)
    assert result["gallery"] and all((tmp_path / "cmp" / g["file"]).is_file() for g in result["gallery"])
    moved = shutil.copytree(cocoa_dataset, tmp_path / "elsewhere")
    run_app(*common, f"dataset.root={moved}", "method=area", run_dir=tmp_path / "moved")
    assert compare_main([str(tmp_path / "visible"), str(tmp_path / "moved"), "--out", str(tmp_path / "x")]) == 2
    assert f"dataset.root: {cocoa_dataset} vs {moved}" in capsys.readouterr().err


def test_runs_with_other_buckets_are_compared_in_the_default_buckets_and_told(tmp_path):
    write_run(tmp_path / "a", HAND_A, {**DATASET, "eval": {"buckets": [0.5, 0.25]}})
    write_run(tmp_path / "b", HAND_B, {**DATASET, "eval": {"buckets": [0.5, 0.25]}})
    result, *_ = compare_runs(tmp_path / "a", tmp_path / "b", resamples=100)
    assert [b["max_occlusion"] for b in result["buckets"]] == [0.5, 0.25]  # the runs' own, where they agree
    write_run(tmp_path / "c", HAND_B, {**DATASET, "eval": {"buckets": [0.5]}})
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "out")]) == 0
    assert [b["max_occlusion"] for b in json.loads((tmp_path / "out" / "compare.json").read_text())["buckets"]] == \
        list(BUCKETS)
    assert "eval.buckets differ" in (tmp_path / "out" / "compare.md").read_text()
