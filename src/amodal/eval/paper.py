"""Our runs beside the paper's numbers: the ``paper:`` block of an experiment, filled in from its runs.

An experiment (``conf/experiment/<name>.yaml``) transcribes each table it reproduces:

    paper:
      - table: Table 8
        caption: "..."
        where: {dataset: cocoa}          # optional: the runs the table is about
        columns: [le50, le40, ...]       # metrics; "miou@dataset=kins" restricts a column to some runs
        labels: [...]                    # optional column titles
        reduce: max                      # optional, for every row: how to make one number of several runs
        rows:
          - {label: "s = 0.1", match: {backbone.s: 0.1}, values: [75.0, ...]}
          - {label: "pix2gestalt", values: [...]}          # no match: the paper's number only
          - {label: "best", match: {area: hull}, reduce: max, values: [...]}   # several runs: the best

A key in ``where``/``match`` is a config group's choice (``dataset``, ``variant``, ``area``, …) or a
dotted config key (``backbone.s``). Metrics: ``miou``, ``pixel_iou``, ``miou_occ`` (the hidden part's),
``le50`` … ``le05`` (in %), ``seconds`` (per object), ``memory_gb`` (peak), ``n``. A row with fewer
``values`` than columns has no paper number in the columns after them (a metric the paper does not report,
such as mIoU_occ, stays empty on its side).

A cell is filled from exactly one run. Where several runs fit a row (a sweep over something the row does
not name), the cell stays empty and the report warns, naming the runs, unless the row or its table says
how to reduce them: ``max``, ``min`` or ``mean``. So no cell depends on the order the runs were swept in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from amodal.errors import ConfigError
from amodal.eval.metrics import bucket_key
from amodal.eval.report import RunRecord, latex_escape, latex_score, latex_table, number

PERCENT = ("miou", "pixel_iou", "miou_occ")
REDUCTIONS = ("max", "min", "mean")


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
    raise KeyError(f"unknown metric {name!r}: use miou, pixel_iou, miou_occ, le50…le05, seconds, memory_gb or n")


def count(metrics: dict, name: str) -> int | None:
    """The objects behind a metric: the bucket's for ``le30``, the scored ones for mIoU, those with a hidden
    part for mIoU_occ (None for a run that predates it), the predicted ones for time and memory."""
    for bucket in metrics["buckets"]:
        if bucket_key(bucket["max_occlusion"]) == name:
            return int(bucket["n"])
    if name in ("seconds", "memory_gb"):
        return int(metrics.get("counts", {}).get("predicted", metrics["n"]))
    if name == "miou_occ":
        return metrics.get("n_occ")
    return int(metrics["n"])


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
    n: int | None = None
    """The objects behind ``ours`` (None where no run fits)."""
    runs: list[str] = field(default_factory=list)
    """The labels of the runs ``ours`` comes from (for the plot; never printed in a table)."""

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper

    def text(self, digits: int = 1) -> str:
        ours = "–" if self.ours is None else f"{self.ours:.{digits}f}"
        if self.paper is not None:
            paper = f"{self.paper:.{digits}f}"
            ours += f" ({paper})" if self.delta is None else f" ({paper}, {self.delta:+.{digits}f})"
        return ours if self.n is None else f"{ours} n={self.n}"

    def latex(self) -> str:
        text = latex_score(self.ours, None)
        if self.paper is not None:
            paper = f"{self.paper:.1f}"
            text += f" ({paper})" if self.delta is None else f" ({paper}, ${self.delta:+.1f}$)"
        return text if self.n is None else text + r" {\scriptsize $n$=" + str(self.n) + "}"


@dataclass
class Comparison:
    table: str
    caption: str
    columns: list[str]
    labels: list[str]
    rows: list[tuple[str, list[Cell]]]
    note: str = ""
    warnings: list[str] = field(default_factory=list)
    """Rows left empty because several runs fit them, each naming the runs."""

    def markdown(self) -> str:
        note = f" **{self.note}**" if self.note else ""
        lines = [f"**{self.table}** — {self.caption}. Cells: ours (paper, ours − paper) n=objects.{note}", "",
                 "| | " + " | ".join(self.labels) + " |", "|---|" + "---|" * len(self.labels)]
        lines += [f"| {label} | " + " | ".join(c.text() for c in cells) + " |" for label, cells in self.rows]
        lines += [f"\n⚠ {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def csv_rows(self) -> list[list[str]]:
        out = []
        for label, cells in self.rows:
            for column, cell in zip(self.labels, cells):
                out.append([self.table, label, column, number(cell.ours), "" if cell.n is None else str(cell.n),
                            number(cell.paper), number(cell.delta)])
        return out

    def latex(self) -> str:
        rows = [[latex_escape(label), *(c.latex() for c in cells)] for label, cells in self.rows]
        caption = f"{self.table}: {self.caption}. Ours (the paper's, ours − paper's); n: objects."
        if self.note:
            caption += f" {self.note}"
        label = "tab:" + "".join(c if c.isalnum() else "-" for c in self.table.lower()).strip("-")
        return latex_table(["", *self.labels], rows, text_columns=1, caption=caption, label=label)


CSV_HEADER = ["table", "row", "column", "ours", "n", "paper", "ours_minus_paper"]


def _reduction(spec: dict, row: dict) -> str | None:
    reduce = row.get("reduce", spec.get("reduce"))
    if reduce is not None and reduce not in REDUCTIONS:
        raise ConfigError(f"{spec['table']}, row {row['label']!r}: reduce: {reduce!r} is not one of "
                          f"{', '.join(REDUCTIONS)}; fix the experiment's paper block")
    return reduce


def _fewest(counts) -> int | None:
    """The smallest object count, leaving out the unknown ones (None when none is known)."""
    return min((n for n in counts if n is not None), default=None)


def _reduce(found: list[tuple[float, int, str]], how: str) -> Cell:
    """One cell of several runs' (value, n, label): the best, the worst, or their mean."""
    if how == "mean":
        value = math.fsum(v for v, _, _ in found) / len(found)  # exact sum: the same in any order
        return Cell(value, None, _fewest(n for _, n, _ in found), sorted(label for _, _, label in found))
    pick = max if how == "max" else min
    value, n, label = pick(found, key=lambda x: (x[0], x[1] if how == "max" else -x[1]))
    return Cell(value, None, n, [label])


def compare(spec: dict, records: list[RunRecord]) -> Comparison:
    """One paper table with our numbers: each cell is the one matching run's metric, or the row's
    reduction (``reduce: max|min|mean``) of all matching runs; a row that several runs fit without a
    reduction stays empty, with a warning naming them."""
    columns = list(spec["columns"])
    labels = [str(x) for x in spec.get("labels") or [column_label(parse_column(c)[0]) for c in columns]]
    scope = [r for r in records if matches(r, spec.get("where"))]
    rows, warnings = [], []
    for row in spec["rows"]:
        cells, ambiguous = [], set()
        how = _reduction(spec, row)
        values = list(row["values"]) + [None] * (len(columns) - len(row["values"]))
        for column, paper in zip(columns, values):
            name, conditions = parse_column(column)
            cell = Cell(None, None)
            if "match" in row:
                fits = [r for r in scope if matches(r, row["match"]) and matches(r, conditions)]
                if len(fits) > 1 and how is None:
                    ambiguous.update(r.label for r in fits)
                elif fits:
                    found = [(metric(r.metrics, name), count(r.metrics, name), r.label) for r in fits]
                    scored = [f for f in found if f[0] is not None]
                    cell = (_reduce(scored, how or "max") if scored  # one run: its value
                            else Cell(None, None, _fewest(n for _, n, _ in found), sorted(r.label for r in fits)))
            cell.paper = None if paper is None else float(paper)
            cells.append(cell)
        if ambiguous:
            warnings.append(f"{spec['table']}, row {row['label']!r}: {len(ambiguous)} runs fit "
                            f"({', '.join(sorted(ambiguous))}), so it is left empty; add `reduce: max`, `min` or "
                            "`mean` to the row or its table, or narrow its `match`")
        rows.append((str(row["label"]), cells))
    note = ""
    ran_on = sorted({str(setting(r, "dataset")) for r in scope})
    if spec.get("dataset") and ran_on and ran_on != [str(spec["dataset"])]:
        note = f"The paper's numbers are on {spec['dataset']}, ours on {', '.join(ran_on)}."
    return Comparison(str(spec["table"]), str(spec.get("caption", "")), columns, labels, rows, note, warnings)


def paper_tables(records: list[RunRecord]) -> list[dict]:
    """The ``paper`` block the runs were configured with (the first run that has one)."""
    for record in records:
        tables = record.config.get("paper")
        if tables:
            return list(tables)
    return []
