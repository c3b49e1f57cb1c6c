"""How every command fails on an error the user can cause: an ``AmodalError`` (a full disk included) as
one line, ``<prog>: error: <message>``, on stderr, and exit status 2, without a trace."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from amodal.errors import AmodalError, storage_error

EXIT_ERROR = 2
"""The exit status of a command stopped by the user's error (argparse's for a bad argument, too)."""


def error_line(prog: str, message: object) -> str:
    return f"{prog}: error: {message}"


@contextmanager
def storage_errors(where: str, fix: str) -> Iterator[None]:
    """A full disk or a folder that cannot be written, raised as the ``AmodalError`` that names the file
    (else ``where``) and the ``fix``; any other ``OSError`` goes on as it was (a bug, with its trace)."""
    try:
        yield
    except OSError as err:
        problem = storage_error(err, where, fix)
        if problem is None:
            raise
        raise problem from err


def one_line_errors(prog: str, *, hydra_task: bool = False) -> Callable[[Callable], Callable]:
    """Decorate a command's entry point: its ``AmodalError`` becomes one line and status 2. An argparse
    ``main(argv)`` returns 2; a Hydra task (``hydra_task``, decorated below ``@hydra.main``) exits with 2,
    since Hydra prints a trace for any exception that leaves the task (``SystemExit`` passes through)."""

    def decorate(entry: Callable) -> Callable:
        @functools.wraps(entry)
        def guarded(*args, **kwargs):
            try:
                return entry(*args, **kwargs)
            except AmodalError as err:
                print(error_line(prog, err), file=sys.stderr)
                if hydra_task:
                    sys.exit(EXIT_ERROR)
                return EXIT_ERROR

        return guarded

    return decorate
