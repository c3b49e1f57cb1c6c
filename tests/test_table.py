"""The report's rooms: one table model whose markdown, CSV and LaTeX come from the same cells (so the
three agree), and a plot that leaves matplotlib's backend and pyplot alone."""

import csv
import io
import json
import os
import re
import subprocess
import sys

from amodal.eval.report import runs_csv, runs_latex, runs_table
from amodal.eval.runs import RunRecord
from amodal.eval.table import Column, Table


def markdown_cells(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]


def latex_cells(text: str) -> list[list[str]]:
    body = text.split("\\midrule\n")[1].split("\n\\bottomrule")[0]
    return [[c.strip() for c in line.removesuffix(" \\\\").split(" & ")] for line in body.splitlines()]


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]


def test_one_table_renders_the_same_numbers_as_markdown_csv_and_latex():
    table = Table([Column("run"), Column("mIoU", ("miou", "miou_ci_low", "miou_ci_high", "n"), "score",
                                         ("miou_ci_low", "miou_ci_high")),
                   Column("pixel IoU", ("pixel_iou",), "percent"),
                   Column("hidden", ("hidden", "n_hidden"), "score", shown=False)],
                  [["a/0", {"miou": 0.8137, "n": 6, "ci95": [0.7521, 0.8769]}, 0.6042, {"miou": 0.25, "n": 2}],
                   ["b_1", {"miou": 0.4071, "n": 11, "ci95": None}, None, {"miou": None, "n": None}]])
    markdown, latex = markdown_cells(table.to_markdown()), latex_cells(table.to_latex("c", "tab:x"))
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert table.header == ["run", "mIoU", "pixel IoU"]  # the CSV-only column is not shown
    assert markdown == [["a/0", "81.4 [75.2, 87.7] (n=6)", "60.4"], ["b_1", "40.7 [–] (n=11)", "–"]]
    assert latex[1][0] == r"b\_1" and latex[1][2] == "--"
    for md, tex, row in zip(markdown, latex, rows):
        csv_miou = [float(row[k]) for k in ("miou", "miou_ci_low", "miou_ci_high") if row[k]] + [float(row["n"])]
        assert numbers(md[1]) == numbers(tex[1]) == [round(x, 1) for x in csv_miou]
        assert numbers(md[2]) == numbers(tex[2]) == [round(float(x), 1) for x in [row["pixel_iou"]] if x]
    assert [(r["hidden"], r["n_hidden"]) for r in rows] == [("25.0000", "2"), ("", "")]


def test_the_runs_table_gives_each_run_the_same_numbers_in_its_three_renderings():
    def run(label, miou, n, status=""):
        buckets = [{"max_occlusion": 0.5, "label": "≤50%", "miou": miou + 0.01, "n": n - 1, "miou_occ": 0.31,
                    "n_occ": n - 2}]
        metrics = {"miou": miou, "n": n, "pixel_iou": 0.7, "miou_occ": 0.3, "n_occ": n - 2, "buckets": buckets}
        return RunRecord(path=None, metrics=metrics, choices={"area": label}, label=f"s/{label}", status=status)

    records = [run("hull", 0.8123, 9), run("rect", 0.6449, 7, status="unfinished")]
    markdown = markdown_cells(runs_table(records).to_markdown())
    latex = latex_cells(runs_latex(records))
    rows = list(csv.DictReader(io.StringIO(runs_csv(records))))
    for md, tex, row in zip(markdown, latex, rows):
        assert md[0] == row["run"] and md[1] == row["area"] == tex[1] and md[-1] == row["status"] == tex[-1]
        for i, (mean, n) in enumerate([("miou", "n"), ("miou_le50", "n_le50")], start=2):
            assert numbers(md[i]) == numbers(tex[i]) == [round(float(row[mean]), 1), int(row[n])]
        assert numbers(md[4]) == numbers(tex[4]) == [round(float(row["pixel_iou"]), 1)]
        assert numbers(md[5]) == numbers(tex[5]) == [round(float(row["miou_occ"]), 1), int(row["n_occ"])]
        assert (row["miou_occ_le50"], row["n_occ_le50"]) == ("31.0000", str(int(row["n"]) - 2))
    assert [r["status"] for r in rows] == ["finished", "unfinished"]


PLOT_IN_A_FRESH_INTERPRETER = """
import json, sys
from pathlib import Path
import matplotlib
before = matplotlib.get_backend()
from amodal.eval import plot, report  # noqa: F401
from amodal.eval.runs import RunRecord
after_import = matplotlib.get_backend()
bucket = {"max_occlusion": 0.5, "label": "≤50%", "miou": 0.5, "n": 3}
record = RunRecord(path=None, metrics={"miou": 0.5, "n": 3, "pixel_iou": 0.5, "buckets": [bucket]}, label="s/0")
png = plot.bucket_plot([record], Path(sys.argv[1]) / "buckets.png")
print(json.dumps({"before": before, "after_import": after_import, "after_plot": matplotlib.get_backend(),
                  "pyplot": "matplotlib.pyplot" in sys.modules, "png": png.read_bytes()[:8].hex()}))
"""


def test_the_plot_module_leaves_the_backend_and_pyplot_alone(tmp_path):
    """A notebook's backend (here: svg) is the same after importing the report and drawing its plot; the
    PNG is drawn without pyplot."""
    result = subprocess.run([sys.executable, "-c", PLOT_IN_A_FRESH_INTERPRETER, str(tmp_path)], capture_output=True,
                            text=True, env={**os.environ, "MPLBACKEND": "svg"}, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["before"] == seen["after_import"] == seen["after_plot"] == "svg"
    assert not seen["pyplot"]
    assert seen["png"] == b"\x89PNG\r\n\x1a\n".hex()
