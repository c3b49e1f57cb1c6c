"""What a run was: the config choices and values that act on its masks.

Reports label their columns with these, W&B tags and names runs with them, and run.log records them.
A choice acts when the method reads it: ``method=visible`` reads no backbone, so a ``backbone=sd15``
beside it is noise, and so are the logger, the output settings and the device. Which sections the method
reads is found from the config itself: the method's node and everything it interpolates (``${area}``,
``${backbone}``, and what those interpolate in turn), plus the sections every run reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

RUN_SECTIONS = ("method", "dataset", "runtime", "shard", "eval")
"""Sections that act on every run, whatever the method."""
NAMED_CHOICES = ("experiment", "variant", "debug")
"""Groups that name a set of config changes rather than a section (``# @package _global_``)."""
NOT_ACTING = ("cache", "output", "logger", "hydra", "paper")
"""Sections that never change a mask (the cache returns what the model would draw)."""
NOT_ACTING_KEYS = ("runtime.device", "runtime.batch_size", "paths.checkpoints", "paths.outputs", "paths.cache")
"""Keys that leave the masks as they are (the same masks on any device and batch size, wherever the weights
are found and the outputs written); a reference to one does not make its section act."""
NOT_ACTING_CHOICES = ("paths",)
"""Groups whose choice says where files are: what acts of them (``paths.data``) is listed by key."""
CHOICE_ORDER = ("experiment", "variant", "debug", "dataset", "method")

_REFERENCE = re.compile(r"\$\{\s*([A-Za-z_]\w*(?:\.\w+)*)(?=[}\[\s])")  # ${area}, ${runtime.seed}; not ${device:auto}


def references(node) -> set[str]:
    """The top-level sections a config node interpolates."""
    if isinstance(node, dict):
        return set().union(*(references(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(references(v) for v in node)) if node else set()
    if not isinstance(node, str):
        return set()
    return {key.split(".")[0] for key in _REFERENCE.findall(node) if key not in NOT_ACTING_KEYS}


def acting_sections(config: dict) -> set[str]:
    """The run's sections and every section they interpolate, transitively (``config`` unresolved)."""
    found: set[str] = set()
    todo = [s for s in RUN_SECTIONS if s in config]
    while todo:
        section = todo.pop()
        if section in found or section in NOT_ACTING or section not in config:
            continue
        found.add(section)
        todo += references(config[section])
    return found


def acting_choices(config: dict, choices: dict) -> dict[str, str]:
    """Hydra's group choices that act on the run, in a stable order (named studies first)."""
    sections = acting_sections(config)
    acting = {group: str(choice) for group, choice in choices.items()
              if choice is not None and not group.startswith("hydra/") and group not in NOT_ACTING_CHOICES
              and (group in NAMED_CHOICES or group.split("@")[0] in sections)}
    first = [g for g in CHOICE_ORDER if g in acting]
    return {g: acting[g] for g in first + sorted(set(acting) - set(first))}


def _leaves(node, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def acting_values(config: dict) -> dict[str, str]:
    """Every config value the run acts on, by dotted key, formatted."""
    sections = acting_sections(config)
    return {key: format_value(value)
            for section in sorted(sections) for key, value in _leaves(config[section], f"{section}.")
            if key not in NOT_ACTING_KEYS}


def acting_overrides(config: dict, overrides: Sequence[str]) -> list[str]:
    """The command-line overrides that act on the run (``area=rect``, ``backbone.s=0.3``), values spelled
    as ``format_value`` spells them; ``logger=none``, ``output.progress=False`` and the like are left out."""
    sections = acting_sections(config)
    kept = []
    for override in overrides:
        key, _, value = str(override).lstrip("+~").partition("=")
        section = key.split(".")[0].split("@")[0]
        if key not in NOT_ACTING_KEYS and (section in NAMED_CHOICES or section in sections):
            kept.append(f"{key}={format_value(value)}")
    return kept


def format_value(value, digits: int | None = None) -> str:
    """One spelling for every value: ``false`` (YAML's, whatever wrote it), ``0.45`` (``digits``: significant
    digits, for legends), lists in brackets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.{digits or 6}g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v, digits) for v in value) + "]"
    text = str(value)
    if text in ("True", "False"):  # a choice or an override written by Python
        return text.lower()
    if digits is not None:
        try:
            return format_value(float(text), digits) if "." in text or "e" in text.lower() else text
        except ValueError:
            return text
    return text


def differing(choices: Sequence[dict[str, str]], values: Sequence[dict[str, str]]) -> list[str]:
    """The columns that tell runs apart: the acting choices that differ, then the config values that
    differ, each left out where the columns before it already tell it: ``backbone`` beside
    ``variant=ours_sd15,ours_sdxl``, ``backbone.s`` beside ``variant=no_leakage``; but ``backbone.s``
    swept with ``backbone=sd15,sdxl`` stays."""
    def told(rows: Sequence[dict[str, str]], key: str, by: list[str]) -> bool:
        seen: dict[tuple, set[str]] = {}
        for run_choices, row in zip(choices, rows):
            if key in row:
                seen.setdefault(tuple(run_choices.get(k) for k in by), set()).add(row[key])
        return all(len(v) == 1 for v in seen.values())

    columns: list[str] = []
    for key in _ordered(choices):
        if not told(choices, key, columns):
            columns.append(key)
    return columns + [k for k in _ordered(values) if not told(values, k, columns)]


def _ordered(rows: Iterable[dict[str, str]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return keys


def run_labels(paths: Sequence[Path]) -> list[str]:
    """``<sweep>/<num>`` for each run folder (more of its path where two would read alike)."""
    parts = [Path(p).resolve().parts for p in paths]
    depth = [2] * len(parts)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clashes = {label for label in labels if labels.count(label) > 1}
        grown = [d + 1 if label in clashes and d < len(p) else d for p, d, label in zip(parts, depth, labels)]
        if grown == depth:
            return labels
        depth = grown
