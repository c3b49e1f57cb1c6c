"""One table model, three renderings: a header of columns and rows of cells, written as markdown (the
report), CSV (numbers, for a spreadsheet) and LaTeX (booktabs, to paste into a paper), each from the same
cells, so the three cannot disagree.

A cell is what its column's kind says: ``text`` (a string), ``percent`` (a fraction, printed in %) or
``score`` (a metrics, bucket or category dict: ``miou`` with the objects ``n`` behind it, and where
``eval/spread.py`` added them its 95 % interval ``ci95``, ``miou_std``, ``seeds``, ``n_range``). Markdown
and LaTeX print a score in one cell (``81.0 [79.2, 82.7] (n=6)``); the CSV gives each of its numbers a
column of its own. A column may be the CSV's only (``shown=False``): numbers too many for a page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

METRICS = {"miou": ("mIoU", "n"), "miou_occ": ("mIoU_occ", "n_occ")}
"""The per-object means a table or the plot can show: their titles and the key of their object count."""


def metric_score(scores: dict, metric: str) -> tuple[float | None, int | None]:
    """(value, objects) of ``metric`` in a metrics dict, a bucket or a category; (None, None) where the
    run predates it."""
    return scores.get(metric), scores.get(METRICS[metric][1])


def score_of(scores: dict, metric: str) -> dict:
    """``metric`` of a metrics dict, a bucket or a category as a score cell (``miou``, ``n``)."""
    value, n = metric_score(scores, metric)
    return {"miou": value, "n": n}


# --- numbers as text ---------------------------------------------------------------------------------------

def pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def number(value: float | None) -> str:
    """A number as the CSV files write it (empty when there is none)."""
    return "" if value is None else f"{value:.4f}"


def interval(ci: list[float] | None) -> str:
    """``[79.2, 82.7]`` in %, ``[–]`` where too few objects give none."""
    return "[–]" if ci is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def cell(stats: dict) -> str:
    """A score as markdown: ``81.0 (n=6)``; with its bootstrap interval (``eval/spread.py``)
    ``81.0 [79.2, 82.7] (n=6)``; for a group of seeds ``81.0 ± 1.2 (n=6, 3 seeds)``; without a known n
    (an mIoU_occ of rows written before iou_occ was recorded) the mean alone."""
    if stats.get("n") is None and not stats.get("n_range"):
        return percent(stats["miou"])
    text = percent(stats["miou"])
    if stats.get("miou_std") is not None:
        text += f" ± {100 * stats['miou_std']:.1f}"
    if "ci95" in stats:
        text += " " + interval(stats["ci95"])
    n = "–".join(map(str, stats["n_range"])) if stats.get("n_range") else str(stats["n"])
    seeds = f", {stats['seeds']} seeds" if stats.get("seeds") else ""
    return f"{text} (n={n}{seeds})"


def score(value: float | None, n: int | None) -> str:
    """An mIoU (%) with the number of objects behind it: ``81.0 (n=6)``; ``–`` where n is not known."""
    return cell({"miou": value, "n": n})


LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "{": r"\{", "}": r"\}",
         "$": r"\$", "^": r"\^{}", "~": r"\~{}", "≤": r"$\leq$", "–": "--", "−": "$-$", "✗": r"$\times$",
         "Â": r"$\hat{A}$", "†": r"$^\dagger$", "≠": r"$\neq$"}


def latex_escape(text: str) -> str:
    """Text as LaTeX prints it (one pass, so that no replacement is escaped again)."""
    return "".join(LATEX.get(char, char) for char in str(text))


def latex_score(value: float | None, n: int | None) -> str:
    """``81.0 {\\scriptsize n=6}`` (an mIoU in %, with its object count set small)."""
    text = "--" if value is None else f"{value:.1f}"
    return text if n is None else text + r" {\scriptsize $n$=" + str(n) + "}"


def latex_cell(stats: dict) -> str:
    """``cell`` in LaTeX: ``81.0 $\\pm$ 1.2 {\\scriptsize [79.2, 82.7] $n$=6, 3 seeds}``."""
    if stats.get("n") is None and not stats.get("n_range"):
        return latex_score(pct(stats["miou"]), None)
    text = "--" if stats["miou"] is None else f"{100 * stats['miou']:.1f}"
    if stats.get("miou_std") is not None:
        text += rf" $\pm$ {100 * stats['miou_std']:.1f}"
    small = [latex_escape(interval(stats["ci95"]))] if "ci95" in stats else []
    n = "--".join(map(str, stats["n_range"])) if stats.get("n_range") else str(stats["n"])
    small.append(r"$n$=" + n + (f", {stats['seeds']} seeds" if stats.get("seeds") else ""))
    return text + r" {\scriptsize " + " ".join(small) + "}"


SPREAD = ("miou_ci_low", "miou_ci_high", "miou_std", "seeds")
"""The CSV's numbers beside a mean for what ``--ci`` and ``--seeds`` added."""


def spread_values(stats: dict, names: Sequence[str]) -> list[str]:
    low, high = stats.get("ci95") or (None, None)
    values = {"miou_ci_low": number(pct(low)), "miou_ci_high": number(pct(high)),
              "miou_std": number(pct(stats.get("miou_std"))), "seeds": str(stats.get("seeds") or 1)}
    return [values[name] for name in names]


# --- the model ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    title: str
    """The heading in markdown and LaTeX."""
    csv: tuple[str, ...] = ()
    """The CSV's headings: one for text and percent (the title where none is given); for a score the
    mean's, then ``spread``'s, then the object count's."""
    kind: str = "text"
    """``text``, ``percent``, ``score`` or ``versus`` (ours against the paper's number: a cell with
    ``text()`` and ``latex()``, ``eval/paper.py``'s ``Cell``; markdown and LaTeX only, as the paper tables'
    CSV gives each such cell a row of its own)."""
    spread: tuple[str, ...] = ()
    """Of ``SPREAD``, the numbers a score's CSV gives beside its mean."""
    shown: bool = True
    """False: in the CSV only."""

    @property
    def csv_headings(self) -> list[str]:
        return list(self.csv) if self.csv else [self.title]


@dataclass
class Table:
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    text_columns: int = 1
    """How many columns, from the left, are text (left-aligned in LaTeX)."""

    def _shown(self) -> list[int]:
        return [i for i, column in enumerate(self.columns) if column.shown]

    @property
    def header(self) -> list[str]:
        return [self.columns[i].title for i in self._shown()]

    def text_rows(self) -> list[list[str]]:
        """The rows as markdown prints them."""
        return [[_markdown(self.columns[i], row[i]) for i in self._shown()] for row in self.rows]

    def to_markdown(self) -> str:
        return to_markdown(self.header, self.text_rows())

    def to_csv(self) -> str:
        header = [h for column in self.columns for h in column.csv_headings]
        rows = [[x for column, value in zip(self.columns, row) for x in _csv(column, value)] for row in self.rows]
        return to_csv(header, rows)

    def to_latex(self, caption: str, label: str, notes: Sequence[str] = ()) -> str:
        rows = [[_latex(self.columns[i], row[i]) for i in self._shown()] for row in self.rows]
        return latex_table(self.header, rows, text_columns=self.text_columns, caption=caption, label=label,
                           notes=notes)


def _markdown(column: Column, value) -> str:
    if column.kind == "score":
        return cell(value)
    if column.kind == "versus":
        return value.text()
    return percent(value) if column.kind == "percent" else str(value)


def _csv(column: Column, value) -> list[str]:
    if column.kind == "versus":
        raise ValueError(f"column {column.title!r}: a versus cell has no CSV here (eval/paper.py: one row per cell)")
    if column.kind == "score":
        n = value.get("n")
        return [number(pct(value["miou"])), *spread_values(value, column.spread), "" if n is None else str(n)]
    return [number(pct(value))] if column.kind == "percent" else [str(value)]


def _latex(column: Column, value) -> str:
    if column.kind == "score":
        return latex_cell(value)
    if column.kind == "versus":
        return value.latex()
    return latex_score(pct(value), None) if column.kind == "percent" else latex_escape(value)


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def latex_table(header: list[str], rows: list[list[str]], *, text_columns: int, caption: str, label: str,
                notes: Sequence[str] = ()) -> str:
    """A booktabs ``table`` with a caption, ready to paste (``\\usepackage{booktabs}``): the first
    ``text_columns`` columns left-aligned, the numbers right-aligned. Cells are LaTeX already; ``notes``
    (text) are set small under the table."""
    align = "l" * text_columns + "r" * (len(header) - text_columns)
    lines = [r"% needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             r"\caption{" + latex_escape(caption) + "}", r"\label{" + label + "}",
             r"\begin{tabular}{" + align + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [r"\par\smallskip{\footnotesize " + latex_escape(note) + "}" for note in notes]
    lines += [r"\end{table}"]
    return "\n".join(lines) + "\n"
