"""amodal-report: paper rows filled from exactly one run whatever the sweep order, n beside every mIoU,
columns from what acted on the runs, LaTeX ready to paste, and a bucket plot readable with 15 runs."""

import csv
import io
import json
import re

import pytest
import yaml
from matplotlib.colors import to_rgba

from amodal.config import config_dir
from amodal.errors import ConfigError
from amodal.eval.identity import differing, format_value
from amodal.eval.paper import compare
from amodal.eval.plot import bucket_figure
from amodal.eval.runs import RunRecord, find_runs, load_run, load_runs
from tests.helpers import in_process

QUIET = ["logger=none", "output.progress=false"]


# --- a paper row matches unambiguously -------------------------------------------------------------------


def test_the_same_sweep_in_two_orders_gives_identical_paper_tables(tmp_path, cocoa_dataset):
    """Table S2's COCO-A row names only the dataset; a sweep over the area fits it twice. Before, the cell
    took the first run in sweep order (82.0 or 69.5 by the order of `area=`)."""
    reports = {}
    for order in ("hull,rect", "rect,hull"):
        sweep = tmp_path / order.replace(",", "-")
        result = in_process("amodal-run", "-m", "experiment=area_as_prediction", "dataset=cocoa",
                            f"dataset.root={cocoa_dataset}", f"area={order}", *QUIET, f"hydra.sweep.dir={sweep}")
        assert result.returncode == 0, result.stderr[-2000:]
        report = in_process("amodal-report", str(sweep), "--out", str(tmp_path / f"report-{sweep.name}"))
        assert report.returncode == 0, report.stderr
        (warning,) = [line for line in report.stderr.splitlines() if "warning" in line]
        assert f"{sweep.name}/0, {sweep.name}/1" in warning and "Table S2, row 'COCO-A'" in warning
        assert "reduce" in warning
        reports[order] = {name: (tmp_path / f"report-{sweep.name}" / name).read_text()
                          for name in ("paper.csv", "paper.tex")}
        rows = list(csv.DictReader(io.StringIO(reports[order]["paper.csv"])))
        coco = [r for r in rows if r["row"] == "COCO-A"]
        assert len(coco) == 6 and all(r["ours"] == "" and r["paper"] for r in coco)  # not filled, paper kept
    assert reports["hull,rect"] == reports["rect,hull"]


def record(label, choices, miou_le50, n=10, config=None):
    metrics = {"miou": miou_le50, "pixel_iou": miou_le50, "n": n, "counts": {"predicted": n},
               "seconds_per_object": 0.5, "peak_memory_mb": 1024.0,
               "buckets": [{"max_occlusion": 0.5, "label": "≤50%", "miou": miou_le50, "n": n},
                           {"max_occlusion": 0.3, "label": "≤30%", "miou": miou_le50, "n": n // 2}]}
    return RunRecord(path=None, metrics=metrics, choices=choices, config=config or {}, label=label)


def test_a_row_several_runs_fit_is_filled_only_by_its_reduction():
    runs = [record("s/0", {"dataset": "cocoa", "area": "hull"}, 0.82, n=12),
            record("s/1", {"dataset": "cocoa", "area": "rect"}, 0.695, n=10),
            record("s/2", {"dataset": "kins", "area": "hull"}, 0.5, n=7)]
    spec = {"table": "T", "columns": ["le50", "miou"], "rows": [
        {"label": "COCO-A", "match": {"dataset": "cocoa"}, "values": [66.5, 60.0]},
        {"label": "best", "match": {"dataset": "cocoa"}, "reduce": "max", "values": [66.5, None]},
        {"label": "worst", "match": {"dataset": "cocoa"}, "reduce": "min", "values": [66.5, None]},
        {"label": "mean", "match": {"dataset": "cocoa"}, "reduce": "mean", "values": [66.5, None]},
        {"label": "KINS", "match": {"dataset": "kins"}, "values": [50.0, None]}]}
    for ordered in (runs, runs[::-1]):
        table = compare(spec, ordered)
        rows = dict(table.rows)
        assert [c.ours for c in rows["COCO-A"]] == [None, None] and rows["COCO-A"][0].paper == 66.5
        (warning,) = table.warnings
        assert "s/0, s/1" in warning and "s/2" not in warning
        assert rows["best"][0].ours == pytest.approx(82.0) and rows["best"][0].n == 12
        assert rows["best"][0].runs == ["s/0"] and rows["best"][0].delta == pytest.approx(15.5)
        assert rows["worst"][0].ours == pytest.approx(69.5) and rows["worst"][0].n == 10
        assert rows["mean"][0].ours == pytest.approx(75.75) and rows["mean"][0].runs == ["s/0", "s/1"]
        assert rows["KINS"][0].ours == pytest.approx(50.0) and rows["KINS"][1].n == 7
        assert rows["best"][0].text() == "82.0 (66.5, +15.5) n=12"
    table_wide = compare({**spec, "reduce": "max", "rows": spec["rows"][:1]}, runs)  # the table says it for all
    assert table_wide.rows[0][1][0].ours == pytest.approx(82.0) and not table_wide.warnings
    with pytest.raises(ConfigError, match="reduce: 'best' is not one of max, min, mean"):
        compare({**spec, "rows": [{**spec["rows"][1], "reduce": "best"}]}, runs)


# --- n beside every mIoU; columns from what acted; labels; LaTeX ------------------------------------------


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory):
    """first: method=area,visible × eval.include_unoccluded=true,false (with a backbone.s that acts on
    neither method and a logger that acts on nothing); second: one run with area=rect."""
    root = tmp_path_factory.mktemp("sweeps")
    first = in_process("amodal-run", "-m", "method=area,visible", "eval.include_unoccluded=true,false",
                       "backbone.s=0.1", *QUIET, "dataset.n_images=1", f"hydra.sweep.dir={root / 'first'}")
    assert first.returncode == 0, first.stderr[-2000:]
    second = in_process("amodal-run", "-m", "method=area", "area=rect", *QUIET, "dataset.n_images=1",
                        f"hydra.sweep.dir={root / 'second'}")
    assert second.returncode == 0, second.stderr[-2000:]
    return root


def markdown_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_columns_are_the_settings_that_acted_and_runs_are_labelled_by_sweep(two_sweeps):
    report = in_process("amodal-report", str(two_sweeps / "first"), str(two_sweeps / "second"))
    assert report.returncode == 0, report.stderr
    header, *rows = markdown_rows(report.stdout)
    assert header[:4] == ["run", "method", "area", "eval.include_unoccluded"]  # no backbone.s, logger, output
    assert [r[:4] for r in rows] == [["first/0", "area", "hull", "true"], ["first/1", "area", "hull", "false"],
                                     ["first/2", "visible", "", "true"], ["first/3", "visible", "", "false"],
                                     ["second/0", "area", "rect", "false"]]


def test_every_miou_has_its_n_in_markdown_csv_and_latex(two_sweeps, tmp_path):
    out = tmp_path / "report"
    report = in_process("amodal-report", str(two_sweeps / "first"), "--out", str(out))
    assert report.returncode == 0, report.stderr
    metrics = [json.loads((two_sweeps / "first" / str(i) / "metrics.json").read_text()) for i in range(4)]
    header, *rows = markdown_rows((out / "report.md").read_text())
    first_score = header.index("mIoU")
    for row, m in zip(rows, metrics):
        expected = [(m["miou"], m["n"])] + [(b["miou"], b["n"]) for b in m["buckets"]]
        cells = row[first_score:first_score + len(expected)]
        assert cells == [f"{'–' if v is None else f'{100 * v:.1f}'} (n={n})" for v, n in expected]
    table = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    for row, m in zip(table, metrics):
        assert int(row["n"]) == m["n"] and float(row["miou"]) == pytest.approx(100 * m["miou"], abs=1e-4)
        assert [int(row[f"n_le{round(100 * b['max_occlusion']):02d}"]) for b in m["buckets"]] == \
            [b["n"] for b in m["buckets"]]
    latex = (out / "runs.tex").read_text()
    body = latex[latex.index(r"\midrule") + len(r"\midrule"):latex.index(r"\bottomrule")].strip().splitlines()
    for line, m in zip(body, metrics):
        counts = [int(n) for n in re.findall(r"\$n\$=(\d+)", line)]
        assert counts == [m["n"], *(b["n"] for b in m["buckets"]), m["n_occ"]]


def test_latex_is_a_booktabs_table_with_a_caption_and_right_aligned_numbers(two_sweeps, tmp_path):
    out = tmp_path / "report"
    assert in_process("amodal-report", str(two_sweeps / "first"), "--out", str(out)).returncode == 0
    latex = (out / "runs.tex").read_text()
    assert latex.index(r"\begin{table}") < latex.index(r"\caption{mIoU") < latex.index(r"\begin{tabular}")
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex and r"\end{table}" in latex
    (align,) = re.findall(r"\\begin\{tabular\}\{(\w+)\}", latex)
    assert align == "lll" + "r" * 9  # run, method, eval.include_unoccluded | mIoU, six buckets, pixel IoU, mIoU_occ
    header = latex.splitlines()[latex.splitlines().index(r"\toprule") + 1]
    assert header.startswith(r"run & method & eval.include\_unoccluded & mIoU & $\leq$50\% &")


def test_values_are_spelled_one_way():
    assert [format_value(v) for v in (False, "False", "false", True, None, 0.30000000000000004, [0.5, 1])] == \
        ["false", "false", "false", "true", "null", "0.3", "[0.5, 1]"]
    assert format_value("0.45182387345", digits=3) == "0.452" and format_value("hull", digits=3) == "hull"


def test_a_value_a_choice_already_tells_is_not_a_column_of_its_own():
    # variant=ours_sdxl picks the backbone, variant=no_leakage sets backbone.s = 1: the variant says it
    assert differing([{"variant": "ours_sd15", "backbone": "sd15", "area": "hull"},
                      {"variant": "ours_sdxl", "backbone": "sdxl", "area": "hull"},
                      {"variant": "ours_sdxl", "backbone": "sdxl", "area": "rect"}],
                     [{}, {}, {}]) == ["variant", "area"]
    assert differing([{"variant": "full"}, {"variant": "no_leakage"}],
                     [{"backbone.s": "0.3"}, {"backbone.s": "1"}]) == ["variant"]
    assert differing([{"backbone": "sd15"}, {"backbone": "sd15"}, {"backbone": "sdxl"}, {"backbone": "sdxl"}],
                     [{"backbone.s": "0.1"}, {"backbone.s": "0.3"}, {"backbone.s": "0.1"}, {"backbone.s": "0.3"}]
                     ) == ["backbone", "backbone.s"]


# --- the Â = V baseline and the plot -----------------------------------------------------------------------


def test_the_visible_baseline_is_what_method_visible_scores_on_the_same_objects(run_app, tmp_path):
    run_app("method=area", "dataset.n_images=3", run_dir=tmp_path / "area")
    run_app("method=visible", "dataset.n_images=3", run_dir=tmp_path / "visible")
    baseline = load_run(tmp_path / "area").baseline
    visible = load_run(tmp_path / "visible").metrics
    assert baseline["n"] == visible["n"] > 5
    assert baseline["miou"] == pytest.approx(visible["miou"], abs=1e-12)
    assert [b["miou"] for b in baseline["buckets"]] == pytest.approx([b["miou"] for b in visible["buckets"]])
    assert baseline["pixel_iou"] == pytest.approx(visible["pixel_iou"])


def fifteen_runs():
    """5 backbones × 3 areas, with settings as an Optuna sweep writes them (16-digit floats)."""
    records = []
    for i, s in enumerate(("0.1", "0.2", "0.45182387345", "0.6", "0.9")):
        for j, area in enumerate(("hull", "rect", "depth")):
            r = record(f"sweep/{3 * i + j}", {"area": area}, 0.5 + 0.05 * i - 0.02 * j)
            r.config = {"method": {"area": "${area}", "inpainter": "${backbone}"}, "area": {}, "backbone": {"s": s}}
            r.choices = {"area": area, "method": "inpaint"}
            r.baseline = {**r.metrics, "buckets": [{**b, "miou": 0.6} for b in r.metrics["buckets"]], "n": 10}
            records.append(r)
    return records


def test_the_bucket_plot_stays_readable_with_15_runs():
    records = fifteen_runs()
    paper = compare({"table": "Table S3", "columns": ["le50", "le30"], "rows": [
        {"label": "SD R", "match": {"backbone.s": 0.6, "area": "rect"}, "values": [77.7, 82.1]}]}, records)
    figure = bucket_figure(records, [paper], baseline=True)
    figure.canvas.draw()
    axes = figure.axes[0]
    runs = [line for line in axes.lines if line.get_label().startswith("sweep/")]
    assert len(runs) == 15
    looks = {(to_rgba(line.get_color()), str(line.get_linestyle())) for line in runs}
    assert len(looks) == 15  # every run drawn apart: colour by one setting, line style by another
    assert len({to_rgba(line.get_color()) for line in runs}) == 5
    legend = axes.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[:6] == ["backbone.s:", "0.1", "0.2", "0.452", "0.6", "0.9"]  # rounded, most values first
    assert texts[6:10] == ["area:", "depth", "hull", "rect"]
    assert texts[10:] == ["paper: Table S3", "Â = V"]
    assert legend.get_window_extent().x0 >= axes.get_window_extent().x1  # outside the axes
    assert "sweep" in axes.get_title()
    assert [t.get_text() for t in axes.get_xticklabels()] == ["≤50%\nn=10", "≤30%\nn=5"]
    (paper_line,) = [line for line in axes.lines if line.get_label() == "paper: Table S3, SD R"]
    (matched,) = [line for line in runs if line.get_label() == "sweep/10"]  # s = 0.6, rect
    assert list(paper_line.get_ydata()) == [77.7, 82.1] and paper_line.get_color() == matched.get_color()
    assert paper_line.get_linestyle() == "--" and all(line.get_linestyle() != "--" for line in runs)
    (baseline,) = [line for line in axes.lines if line.get_label() == "Â = V"]
    assert list(baseline.get_ydata()) == pytest.approx([60.0, 60.0])


def test_a_real_sweep_plots_with_paper_references(two_sweeps, tmp_path):
    records = load_runs(find_runs([two_sweeps / "first"]))
    assert [r.label for r in records] == ["first/0", "first/1", "first/2", "first/3"]
    figure = bucket_figure(records, baseline=True)
    assert len([line for line in figure.axes[0].lines if line.get_label().startswith("first/")]) == 4


def test_report_help_is_whole():
    result = in_process("amodal-report", "--help")
    assert result.returncode == 0
    description = result.stdout.split("positional arguments")[0]
    assert "with our numbers beside them; a plot." in " ".join(description.split())
    assert "examples:" in result.stdout and "--baseline" in result.stdout


# --- what a report compares: the paper's setting, several studies, what the runs share, shards -------------


def hand_made_run(path, overrides, ious, shard=None):
    """A run folder as amodal-run leaves it (.hydra/ from the real composed config, rows, metrics.json),
    without running a model: one scored object per IoU, 40 % occluded."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from amodal.eval.metrics import BUCKETS, summarize
    from tests.helpers import composed

    with composed([*overrides, *([f"shard.index={shard[0]}", f"shard.count={shard[1]}"] if shard else [])],
                  path) as cfg:
        choices = {k: v for k, v in HydraConfig.get().runtime.choices.items() if v is not None}
        (path / ".hydra").mkdir(parents=True)
        (path / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (path / ".hydra" / "hydra.yaml").write_text(json.dumps({"hydra": {"runtime": {"choices": choices}}}))
    rows = [{"dataset": "cocoa", "image_id": "1", "object_id": str(i), "occlusion_rate": 0.4, "iou": iou,
             "intersection": round(100 * iou), "union": 100, "seconds": 0.1} for i, iou in enumerate(ious)]
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "metrics.json").write_text(json.dumps(summarize(rows, BUCKETS, False)))
    return path


TINY = ["backbone=tiny_sd", "extractor=tiny_sam", "dataset=cocoa", "dataset.root=/data/cocoa-demo", "dataset.limit=4"]


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    """An area sweep (Table S3: SD1.5 R and, with area=tiny_depth, SD1.5 D) and an ablation sweep (Table 7),
    with tiny models on 4 objects."""
    root = tmp_path_factory.mktemp("studies")
    for num, area in enumerate(("rect", "tiny_depth")):
        hand_made_run(root / "area" / str(num), ["experiment=area_types", "variant=ours_sd15", f"area={area}", *TINY],
                      [0.5, 0.7])
    for num, variant in enumerate(("full", "no_leakage")):
        hand_made_run(root / "ablation" / str(num), ["experiment=ablation", f"variant={variant}", *TINY,
                                                     "backbone=tiny_sdxl"], [0.6, 0.8 - 0.1 * num])
    return root


def test_a_report_over_two_studies_shows_both_paper_tables_whatever_the_order(two_studies, tmp_path):
    """Before, only the first run's paper block was read: Table S3 or Table 7 by the order of the arguments,
    the other not even under "Not run here"."""
    files = {}
    for name, order in (("first", ["area", "ablation"]), ("second", ["ablation", "area"])):
        report = in_process("amodal-report", *(str(two_studies / o) for o in order), "--out", str(tmp_path / name))
        assert report.returncode == 0, report.stderr
        text = (tmp_path / name / "report.md").read_text()
        assert "**Table 7**" in text and "**Table S3**" in text
        assert "Not run here: Table S4 (dataset=bsdsa); Table S5 (dataset=kins); Table S6" in text
        assert text.index("**Table 7**") < text.index("**Table S3**")  # the tables' order, not the arguments'
        files[name] = {f: (tmp_path / name / f).read_text() for f in ("paper.csv", "paper.tex")}
    assert files["first"] == files["second"]


def test_every_cell_of_tiny_runs_is_marked_not_comparable_with_what_differs(two_studies, tmp_path):
    """Before, `variant=ours_sd15 backbone=tiny_sd extractor=tiny_sam` filled the paper's "SD1.5 R" with
    random-weight numbers and said nothing."""
    report = in_process("amodal-report", str(two_studies), "--out", str(tmp_path))
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "paper.csv").read_text())))
    filled = [r for r in rows if r["ours"]]
    assert {(r["table"], r["row"]) for r in filled} == {
        ("Table S3", "SD1.5 R"), ("Table S3", "SD1.5 D"), ("Table 7", "all components"),
        ("Table 7", "✗ leakage (s = 1, eq. 5)")}
    assert all(r["comparable"] == "false" for r in filled)
    assert all(r["comparable"] == "" and r["differs"] == "" for r in rows if not r["ours"])
    differs = {(r["table"], r["row"]): r["differs"] for r in filled}
    limit = "dataset.limit 4 (the paper: all objects)"
    assert differs[("Table S3", "SD1.5 R")] == f"backbone tiny_sd ≠ sd15; extractor tiny_sam ≠ sam; {limit}"
    assert differs[("Table S3", "SD1.5 D")] == \
        f"backbone tiny_sd ≠ sd15; extractor tiny_sam ≠ sam; area tiny_depth ≠ depth; {limit}"
    assert differs[("Table 7", "all components")] == f"backbone tiny_sdxl ≠ sdxl; extractor tiny_sam ≠ sam; {limit}"
    # the dagger on each such cell, a line under the table; in LaTeX too; one warning per table on stderr
    text = (tmp_path / "report.md").read_text()
    table7 = text[text.index("**Table 7**"):text.index("**Table S3**")]
    assert "| all components | 70.0† (76.5, -6.5) n=2 |" in table7
    assert "\n† not the paper's setting (all components, ✗ leakage (s = 1, eq. 5)): backbone tiny_sdxl ≠ sdxl" in table7
    latex = (tmp_path / "paper.tex").read_text()
    assert "70.0$^\\dagger$ (76.5" in latex and "\\footnotesize $^\\dagger$ not the paper's setting" in latex
    warnings = [line for line in report.stderr.splitlines() if "not run in the paper's setting" in line]
    assert len(warnings) == 2 and warnings[0].startswith("amodal-report: warning: Table 7: 2 cells not run")
    assert "Table S3: 4 cells" in warnings[1]  # ≤50% and ≤40% of two rows: the objects are 40 % hidden


def test_the_settings_all_runs_share_are_said_above_the_runs_table_and_in_the_plot(two_studies, tmp_path):
    report = in_process("amodal-report", str(two_studies), "--out", str(tmp_path))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report.md").read_text()
    line = "Held constant: dataset cocoa (root cocoa-demo), extractor tiny_sam, limit 4, seed 0, dtype auto."
    assert line in text and text.index(line) < text.index("| run |")  # backbone differs: not in the line
    records = load_runs(find_runs([two_studies / "area"]))
    title = bucket_figure(records).axes[0].get_title()
    assert "Held constant: dataset cocoa (root cocoa-demo), backbone tiny_sd, extractor tiny_sam, limit 4" in title


SD15_HUB = "benjamin-paine/stable-diffusion-v1-5-inpainting"


def test_a_run_in_the_papers_setting_is_comparable_and_a_changed_value_is_named(tmp_path):
    """The real backbone and SAM as variant=ours_sd15 composes them (built, never loaded): comparable; each
    value the paper states, or the hub model, changed on the command line: named."""
    spec = next(t for t in yaml.safe_load((config_dir() / "experiment" / "area_types.yaml").read_text())["paper"]
                if t["table"] == "Table S3")
    cases = {(): "", ("backbone.steps=50",): "backbone.steps 50 ≠ 20",
             ("backbone.pipeline.model=/models/sd15",): f"weights /models/sd15 ≠ {SD15_HUB}",
             ("extractor.model.size=vit_b",): "extractor.model.size vit_b ≠ vit_h",
             ("background=white",): "background white ≠ histogram", ("points=grid",): "points grid ≠ random",
             ("dataset=bsdsa",): None}  # another dataset: not about Table S3 at all
    for i, (extra, expected) in enumerate(cases.items()):
        path = hand_made_run(tmp_path / str(i), ["experiment=area_types", "variant=ours_sd15", "area=rect",
                                                  "dataset=cocoa", *extra], [0.5])
        cell = dict(compare(spec, [load_run(path)]).rows)["SD1.5 R"][0]
        if expected is None:
            assert cell.ours is None
            continue
        assert cell.ours == pytest.approx(50.0) and "; ".join(cell.differs) == expected
        assert cell.comparable is (expected == "")


def test_shards_are_not_runs_and_the_report_says_how_to_merge_them(tmp_path):
    sweep = tmp_path / "shards"
    for index in range(2):
        hand_made_run(sweep / str(index), ["method=area", "dataset.n_images=1"], [0.5 + 0.1 * index],
                      shard=(index, 3))
    alone = in_process("amodal-report", str(sweep))
    assert alone.returncode == 2
    assert f"2 of the 3 shards of one run (shards/0, shards/1) are left out of the tables; report the run " \
           f"they split: amodal-merge {sweep} --out {sweep}-merged --partial && amodal-report {sweep}-merged" \
           in alone.stderr  # --partial: shard 2 is not there
    assert "Traceback" not in alone.stderr and "error: only shards here" in alone.stderr
    hand_made_run(tmp_path / "runs" / "0", ["method=visible", "dataset.n_images=1"], [0.4])
    both = in_process("amodal-report", str(sweep), str(tmp_path / "runs"))
    assert both.returncode == 0, both.stderr
    header, *rows = markdown_rows(both.stdout)
    assert [r[0] for r in rows] == ["runs/0"] and "amodal-merge" in both.stdout


def test_runs_with_equal_numbers_are_drawn_side_by_side_and_headings_say_miou():
    """hull and rect on objects where both areas are equal: one line hid the other."""
    runs = [record("s/0", {"area": "hull"}, 0.7), record("s/1", {"area": "rect"}, 0.7),
            record("s/2", {"area": "depth"}, 0.5)]
    lines = [line for line in bucket_figure(runs).axes[0].lines if line.get_label().startswith("s/")]
    xs = [tuple(line.get_xdata()) for line in lines]
    assert len(set(xs)) == 3 and all(abs(a - b) < 0.2 for x in xs for a, b in zip(x, xs[0]))
    apart = [record("s/0", {"area": "hull"}, 0.7), record("s/1", {"area": "rect"}, 0.5)]
    assert [tuple(line.get_xdata()) for line in bucket_figure(apart).axes[0].lines] == [(0, 1), (0, 1)]
    table = compare({"table": "T", "columns": ["miou", "le50", "pixel_iou"], "rows": []}, runs)
    assert table.labels == ["mIoU", "≤50%", "pixel IoU"] and "|  | mIoU | ≤50% | pixel IoU |" in table.markdown()


def test_a_limit_on_the_objects_leaves_a_time_per_object_comparable(tmp_path):
    """experiment=speed times the first 100 objects, as the paper's per-object times need no more."""
    path = hand_made_run(tmp_path / "speed", ["experiment=speed", "variant=ours_sd15"], [0.5])
    record = load_run(path)
    spec = next(t for t in record.config["paper"] if t["table"] == "Table S1")
    seconds = dict(compare(spec, [record]).rows)["SD1.5"][1]
    assert seconds.ours == pytest.approx(0.1) and seconds.comparable is True
    miou = compare({**spec, "columns": ["miou", "seconds"]}, [record]).rows[0][1]
    assert [c.differs for c in miou] == [["dataset.limit 100 (the paper: all objects)"], []]
