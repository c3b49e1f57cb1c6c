"""Every console script fails the one way (``amodal.cli.errors``): an ``AmodalError`` is one line,
``<prog>: error: <message>``, on stderr, and exit status 2, with no trace."""

import logging
import sys
from importlib import import_module
from pathlib import Path

import pytest
import tomllib

import amodal.cli.errors
from amodal.errors import AmodalError

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

# A function each entry point calls once its arguments are read, and the arguments it is given.
CALLED = {
    "amodal-run": ("evaluate", lambda tmp: [f"hydra.run.dir={tmp / 'run'}"]),
    "amodal-report": ("find_runs", lambda tmp: [str(tmp)]),
    "amodal-predict": ("predict", lambda tmp: [f"hydra.run.dir={tmp / 'run'}"]),
    "amodal-merge": ("merge", lambda tmp: [str(tmp / "a"), "--out", str(tmp / "merged")]),
    "amodal-compare": ("write_comparison", lambda tmp: [str(tmp / "a"), str(tmp / "b"), "--out", str(tmp / "c")]),
    "amodal-export": ("run_export", lambda tmp: [f"hydra.run.dir={tmp / 'run'}", f"out={tmp / 'o.json'}"]),
    "amodal-train-synthetic": ("train", lambda tmp: [f"hydra.run.dir={tmp / 'run'}"]),
}


def test_every_console_script_is_covered():
    assert sorted(CALLED) == sorted(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_an_amodal_error_is_one_line_and_exit_2(script, tmp_path, monkeypatch, capsys):
    module_name, function_name = SCRIPTS[script].split(":")
    module = import_module(module_name)
    called, arguments = CALLED[script]

    def fails(*args, **kwargs):
        raise AmodalError("the thing is wrong; fix it")

    monkeypatch.setattr(module, called, fails)
    lines = []  # what the one handler wrote
    error_line = amodal.cli.errors.error_line
    monkeypatch.setattr(amodal.cli.errors, "error_line", lambda *a: lines.append(error_line(*a)) or lines[-1])
    monkeypatch.setattr(logging, "raiseExceptions", logging.raiseExceptions)  # amodal-run's main sets it
    monkeypatch.setattr(sys, "argv", [script, *arguments(tmp_path)])
    main = getattr(module, function_name)
    try:
        status = main() if script in ("amodal-run", "amodal-predict", "amodal-export", "amodal-train-synthetic") \
            else main(arguments(tmp_path))
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert lines == [f"{script}: error: the thing is wrong; fix it"]
    assert err.strip().splitlines()[-1] == lines[0]
    assert "Traceback" not in err
