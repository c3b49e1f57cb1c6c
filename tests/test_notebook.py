"""The walkthrough notebook runs headless from top to bottom, on the shipped synthetic_sd backbone, with the
runner `make notebook` uses (scripts/run_notebook.py: nbclient, since jupyter's nbconvert is not installed)."""

import importlib.util
import re
import shlex
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"
SCRIPT = REPO / "scripts" / "run_notebook.py"

spec = importlib.util.spec_from_file_location("run_notebook", SCRIPT)
run_notebook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_notebook)


def make_recipe(target: str) -> list[list[str]]:
    """The commands of a Makefile target, split as the shell splits them."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(shlex.split(line.strip()))
    return recipe


def test_make_notebook_runs_the_walkthrough_with_the_runner_this_test_uses():
    """`make notebook` once called `jupyter nbconvert`, which the project does not install."""
    (command,) = make_recipe("notebook")
    assert command[:2] == ["$(PY)", "scripts/run_notebook.py"]
    assert (REPO / command[1]).resolve() == SCRIPT
    assert [REPO / a for a in command[2:]] in ([], [NOTEBOOK])
    assert run_notebook.WALKTHROUGH == NOTEBOOK


@pytest.mark.slow
def test_the_runner_names_the_failing_cell(tmp_path, capsys):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('fine')"),
                                                nbformat.v4.new_code_cell("raise ValueError('broken cell')")])
    nbformat.write(notebook, tmp_path / "bad.ipynb")
    assert run_notebook.main([str(tmp_path / "bad.ipynb")]) == 1
    assert "broken cell" in capsys.readouterr().err


@pytest.mark.slow
def test_walkthrough_notebook_executes(tmp_path):
    notebook = run_notebook.execute(NOTEBOOK, tmp_path)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]  # no library warnings in the reader's way
    assert sum(o.get("output_type") == "display_data" for o in outputs) >= 5  # the pictures
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "backbone=synthetic_sd extractor=RegionExtractor" in text
    # the walked-through object: the trained model completes it (measured: 0.915 against 0.706)
    ours, visible = map(float, re.search(r"IoU\(Â, A\) = ([\d.]+) +IoU\(V, A\) = ([\d.]+)", text).groups())
    assert ours > visible
