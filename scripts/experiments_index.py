"""Write experiments/README.md, the index of the studies, from the sweep files conf/experiment/*.yaml.

    python scripts/experiments_index.py           # rewrite experiments/README.md
    python scripts/experiments_index.py --check   # exit 1 if it is not what the sweep files say (a test runs this)

Each entry comes from its file alone: what it reproduces and its commands (the file's header comment;
indented comment lines are commands), what it sweeps (``hydra.sweeper.params``), where its report lands,
and the paper's numbers (its ``paper:`` block, read as ``amodal-report`` reads it). Nothing is copied by
hand, so the index cannot disagree with the files.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from amodal.eval.paper import compare
from amodal.eval.table import to_markdown

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "conf" / "experiment"
INDEX = REPO / "experiments" / "README.md"


def header(text: str) -> tuple[list[str], list[str]]:
    """The file's leading comment as (prose lines, command lines)."""
    prose, commands = [], []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:]
        if body.strip() == "@package _global_":
            continue
        if body.startswith("   "):  # "#   amodal-run ...": a command
            commands.append(body.strip())
        else:
            prose.append(body.strip())
    return prose, commands


def order(name: str, prose: list[str]) -> tuple:
    """The paper's tables first, in the paper's order (1-9, then S1-S7), then the other studies by name."""
    found = re.match(r"Tables? (S?)(\d+)", prose[0]) if prose else None
    if found is None:
        return (2, 0, name)
    return (int(bool(found.group(1))), int(found.group(2)), name)


def markdown_text(text: str) -> str:
    """Comment text as markdown: a ``<placeholder>`` outside code spans is escaped, not read as HTML."""
    parts = text.split("`")
    return "`".join(part.replace("<", "\\<") if i % 2 == 0 else part for i, part in enumerate(parts))


def value(number) -> str:
    return "–" if number is None else f"{float(number):.1f}"


def paper_table(spec: dict) -> list[str]:
    table = compare(spec, [])  # the paper's side of what amodal-report prints
    caption = f" — {table.caption}" if table.caption else ""
    rows = [[label, *(value(cell.paper) for cell in cells)] for label, cells in table.rows]
    return [f"**{table.table}**{caption}", "", to_markdown(["", *table.labels], rows), ""]


def sweep_line(params: dict) -> str:
    return "Sweeps: " + "; ".join(f"`{key}` over `{values}`" for key, values in params.items()) + "."


def entry(path: Path) -> tuple[tuple, str, list[str]]:
    text = path.read_text()
    config = yaml.safe_load(text) or {}
    prose, commands = header(text)
    name = path.stem
    params = (config.get("hydra") or {}).get("sweeper", {}).get("params") or {}
    multirun = any(c.startswith("amodal-run -m") for c in commands)
    lines = [f"## `experiment={name}`", "", markdown_text(" ".join(prose)), "", "```bash", *commands, "```", ""]
    if params:
        lines += [sweep_line(params), ""]
    tables = config.get("paper") or []
    if multirun:
        what = ("our numbers beside the paper's (`report.md`, `paper.csv`, `paper.tex`)" if tables
                else "a row per run (`report.md`, `runs.csv`, `runs.tex`)")
        lines += ["Report: `<sweep dir>/report/` (`outputs/multiruns/<time>/` unless `hydra.sweep.dir` is set): "
                  f"{what} and `buckets.png`; `amodal-report <sweep dir>` prints it again.", ""]
    else:
        lines += ["Report: one run folder, `outputs/runs/<time>/` unless `hydra.run.dir` is set: `metrics.json`, the "
                  "table at the end of `run.log`, `pictures/`.", ""]
    lines += ["The paper's numbers:" if tables else "The paper's numbers: none (not a table of the paper).", ""]
    for spec in tables:
        lines += paper_table(spec)
    return order(name, prose), first_sentence(" ".join(prose)) or name, lines


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not the one of "eq. 7")."""
    return re.split(r"(?<=[.:])\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".:")


def index() -> str:
    entries = sorted(entry(path) for path in EXPERIMENTS.glob("*.yaml"))
    lines = [
        "# Experiments",
        "",
        "One entry per study: what it reproduces, its command, where its report lands and the paper's numbers.",
        "The studies themselves are the sweep files `conf/experiment/<name>.yaml`, run as",
        "`amodal-run -m experiment=<name>`; this page is generated from them (`python scripts/experiments_index.py`,",
        "and `tests/test_experiments.py` fails when it is stale), so edit the files, not this page. Set",
        "`paths.data` to the folder that holds the datasets ([docs/datasets.md](../docs/datasets.md)).",
        "",
        "| study | reproduces |",
        "|---|---|",
    ]
    for _, summary, body in entries:
        name = body[0].removeprefix("## `experiment=").removesuffix("`")
        lines.append(f"| [`{name}`](#experiment{name}) | {summary} |")
    lines.append("")
    for _, _, body in entries:
        lines += body
    return "\n".join(lines).rstrip() + "\n"


def entries_of(text: str) -> list[str]:
    """The study names an index lists, in its order."""
    return re.findall(r"^## `experiment=(\w+)`$", text, re.M)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if experiments/README.md is stale")
    args = parser.parse_args()
    text = index()
    if args.check:
        if INDEX.read_text() != text:
            print(f"{INDEX.relative_to(REPO)} is stale: run python scripts/experiments_index.py", file=sys.stderr)
            return 1
        return 0
    INDEX.parent.mkdir(exist_ok=True)
    INDEX.write_text(text)
    print(f"wrote {INDEX.relative_to(REPO)} ({len(entries_of(text))} studies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
