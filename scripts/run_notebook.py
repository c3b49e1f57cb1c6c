"""Run a notebook headless from top to bottom with nbclient (the dev extra installs it; `jupyter nbconvert`
is not installed), as `make notebook` and tests/test_notebook.py do.

    python scripts/run_notebook.py                                  # notebooks/walkthrough.ipynb
    python scripts/run_notebook.py notebooks/walkthrough.ipynb --out outputs/walkthrough.ipynb

The kernel runs in a temporary folder (what the notebook writes lands there) with this checkout's src/ on
its path. Exit 1, naming the cell, when a cell fails; with --out, the executed notebook, outputs and all.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[1]
WALKTHROUGH = REPO / "notebooks" / "walkthrough.ipynb"
TIMEOUT_S = 300
"""Per cell; the slowest, the trained synthetic_sd inpainting one object, takes seconds on a CPU."""


def execute(notebook: Path, workdir: Path) -> nbformat.NotebookNode:
    """The notebook with its outputs, run in ``workdir`` by a python3 kernel that imports this checkout."""
    node = nbformat.read(notebook, as_version=4)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), before]))  # the kernel's
    try:
        NotebookClient(node, timeout=TIMEOUT_S, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    return node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=WALKTHROUGH)
    parser.add_argument("--out", type=Path, help="write the executed notebook here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            node = execute(args.notebook, Path(workdir))
        except CellExecutionError as err:
            print(f"{args.notebook}: a cell failed:\n{err}", file=sys.stderr)
            return 1
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(node, args.out)
    print(f"{args.notebook}: ran every cell" + (f"; executed notebook in {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
