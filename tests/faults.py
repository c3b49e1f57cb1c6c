"""Faults injected into a real ``amodal-run`` process, for tests/test_bad_runs.py.

Tests run as root, where ``chmod`` does not stop writes, so a read-only folder and a full disk are made
by patching the writes instead:

    python -m tests.faults read-only <run folder> <overrides...>   # nothing in the folder can be written
    python -m tests.faults full-after-2 <run folder> <overrides...> # the 3rd result row hits a full disk
    python -m tests.faults held-rows <run folder> <overrides...>    # no row is written before <run folder>.go
    python -m tests.faults full-at-output-3 <run folder> <overrides...>  # the 3rd object's mask or panel hits
                                                                    # the file size limit (EFBIG), a real one
    python -m tests.faults fills-after-2 <run folder> <overrides...>  # after the 2nd row no file may grow (EFBIG)
    python -m tests.faults file-size-limit-0 <folder> amodal-report <args...>  # no file may grow: EFBIG; with
                                                                    # another console script than amodal-run

(A held run keeps its folder until the test lets it go, so that a second one started beside it always meets
it, however loaded the machine is.)
"""

from __future__ import annotations

import builtins
import errno
import os
import sys
from pathlib import Path


def _inside(path, folder: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(folder)
    except (TypeError, ValueError):
        return False


def read_only(folder: Path) -> None:
    """Every write, creation or rename inside ``folder`` fails as on a read-only file system."""

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_os_open, real_mkdir, real_replace = builtins.open, os.open, os.mkdir, os.replace

    def patched_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and _inside(file, folder):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def patched_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _inside(path, folder):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def patched_mkdir(path, *args, **kwargs):
        if _inside(path, folder) and not Path(path).is_dir():
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def patched_replace(source, target, *args, **kwargs):
        if _inside(target, folder):
            refuse(target)
        return real_replace(source, target, *args, **kwargs)

    builtins.open, os.open, os.mkdir, os.replace = patched_open, patched_os_open, patched_mkdir, patched_replace


def full_after(rows: int) -> None:
    """The disk fills up after ``rows`` more result rows: the next one fails with ENOSPC."""
    from amodal.eval.results import ResultsLog

    real_append = ResultsLog.append
    written = [0]

    def append(self, row):
        if written[0] >= rows:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        real_append(self, row)
        written[0] += 1

    ResultsLog.append = append


def file_size_limit_0() -> None:
    """From the start, no file may grow (``ulimit -f 0``): every write that adds a byte fails with EFBIG."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def full_at_output(objects: int) -> None:
    """The ``objects``-th object's files (mask, panel) meet a file size limit of 0 bytes (``ulimit -f 0``, as
    the kernel enforces it: EFBIG; Python ignores SIGXFSZ), and so does every later write of the process."""
    import resource

    from amodal.runner import RunOutputs

    real_write = RunOutputs.write
    written = [0]

    def write(self, sample, prediction, row):
        written[0] += 1
        if written[0] >= objects:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        real_write(self, sample, prediction, row)

    RunOutputs.write = write


def fills_after(rows: int) -> None:
    """The disk fills up once ``rows`` more result rows are written: from then on no file may grow (EFBIG),
    run.log included, so what the run logs before its next row fails too."""
    import resource

    from amodal.eval.results import ResultsLog

    real_append = ResultsLog.append
    written = [0]

    def append(self, row):
        real_append(self, row)
        written[0] += 1
        if written[0] == rows:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    ResultsLog.append = append


def held_rows(go: Path) -> None:
    """No result row is written before the file ``go`` exists (at most 5 minutes)."""
    import time

    from amodal.eval.results import ResultsLog

    real_append = ResultsLog.append

    def append(self, row):
        end = time.monotonic() + 300
        while not go.exists() and time.monotonic() < end:
            time.sleep(0.05)
        real_append(self, row)

    ResultsLog.append = append


if __name__ == "__main__":
    fault, folder, arguments = sys.argv[1], Path(sys.argv[2]).resolve(), sys.argv[3:]
    if fault == "read-only":
        read_only(folder)
    elif fault == "held-rows":
        held_rows(folder.with_name(folder.name + ".go"))
    elif fault == "file-size-limit-0":
        file_size_limit_0()
    elif fault.startswith("fills-after-"):
        fills_after(int(fault.removeprefix("fills-after-")))
    elif fault.startswith("full-at-output-"):
        full_at_output(int(fault.removeprefix("full-at-output-")))
    else:
        full_after(int(fault.removeprefix("full-after-")))
    if arguments and arguments[0] in ("amodal-report", "amodal-merge"):
        from importlib import import_module

        cli = import_module(f"amodal.cli.{arguments[0].removeprefix('amodal-')}")
        sys.exit(cli.main(arguments[1:]))
    from amodal.cli.run import main

    sys.argv = ["amodal-run", f"hydra.run.dir={folder}", *arguments]
    main()
