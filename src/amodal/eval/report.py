"""Tables of runs: one row per run folder, the settings that tell the runs apart, and mIoU overall and in
each occlusion bucket, each with the number of objects behind it.

Numbers are recomputed from each run's results.jsonl (so a run still in progress, or one evaluated
with other bucket settings, reports consistently), falling back to metrics.json. Runs are labelled
``<sweep>/<num>`` and told apart by the config choices and values that act on their masks
(``eval/identity.py``), read from the files Hydra wrote, not from the command line. A run that is not
whole (no metrics.json yet, a torn last line, a merge of some shards only) says so in a status column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from omegaconf import OmegaConf

from amodal.errors import AmodalError
from amodal.eval.identity import acting_choices, acting_values, differing, run_labels
from amodal.eval.metrics import BUCKETS, UNOCCLUDED, bucket_key, bucket_label, summarize_with_baseline
from amodal.eval.results import has_torn_tail, iter_rows
from amodal.eval.run_folder import MERGED_FILE, METRICS_FILE, RESULTS_FILE, written_config


@dataclass
class RunRecord:
    path: Path
    metrics: dict
    choices: dict[str, str] = field(default_factory=dict)
    """Hydra's group choices (all of them but Hydra's own)."""
    config: dict = field(default_factory=dict)
    status: str = ""
    """What is not whole about the run ("" when it finished): unfinished, torn last line, partial merge."""
    """.hydra/config.yaml as written (interpolations unresolved)."""
    label: str = ""
    """``<sweep>/<num>``: the run folder and the folder above it."""
    baseline: dict | None = None
    """The metrics Â = V would get on the same objects (``metrics.visible_baseline``), where known."""

    @cached_property
    def acting_choices(self) -> dict[str, str]:
        return acting_choices(self.config, self.choices) if self.config else dict(self.choices)

    @cached_property
    def acting_values(self) -> dict[str, str]:
        return acting_values(self.config) if self.config else {}

    @cached_property
    def settings(self) -> dict[str, str]:
        """The acting choices and config values, by name (``area``, ``backbone.s``)."""
        return {**self.acting_values, **self.acting_choices}


def load_run(path: Path, include_unoccluded: bool | None = None) -> RunRecord:
    config = written_config(path)
    eval_cfg = config.get("eval", {})
    hydra_meta = written_config(path, "hydra.yaml")
    choices = {
        k: str(v)
        for k, v in ((hydra_meta.get("hydra") or {}).get("runtime", {}).get("choices") or {}).items()
        if not k.startswith("hydra/") and v is not None
    }
    baseline = None
    if (path / RESULTS_FILE).exists():
        if include_unoccluded is None:
            include_unoccluded = bool(eval_cfg.get("include_unoccluded", False))
        buckets = tuple(eval_cfg.get("buckets", BUCKETS))
        metrics, baseline = summarize_with_baseline(iter_rows(path / RESULTS_FILE), buckets, include_unoccluded)
    else:
        metrics = json.loads((path / METRICS_FILE).read_text())
        if metrics.get("metric") == "ap":  # eval.metric=ap: no rows, no buckets
            raise AmodalError(f"{path} holds COCO AP/AR (eval.metric=ap), not mIoU: read its metrics.json, and "
                              "give amodal-report the mIoU runs only")
    label = "/".join(Path(path).resolve().parts[-2:])
    return RunRecord(path=path, metrics=metrics, choices=choices, config=config, label=label, baseline=baseline,
                     status=run_status(path, config))


def load_runs(paths: list[Path], include_unoccluded: bool | None = None) -> list[RunRecord]:
    """Each run folder's record, labelled so that no two read alike."""
    records = [load_run(path, include_unoccluded) for path in paths]
    for record, label in zip(records, run_labels([r.path for r in records])):
        record.label = label
    return records


def is_shard(record: RunRecord) -> bool:
    """A shard of a sharded run (``shard.count`` > 1), not a merge of shards."""
    shard = record.config.get("shard") or {}
    return int(shard.get("count", 1) or 1) > 1 and not (record.path and (Path(record.path) / MERGED_FILE).exists())


def without_shards(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """The runs that are not shards, and one line per sharded run saying how to get it (a shard holds
    some of the objects: as a run of its own its numbers would mislead)."""
    runs = [r for r in records if not is_shard(r)]
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if is_shard(record):
            config = {k: v for k, v in record.config.items() if k != "shard"}
            groups.setdefault(json.dumps(config, sort_keys=True, default=str), []).append(record)
    lines = []
    for shards in groups.values():
        folders = sorted({Path(r.path).parent for r in shards})
        whole = len(folders) == 1 and len(groups) == 1  # the folder holds these shards only
        sources = [str(f) for f in folders] if whole else [str(r.path) for r in shards]
        merged = f"{folders[0]}-merged" if whole else f"{folders[0]}/merged-{len(lines)}"
        count = int(shards[0].config["shard"]["count"])
        names = [r.label + (" unfinished" if r.status else "") for r in shards]
        partial = " --partial" if len(shards) < count or any(r.status for r in shards) else ""
        lines.append(f"{len(shards)} of the {count} shards of one run ({', '.join(names)}) are left out of the "
                     f"tables; report the run they split: amodal-merge {' '.join(sources)} --out {merged}"
                     f"{partial} && amodal-report {merged}")
    return runs, lines


def run_status(path: Path, config: dict) -> str:
    """"" for a finished run, else what is missing: a run or shard still going or stopped (no metrics.json),
    a line a crash tore, a merge of some of the shards (merged.json ``partial``)."""
    merged = path / MERGED_FILE
    if merged.exists():
        info = json.loads(merged.read_text())
        if not info.get("partial"):
            return ""
        count, have = info.get("shard_count"), {int(i) for i in info.get("shards", {})}
        missing = [str(i) for i in range(count or 0) if i not in have]
        unfinished = [str(i) for i in info.get("unfinished", [])]
        return "partial merge" + (f", shards {', '.join(missing)} of {count} missing" if missing else "") + (
            f", shards {', '.join(unfinished)} unfinished" if unfinished else "")
    notes = []
    if not (path / METRICS_FILE).exists():
        shard = config.get("shard") or {}
        sharded = int(shard.get("count", 1)) > 1
        notes.append(f"unfinished shard {shard['index']} of {shard['count']}" if sharded else "unfinished")
    if has_torn_tail(path / RESULTS_FILE):
        notes.append("torn last line")
    return ", ".join(notes)


def unpredicted_unoccluded(record: RunRecord) -> str | None:
    """One line when the table counts unoccluded objects but the run did not predict some of them."""
    missing = record.metrics["counts"].get("unscored", {}).get(UNOCCLUDED, 0)
    if not (record.metrics.get("include_unoccluded") and missing):
        return None
    return (f"{record.path}: {missing} unoccluded objects were not predicted (the run had "
            "eval.include_unoccluded=false), so its numbers leave them out; to score them, run it again "
            "with eval.include_unoccluded=true into a new folder")


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders (holding results.jsonl or metrics.json) at or below each path, in sweep order."""
    found: list[Path] = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        candidates = {p.parent for name in (RESULTS_FILE, METRICS_FILE) for p in root.rglob(name)}
        candidates = {c for c in candidates if "wandb" not in c.parts}
        found += sorted(candidates, key=lambda p, root=root: _sweep_order(p, root))
    return found


def _sweep_order(path: Path, root: Path) -> tuple:
    """Job folders 0, 1, …, 10 in numeric order."""
    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in path.relative_to(root).parts)


HELD = (("dataset", "dataset"), ("dataset root", "dataset.root"), ("backbone", "backbone"),
        ("extractor", "extractor"), ("limit", "dataset.limit"), ("seed", "runtime.seed"), ("dtype", "runtime.dtype"))
"""What a reader needs to know was the same for every run: (what the line calls it, the setting)."""


def _held_value(record: RunRecord, key: str) -> str | None:
    """A run's value of one of ``HELD`` where it acts on the run (the dataset root: its last folder)."""
    if key == "dataset.root":
        if "dataset.root" not in record.acting_values:
            return None
        try:
            root = OmegaConf.select(OmegaConf.create(record.config), "dataset.root")
        except Exception:  # an interpolation this process cannot resolve: the value as written
            root = record.config["dataset"]["root"]
        return Path(str(root)).name or str(root)
    return record.settings.get(key)


def held_constant(records: list[RunRecord]) -> list[tuple[str, str]]:
    """(name, value) of each setting in ``HELD`` that all runs acting on it share."""
    shared = []
    for name, key in HELD:
        values = {_held_value(r, key) for r in records} - {None, "null"}
        if len(values) == 1:
            shared.append((name, values.pop()))
    return shared


def held_constant_line(records: list[RunRecord]) -> str:
    """``Held constant: dataset cocoa (root cocoa-demo), backbone tiny_sd, …``, or "" when nothing is."""
    shared = dict(held_constant(records))
    if not shared:
        return ""
    if "dataset root" in shared and "dataset" in shared:
        shared["dataset"] += f" (root {shared.pop('dataset root')})"
    return "Held constant: " + ", ".join(f"{name} {value}" for name, value in shared.items())


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def number(value: float | None) -> str:
    """A number as the CSV files write it (empty when there is none)."""
    return "" if value is None else f"{value:.4f}"


def score(value: float | None, n: int | None) -> str:
    """An mIoU (%) with the number of objects behind it: ``81.0 (n=6)``; ``–`` where n is not known (an
    mIoU_occ of rows written before iou_occ was recorded)."""
    return percent(value) if n is None else cell({"miou": value, "n": n})


METRICS = {"miou": ("mIoU", "n"), "miou_occ": ("mIoU_occ", "n_occ")}
"""The per-object means a table or the plot can show: their titles and the key of their object count."""


def metric_score(scores: dict, metric: str) -> tuple[float | None, int | None]:
    """(value, objects) of ``metric`` in a metrics dict, a bucket or a category; (None, None) where the
    run predates it."""
    return scores.get(metric), scores.get(METRICS[metric][1])


def cell(stats: dict) -> str:
    """An mIoU (%) with what stands behind it, from a metrics or bucket dict: ``81.0 (n=6)``; with its
    bootstrap interval (``eval/spread.py``) ``81.0 [79.2, 82.7] (n=6)``; for a group of seeds
    ``81.0 ± 1.2 (n=6, 3 seeds)``."""
    text = percent(stats["miou"])
    if stats.get("miou_std") is not None:
        text += f" ± {100 * stats['miou_std']:.1f}"
    if "ci95" in stats:
        text += " " + interval(stats["ci95"])
    n = "–".join(map(str, stats["n_range"])) if stats.get("n_range") else str(stats["n"])
    seeds = f", {stats['seeds']} seeds" if stats.get("seeds") else ""
    return f"{text} (n={n}{seeds})"


def interval(ci: list[float] | None) -> str:
    """``[79.2, 82.7]`` in %, ``[–]`` where too few objects give none."""
    return "[–]" if ci is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def spread_columns(records: list[RunRecord]) -> list[str]:
    """The CSV's columns beside each mIoU for what ``--ci`` and ``--seeds`` added (none without them)."""
    ci = any("ci95" in r.metrics for r in records)
    seeds = any(r.metrics.get("seeds") for r in records)
    return [*(["miou_ci_low", "miou_ci_high"] if ci else []), *(["miou_std", "seeds"] if seeds else [])]


def spread_values(stats: dict, names: list[str]) -> list[str]:
    low, high = stats.get("ci95") or (None, None)
    values = {"miou_ci_low": number(_pct(low)), "miou_ci_high": number(_pct(high)),
              "miou_std": number(_pct(stats.get("miou_std"))), "seeds": str(stats.get("seeds") or 1)}
    return [values[name] for name in names]


def setting_columns(records: list[RunRecord]) -> list[str]:
    """The acting choices and config values that differ between the runs (all of them for one run)."""
    if len(records) == 1:
        return list(records[0].acting_choices)
    return differing([r.acting_choices for r in records], [r.acting_values for r in records])


def runs_table(records: list[RunRecord]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): the run, its settings, mIoU overall and per bucket (each with n), pixel IoU, and
    mIoU_occ (the hidden part's, with the objects that have one)."""
    columns = setting_columns(records)
    bucket_names = [b["label"] for b in records[0].metrics["buckets"]] if records else []
    header = ["run", *columns, "mIoU", *bucket_names, "pixel IoU", "mIoU_occ"]
    rows = []
    for record in records:
        m, settings = record.metrics, record.settings
        rows.append([record.label, *(settings.get(k, "") for k in columns), cell(m),
                     *(cell(b) for b in m["buckets"]), percent(m["pixel_iou"]), score(*metric_score(m, "miou_occ"))])
    return with_status(header, rows, records)


def with_status(header: list[str], rows: list[list[str]], records: list[RunRecord]):
    """A ``status`` column ("finished" or what is not whole) when some run is not whole, else none."""
    if not any(record.status for record in records):
        return header, rows
    return [*header, "status"], [[*row, record.status or "finished"] for row, record in zip(rows, records)]


def runs_csv(records: list[RunRecord]) -> str:
    """The runs table as numbers: mIoU, pixel IoU and mIoU_occ in %, each bucket's n in a column of its
    own (mIoU_occ and n_occ empty for runs that predate them)."""
    columns = setting_columns(records)
    keys = [bucket_key(b["max_occlusion"]) for b in records[0].metrics["buckets"]] if records else []
    spread = spread_columns(records)
    names = ["miou", *spread, "n"]
    header = ["run", *columns, *names, *(f"{name}_{k}" for k in keys for name in names), "pixel_iou",
              "miou_occ", "n_occ", *(f"{name}_{k}" for k in keys for name in ("miou_occ", "n_occ"))]
    rows = []

    def values(stats: dict) -> list[str]:
        return [number(_pct(stats["miou"])), *spread_values(stats, spread), str(stats["n"])]

    for record in records:
        m, settings = record.metrics, record.settings
        buckets = [x for b in m["buckets"] for x in values(b)]
        hidden = [x for scores in (m, *m["buckets"]) for x in _numbers(*metric_score(scores, "miou_occ"))]
        rows.append([record.label, *(settings.get(k, "") for k in columns), *values(m),
                     *buckets, number(_pct(m["pixel_iou"])), *hidden])
    return to_csv(*with_status(header, rows, records))


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _numbers(value: float | None, n: int | None) -> tuple[str, str]:
    return number(_pct(value)), "" if n is None else str(n)


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


LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "{": r"\{", "}": r"\}",
         "$": r"\$", "^": r"\^{}", "~": r"\~{}", "≤": r"$\leq$", "–": "--", "−": "$-$", "✗": r"$\times$",
         "Â": r"$\hat{A}$", "†": r"$^\dagger$", "≠": r"$\neq$"}


def latex_escape(text: str) -> str:
    """Text as LaTeX prints it (one pass, so that no replacement is escaped again)."""
    return "".join(LATEX.get(char, char) for char in str(text))


def latex_cell(stats: dict) -> str:
    """``cell`` in LaTeX: ``81.0 $\\pm$ 1.2 {\\scriptsize [79.2, 82.7] $n$=6, 3 seeds}``."""
    text = "--" if stats["miou"] is None else f"{100 * stats['miou']:.1f}"
    if stats.get("miou_std") is not None:
        text += rf" $\pm$ {100 * stats['miou_std']:.1f}"
    small = [latex_escape(interval(stats["ci95"]))] if "ci95" in stats else []
    n = "--".join(map(str, stats["n_range"])) if stats.get("n_range") else str(stats["n"])
    small.append(r"$n$=" + n + (f", {stats['seeds']} seeds" if stats.get("seeds") else ""))
    return text + r" {\scriptsize " + " ".join(small) + "}"


def latex_score(value: float | None, n: int | None) -> str:
    """``81.0 {\\scriptsize n=6}`` (an mIoU in %, with its object count set small)."""
    text = "--" if value is None else f"{value:.1f}"
    return text if n is None else text + r" {\scriptsize $n$=" + str(n) + "}"


def latex_table(header: list[str], rows: list[list[str]], *, text_columns: int, caption: str, label: str,
                notes: list[str] = ()) -> str:
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


RUNS_CAPTION = ("mIoU (%) of each run, overall (occluded objects, unless the run counted the unoccluded ones too) "
                "and by occlusion rate (≤X%: at most X% hidden); n: objects")


def runs_latex(records: list[RunRecord]) -> str:
    columns = setting_columns(records)
    header, _ = runs_table(records)
    rows = []
    for record in records:
        m, settings = record.metrics, record.settings
        rows.append([latex_escape(record.label), *(latex_escape(settings.get(k, "")) for k in columns),
                     latex_cell(m), *(latex_cell(b) for b in m["buckets"]),
                     latex_score(_pct(m["pixel_iou"]), None),
                     latex_score(_pct(m.get("miou_occ")), m.get("n_occ")),
                     *([latex_escape(record.status or "finished")] if "status" in header else [])])
    sweeps = sorted({r.label.rsplit("/", 1)[0] for r in records})
    caption = f"{RUNS_CAPTION}. Runs of {', '.join(sweeps)}."
    return latex_table(header, rows, text_columns=1 + len(columns), caption=caption, label="tab:runs")


def bucket_table(metrics: dict) -> str:
    """One run's metrics as a small markdown table (printed at the end of amodal-run)."""
    header = ["", "all", *(bucket_label(b["max_occlusion"]) for b in metrics["buckets"])]
    miou = ["mIoU", percent(metrics["miou"]), *(percent(b["miou"]) for b in metrics["buckets"])]
    count = ["n", str(metrics["n"]), *(str(b["n"]) for b in metrics["buckets"])]
    hidden = ["mIoU_occ", *(percent(m.get("miou_occ")) for m in (metrics, *metrics["buckets"]))]
    count_hidden = ["n_occ", *(str(m.get("n_occ")) for m in (metrics, *metrics["buckets"]))]
    counts = metrics["counts"]
    notes = f"objects: {counts['objects']}, scored: {counts['scored']}, unoccluded: {counts['unoccluded']}"
    for what in ("unscored", "skipped"):
        if counts.get(what):
            notes += f", {what}: " + ", ".join(f"{v} ({k})" for k, v in counts[what].items())
    return to_markdown(header, [miou, count, hidden, count_hidden]) + "\n" + notes


def category_table(records: list[RunRecord], metric: str = "miou") -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per category that some run names, one column per run, each cell the run's
    ``metric`` (%) on that category with its objects; a last row with all objects."""
    names = sorted({name for record in records for name in record.metrics.get("categories") or {}})
    header = ["category", *(record.label for record in records)]
    rows = [[name, *(score(*metric_score((r.metrics.get("categories") or {}).get(name, {"n": 0}), metric))
                     for r in records)] for name in names]
    rows.append(["all", *(score(*metric_score(r.metrics, metric)) for r in records)])
    return header, rows


def category_markdown(records: list[RunRecord], metric: str = "miou") -> str:
    title, count = METRICS[metric]
    text = (f"{title} (%) by category, over the objects mIoU counts ({count}: those behind each number"
            + (", the ones with a hidden part" if metric == "miou_occ" else "") + ").\n\n")
    return text + to_markdown(*category_table(records, metric)) + "\n"
