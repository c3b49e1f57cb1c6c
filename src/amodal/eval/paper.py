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

Every filled cell is also compared with the paper's setting of its row (``paper_setting``): the dataset,
the backbone and extractor (and their weights and the values the paper states), and the row's own
settings. A cell whose run differs is marked † and says what differs (``backbone tiny_sd ≠ sd15``).
A table may name the paper's backbone and extractor beside its ``dataset`` (``backbone: sdxl``) where
its rows do not (a row's ``variant`` does).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from amodal.config import config_dir
from amodal.errors import ConfigError
from amodal.eval.identity import format_value
from amodal.eval.metrics import bucket_key
from amodal.eval.runs import RunRecord
from amodal.eval.table import Column, Table, latex_score, number

PERCENT = ("miou", "pixel_iou", "miou_occ")
REDUCTIONS = ("max", "min", "mean")
PER_OBJECT = ("seconds", "memory_gb")
"""Metrics of one object at a time: the same on the first 100 objects as on all of them."""


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
    """Every condition holds; a group's choice also fits the choice it is built on (``area=tiny_depth``,
    whose file starts from ``depth``, fills the rows about ``area: depth``, and is marked not comparable)."""
    return all(same(setting(record, k), v) or (k in record.choices and str(v) in based_on(k, record.choices[k]))
               for k, v in (conditions or {}).items())


def based_on(group: str, choice: str) -> list[str]:
    """The configs of the same group a choice's file starts from (its ``defaults``): ``tiny_depth`` → depth."""
    return [entry for entry in _group_file(group, choice).get("defaults") or []
            if isinstance(entry, str) and entry != "_self_"]


METRIC_LABELS = {"miou": "mIoU", "pixel_iou": "pixel IoU", "seconds": "seconds", "memory_gb": "memory (GB)"}


def column_label(name: str) -> str:
    """le30 → ≤30%, miou → mIoU (miou_occ → mIoU_occ); other metric names as they are."""
    if name.startswith("le") and name[2:].isdigit():
        return f"≤{int(name[2:])}%"
    return METRIC_LABELS.get(name, re.sub(r"^miou", "mIoU", name))


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
    differs: list[str] = field(default_factory=list)
    """How those runs differ from the paper's setting of the row (``backbone tiny_sd ≠ sd15``)."""

    @property
    def comparable(self) -> bool | None:
        """Whether ``ours`` was run in the paper's setting (None for a cell without a number of ours)."""
        return None if self.ours is None else not self.differs

    @property
    def dagger(self) -> str:
        return "†" if self.comparable is False else ""

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper

    def text(self, digits: int = 1) -> str:
        ours = ("–" if self.ours is None else f"{self.ours:.{digits}f}") + self.dagger
        if self.paper is not None:
            paper = f"{self.paper:.{digits}f}"
            ours += f" ({paper})" if self.delta is None else f" ({paper}, {self.delta:+.{digits}f})"
        return ours if self.n is None else f"{ours} n={self.n}"

    def latex(self) -> str:
        text = latex_score(self.ours, None) + (r"$^\dagger$" if self.dagger else "")
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

    def not_comparable(self) -> list[tuple[str, str]]:
        """(row labels, what differs) for the cells run in another setting than the paper's, rows with the
        same differences together."""
        by_differs: dict[str, list[str]] = {}
        for label, cells in self.rows:
            for cell in cells:
                if cell.comparable is False:
                    rows = by_differs.setdefault("; ".join(cell.differs), [])
                    if label not in rows:
                        rows.append(label)
        return [(", ".join(rows), differs) for differs, rows in by_differs.items()]

    @property
    def setting_warning(self) -> str:
        """One line for the whole table when some of its cells are not the paper's setting."""
        cells = sum(c.comparable is False for _, row in self.rows for c in row)
        if not cells:
            return ""
        differs = _union(d.split("; ") for _, d in self.not_comparable())
        return (f"{self.table}: {cells} cell{'s' if cells > 1 else ''} not run in the paper's setting, marked †: "
                + "; ".join(differs))

    def messages(self) -> list[str]:
        """What the report warns about this table on stderr: rows several runs fit, then, once for the
        table, the cells not run in the paper's setting."""
        return self.warnings + ([self.setting_warning] if self.setting_warning else [])

    def footnotes(self) -> list[str]:
        return [f"† not the paper's setting ({rows}): {differs}" for rows, differs in self.not_comparable()]

    def table_model(self) -> Table:
        """The rows in the table model, which writes them as markdown and LaTeX: the row's label, then ours
        against the paper's in each column. (The CSV, a row per cell of every table, is ``csv_rows``.)"""
        return Table([Column(""), *(Column(label, kind="versus") for label in self.labels)],
                     [[label, *cells] for label, cells in self.rows])

    def markdown(self) -> str:
        note = f" **{self.note}**" if self.note else ""
        lines = [f"**{self.table}** — {self.caption}. Cells: ours (paper, ours − paper) n=objects.{note}", "",
                 self.table_model().to_markdown()]
        lines += [f"\n{note}" for note in self.footnotes()]
        lines += [f"\n⚠ {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def csv_rows(self) -> list[list[str]]:
        out = []
        for label, cells in self.rows:
            for column, cell in zip(self.labels, cells):
                comparable = "" if cell.comparable is None else str(cell.comparable).lower()
                out.append([self.table, label, column, number(cell.ours), "" if cell.n is None else str(cell.n),
                            number(cell.paper), number(cell.delta), comparable,
                            "; ".join(cell.differs) if comparable else ""])
        return out

    def latex(self) -> str:
        caption = f"{self.table}: {self.caption}. Ours (the paper's, ours − paper's); n: objects."
        if self.note:
            caption += f" {self.note}"
        label = "tab:" + "".join(c if c.isalnum() else "-" for c in self.table.lower()).strip("-")
        return self.table_model().to_latex(caption, label, notes=self.footnotes())


CSV_HEADER = ["table", "row", "column", "ours", "n", "paper", "ours_minus_paper", "comparable", "differs"]


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


# --- the paper's setting of a row --------------------------------------------------------------------------

COMPARED_GROUPS = ("dataset", "backbone", "extractor", "area", "background", "points")
"""The group choices a cell's run must share with the paper's row (where they act on the run)."""
PAPER_BACKBONES = ("sd15", "sd2", "sdxl", "flux")
"""The backbones the paper ran: a row over all of them ("the best backbone per column") takes any."""
STATED = {"backbone": ("steps", "s", "w", "strength", "leakage", "pipeline.model", "pipeline.quantize"),
          "extractor": ("model.size",), "points": ("n",)}
"""The values the paper states (or the hub model it ran) per group, compared where the choice agrees."""


@cache
def _group_file(group: str, choice: str) -> dict:
    """A config group's file as written (``conf/<group>/<choice>.yaml``), over the files it extends
    (``defaults: [/_backbone@_here_, _self_]``: every backbone's shared settings); {} where there is none."""
    path = Path(config_dir()) / group / f"{choice}.yaml"
    node = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    for entry in node.get("defaults") or []:
        if isinstance(entry, str) and entry.endswith("@_here_"):
            node = _over(_group_file("", entry.removesuffix("@_here_").lstrip("/")), node)
    return node


def _over(base: dict, node: dict) -> dict:
    """``node``'s keys over ``base``'s, nested dicts merged (Hydra's ``_self_`` last)."""
    merged = dict(base)
    for key, value in node.items():
        merged[key] = _over(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _leaves(node, prefix: str = "") -> dict:
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    return {k: v for key, value in node.items() for k, v in _leaves(value, f"{prefix}{key}.").items()}


def _file_setting(group: str, choice: str) -> tuple[dict[str, str], dict]:
    """(the group choices, the dotted values) a named config (``variant=ours_flux``) sets."""
    node = dict(_group_file(group, choice))
    choices = {}
    for entry in node.pop("defaults", None) or []:
        if isinstance(entry, dict):
            for key, value in entry.items():
                name = key.replace("override", "").strip().lstrip("/")
                if name in COMPARED_GROUPS:
                    choices[name] = str(value)
    node.pop("paper", None)
    node.pop("hydra", None)
    return choices, _leaves(node)


def paper_setting(spec: dict, row: dict, conditions: dict) -> tuple[dict[str, str], dict]:
    """(group choices, dotted values) of the paper's run behind one cell: ``run.yaml``'s defaults (hull,
    histogram, nine random points, SAM), the table's ``dataset``/``backbone``/``extractor`` and ``where``,
    the row's ``variant`` as that file composes it, then the row's and the column's own ``match``."""
    choices, values = {}, {}
    for entry in _group_file("", "run").get("defaults", []):
        if isinstance(entry, dict):  # the backbone is the row's or the table's: the paper ran four
            choices.update({k: str(v) for k, v in entry.items() if k in COMPARED_GROUPS and k != "backbone"
                            and v is not None})
    for source in (spec, row):
        choices.update({k: str(source[k]) for k in ("dataset", "backbone", "extractor") if source.get(k)})
    match = {**(spec.get("where") or {}), **(row.get("match") or {}), **conditions}
    if "variant" in match:
        variant_choices, values = _file_setting("variant", str(match["variant"]))
        choices.update(variant_choices)
    for key, value in match.items():
        if "." in key:
            values[key] = value
        elif key in COMPARED_GROUPS:
            choices[key] = str(value)
    return choices, values


def differences(record: RunRecord, choices: dict[str, str], values: dict, per_object: bool = False) -> list[str]:
    """What of the paper's setting a run does not share, one phrase each: ``backbone tiny_sd ≠ sd15``,
    ``backbone.steps 50 ≠ 20``, ``dataset.limit 5 (the paper: all objects)``; ``per_object``: a metric per
    object (seconds, memory), which a limit on the objects leaves as it is."""
    acting = record.acting_choices
    found = []
    for group in COMPARED_GROUPS:
        ours, paper = acting.get(group), choices.get(group)
        if group == "backbone" and ours is not None and paper is None:  # a row over the paper's backbones
            if ours not in PAPER_BACKBONES:
                found.append(f"backbone {ours} (the paper: {', '.join(PAPER_BACKBONES)})")
            paper = ours
        if ours is None or paper is None:
            continue  # the group does not act on the run (a backbone beside method=area)
        if ours != paper:
            found.append(f"{group} {ours} ≠ {paper}")
            continue
        stated = _leaves(_group_file(group, paper))
        for key in STATED.get(group, ()):
            dotted = f"{group}.{key}"
            wanted = values.get(dotted, stated.get(key))
            have = setting(record, dotted)
            if (key in stated or dotted in values) and not same(have, wanted):
                what = "weights" if key == "pipeline.model" else dotted
                found.append(f"{what} {format_value(have)} ≠ {format_value(wanted)}")
    for key, wanted in values.items():  # what the row's variant sets beyond the stated values
        group = key.split(".")[0]
        if group in acting and key.split(".", 1)[-1] not in STATED.get(group, ()) and \
                not same(setting(record, key), wanted):
            found.append(f"{key} {format_value(setting(record, key))} ≠ {format_value(wanted)}")
    limit = setting(record, "dataset.limit")
    if limit is not None and not per_object:
        found.append(f"dataset.limit {limit} (the paper: all objects)")
    return found


def _union(lists) -> list[str]:
    return list(dict.fromkeys(x for items in lists for x in items))


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
                    paper_choices, paper_values = paper_setting(spec, row, conditions)
                    cell.differs = _union(differences(r, paper_choices, paper_values, name in PER_OBJECT)
                                          for r in fits if r.label in cell.runs)
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


def table_order(name: str) -> tuple:
    """Table 2 before Table 10 before Table S1: numbers in a name compare as numbers."""
    return tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in re.split(r"(\d+)", name) if x)


def paper_tables(records: list[RunRecord]) -> list[dict]:
    """The ``paper`` blocks of all runs, merged: one table per name (the same table written by two
    experiments is one table, with the rows of both, each once), in the tables' own order (Table 2, …,
    Table 10, Table S1), so the report is the same whatever order its runs were given in."""
    by_name: dict[str, list[dict]] = {}
    for record in records:
        for spec in record.config.get("paper") or []:
            specs = by_name.setdefault(str(spec["table"]), [])
            if spec not in specs:
                specs.append(spec)
    tables = []
    for name in sorted(by_name, key=table_order):
        specs = sorted(by_name[name], key=lambda spec: json.dumps(spec, sort_keys=True, default=str))
        by_columns: dict[str, dict] = {}
        for spec in specs:  # tables of one name with other columns stay apart
            merged = by_columns.setdefault(json.dumps(spec["columns"]), {**spec, "rows": []})
            merged["rows"] += [row for row in spec["rows"] if row not in merged["rows"]]
        tables += by_columns.values()
    return tables
