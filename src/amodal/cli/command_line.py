"""What the Hydra apps that compose conf/run.yaml (amodal-run, amodal-predict, amodal-export) check on
their command line before Hydra composes, so that the refusal is one line with exit code 2."""

from __future__ import annotations

import sys

from amodal.cli.errors import one_line_errors
from amodal.config import check_overrides


def check_run_settings(prog: str, argv: list[str] | None = None) -> None:
    """An override of runtime / shard / eval / output that their schema (``amodal.config.RUN_SETTINGS``)
    refuses: an unknown key or a value of another type, said in one line naming the full key, exit 2."""
    one_line_errors(prog, hydra_task=True)(check_overrides)(sys.argv[1:] if argv is None else argv)
