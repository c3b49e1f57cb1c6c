"""Our runs beside the paper's numbers: the ``paper:`` block of an experiment, filled in from its runs.

An experiment (``conf/experiment/<name>.yaml``) transcribes each table it reproduces:

    paper:
      - table: Table 8
        caption: "..."
        where: {dataset: cocoa}          # optional: the runs the table is about
        columns: [le50, le40, ...]       # metrics; "miou@dataset=kins" restricts a column to some runs
        labels: [...]                    # optional column titles
        rows:
          - {label: "s = 0.1", match: {backbone.s: 0.1}, values: [75.0, ...]}
          - {label: "pix2gestalt", values: [...]}          # no match: the paper's number only
          - {label: "best", match: {area: hull}, reduce: max, values: [...]}   # several runs: best

A key in ``where``/``match`` is a config group's choice (``dataset``, ``variant``, ``area``, …) or a
dotted config key (``backbone.s``). Metrics: ``miou``, ``pixel_iou``, ``le50`` … ``le05`` (in %),
``seconds`` (per object), ``memory_gb`` (peak), ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amodal.eval.metrics import bucket_key
from amodal.eval.report import RunRecord, _latex_escape

PERCENT = ("miou", "pixel_iou")


def metric(metrics: dict, name: str) -> float | None:
    if name in PERCENT:
        value = metrics.get(name)
        return None if value is None else 100 * value
    if name == "seconds":
        return metrics.get("seconds_per_object")
    if name == "memory_gb":
        value = metrics.get("peak_memory_mb")
        return None if value is None else value / 1024
    if name == "n":
        return metrics.get("n")
    for bucket in metrics["buckets"]:
        if bucket_key(bucket["max_occlusion"]) == name:
            return None if bucket["miou"] is None else 100 * bucket["miou"]
    raise KeyError(f"unknown metric {name!r}: use miou, pixel_iou, le50…le05, seconds, memory_gb or n")


def setting(record: RunRecord, key: str):
    """A run's choice for a config group, or the value of a dotted config key (None if absent)."""
    if key in record.choices:
        return record.choices[key]
    node = record.config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def same(value, wanted) -> bool:
    if value is None:
        return wanted is None
    try:
        return math.isclose(float(value), float(wanted), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return str(value) == str(wanted)


def matches(record: RunRecord, conditions: dict | None) -> bool:
    return all(same(setting(record, k), v) for k, v in (conditions or {}).items())


def column_label(name: str) -> str:
    """le30 → ≤30%; other metric names as they are."""
    return f"≤{int(name[2:])}%" if name.startswith("le") and name[2:].isdigit() else name


def parse_column(column: str) -> tuple[str, dict]:
    """"miou@dataset=kins,area=hull" → ("miou", {"dataset": "kins", "area": "hull"})."""
    name, _, where = column.partition("@")
    conditions = dict(part.split("=", 1) for part in where.split(",") if part)
    return name, conditions


@dataclass
class Cell:
    ours: float | None
    paper: float | None

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper

    def text(self, digits: int = 1) -> str:
        ours = "–" if self.ours is None else f"{self.ours:.{digits}f}"
        if self.paper is None:
            return ours
        paper = f"{self.paper:.{digits}f}"
        if self.delta is None:
            return f"– ({paper})"
        return f"{ours} ({paper}, {self.delta:+.{digits}f})"


@dataclass
class Comparison:
    table: str
    caption: str
    columns: list[str]
    labels: list[str]
    rows: list[tuple[str, list[Cell]]]
    note: str = ""

    def markdown(self) -> str:
        note = f" **{self.note}**" if self.note else ""
        lines = [f"**{self.table}** — {self.caption}. Cells: ours (paper, ours − paper).{note}", "",
                 "| | " + " | ".join(self.labels) + " |", "|---|" + "---|" * len(self.labels)]
        lines += [f"| {label} | " + " | ".join(c.text() for c in cells) + " |" for label, cells in self.rows]
        return "\n".join(lines)

    def csv_rows(self) -> list[list[str]]:
        out = []
        for label, cells in self.rows:
            for column, cell in zip(self.labels, cells):
                out.append([self.table, label, column, _number(cell.ours), _number(cell.paper), _number(cell.delta)])
        return out

    def latex(self) -> str:
        lines = [r"\begin{tabular}{l" + "r" * len(self.labels) + "}", r"\toprule",
                 " & " + " & ".join(_latex_escape(x) for x in self.labels) + r" \\", r"\midrule"]
        for label, cells in self.rows:
            lines.append(_latex_escape(label) + " & " + " & ".join(_latex_escape(c.text()) for c in cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", f"% {self.table}: {self.caption}"]
        return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def compare(spec: dict, records: list[RunRecord]) -> Comparison:
    """One paper table with our numbers: each cell is the matching run's metric (the best one where the
    row says ``reduce: max``; the first in sweep order otherwise)."""
    columns = list(spec["columns"])
    labels = [str(x) for x in spec.get("labels") or [column_label(parse_column(c)[0]) for c in columns]]
    scope = [r for r in records if matches(r, spec.get("where"))]
    rows = []
    for row in spec["rows"]:
        cells = []
        for column, paper in zip(columns, row["values"]):
            name, conditions = parse_column(column)
            ours = None
            if "match" in row:
                found = [metric(r.metrics, name) for r in scope if matches(r, row["match"]) and matches(r, conditions)]
                found = [v for v in found if v is not None]
                if found:
                    ours = max(found) if row.get("reduce") == "max" else found[0]
            cells.append(Cell(ours, None if paper is None else float(paper)))
        rows.append((str(row["label"]), cells))
    note = ""
    ran_on = sorted({str(setting(r, "dataset")) for r in scope})
    if spec.get("dataset") and ran_on and ran_on != [str(spec["dataset"])]:
        note = f"The paper's numbers are on {spec['dataset']}, ours on {', '.join(ran_on)}."
    return Comparison(str(spec["table"]), str(spec.get("caption", "")), columns, labels, rows, note)


def paper_tables(records: list[RunRecord]) -> list[dict]:
    """The ``paper`` block the runs were configured with (the first run that has one)."""
    for record in records:
        tables = record.config.get("paper")
        if tables:
            return list(tables)
    return []
