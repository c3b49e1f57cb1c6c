"""results.jsonl: one JSON object per evaluated object, appended and flushed as it goes.

Re-running into the same folder resumes: objects already in the file are skipped. A line cut short by
a crash (``kill -9`` mid-write) is dropped when the file is opened again, so every object ends up
exactly once. Reading keeps the first row of an object that is in the file twice (two runs that once
wrote into one folder at the same time), so no object is ever counted twice; a line that is not a row
anywhere but at the end is an error naming the file and the line.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from amodal.data.files import write_atomic
from amodal.errors import AmodalError
from amodal.sample import ObjectKey

log = logging.getLogger(__name__)

_WARNED: set[Path] = set()
"""Files whose repeated rows were reported already: one warning per file and process."""


class ResultsError(AmodalError):
    """A results file with a line that is not a row."""


def row_key(row: dict) -> ObjectKey:
    return ObjectKey(str(row["image_id"]), str(row["object_id"]))


def key_text(key: ObjectKey) -> str:
    """An object's key as one short string, length-prefixed so that no two keys share one: what a reader
    keeps of each row to find repeats (half the memory of the key's pair of strings)."""
    return f"{len(key.image_id)}:{key.image_id}{key.object_id}"


def row_problem(row) -> str | None:
    """Why a parsed line is not a result row, or None: ids that are strings or numbers, and, unless the
    object was skipped, an ``occlusion_rate`` (null without ground truth); ``iou`` a number or null."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for key in ("image_id", "object_id"):
        if isinstance(row.get(key), bool) or not isinstance(row.get(key), (str, int)):
            return f"{key} is {json.dumps(row.get(key))}, not a string or a number"
    if row.get("skipped"):
        return None
    if "occlusion_rate" not in row:
        return "no occlusion_rate"
    for key in ("occlusion_rate", "iou"):
        if row.get(key) is not None and (isinstance(row[key], bool) or not isinstance(row[key], (int, float))):
            return f"{key} is {json.dumps(row[key])}, not a number"
    return None


def has_torn_tail(path: str | Path) -> bool:
    """Whether the file ends in a line cut short (no newline): a run killed mid-write, not resumed since."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


def read_rows(path: str | Path) -> list[dict]:
    """Every complete row of a results file, one per object (``iter_rows``, as a list)."""
    return list(iter_rows(path))


def iter_rows(path: str | Path) -> Iterator[dict]:
    """Every complete row of a results file, one per object, as it is read (so that a million rows are
    summed without being held): a torn last line is ignored, an object's later rows are dropped with a
    warning, and a line that is not a row raises ``ResultsError``."""
    path = Path(path)
    if not path.exists():
        return
    seen, repeated = set(), 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
                why = row_problem(row)
            except (ValueError, RecursionError):
                row, why = None, "not JSON"
            if why is not None:
                raise ResultsError(
                    f"{path} line {number} is not a result row ({why}): delete that line, and a rerun into "
                    "the folder evaluates its object again"
                )
            key = key_text(row_key(row))
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            yield row
    if repeated and path.resolve() not in _WARNED:
        _WARNED.add(path.resolve())
        log.warning("%d objects are twice in %s (two runs wrote into its folder at once?); "
                    "each is counted once, from its first row", repeated, path)


def open_in_run_folder(path: Path, flags: int) -> int:
    """``os.open`` that refuses a symbolic link (``O_NOFOLLOW``): a link left in a run folder must not
    make the run write into the file it points to."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise AmodalError(f"{path} is a symbolic link: the run writes only its own files; replace the link "
                              "by the file it points to, or choose another run folder") from None
        raise


class ResultsLog:
    """The run's results.jsonl, open for appending. ``redo``: rows of objects to evaluate again (a saved
    mask a crash left unreadable, a skip that no longer holds), taken out of the file, which is replaced
    whole (temporary file and rename), before the run starts."""

    def __init__(self, path: str | Path, redo: Callable[[dict], bool] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self._open()
        self._drop_torn_tail()
        self.rows = read_rows(self.path)
        again = {row_key(r) for r in self.rows if redo is not None and redo(r)}
        if again:
            self._handle.close()
            self._remove(again)
            self._handle = self._open()
            self.rows = [r for r in self.rows if row_key(r) not in again]
        self.redone = len(again)
        self._done = {row_key(r) for r in self.rows}

    def _open(self):
        return os.fdopen(open_in_run_folder(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND), "a", encoding="utf-8")

    def _drop_torn_tail(self) -> None:
        """Cut the file after its last newline: what follows is a row a crash left half-written."""
        if not has_torn_tail(self.path):
            return
        data = self.path.read_bytes()
        os.ftruncate(self._handle.fileno(), data.rfind(b"\n") + 1)

    def _remove(self, keys: set[ObjectKey]) -> None:
        """The file without the rows of ``keys``, every other line byte for byte."""
        with self.path.open("rb") as handle:
            kept = [line for line in handle if row_key(json.loads(line)) not in keys]
        write_atomic(self.path, b"".join(kept))

    def __contains__(self, key: ObjectKey) -> bool:
        return key in self._done

    def append(self, row: dict) -> None:
        key = row_key(row)
        if key in self._done:
            raise ValueError(f"object {key} is already in {self.path}")
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.rows.append(row)
        self._done.add(key)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
