"""results.jsonl: one JSON object per evaluated object, appended and flushed as it goes.

Re-running into the same folder resumes: objects already in the file are skipped. A line cut short by
a crash (``kill -9`` mid-write) is dropped when the file is opened again, so every object ends up
exactly once. Reading keeps the first row of an object that is in the file twice (two runs that once
wrote into one folder at the same time), so no object is ever counted twice; a line that is not a row
anywhere but at the end is an error naming the file and the line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

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
                key = key_text(row_key(row))
            except (ValueError, KeyError, TypeError) as err:
                why = "not JSON" if isinstance(err, ValueError) else "no image_id and object_id"
                raise ResultsError(
                    f"{path} line {number} is not a result row ({why}): delete that line, and a rerun into "
                    "the folder evaluates its object again"
                ) from err
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            yield row
    if repeated and path.resolve() not in _WARNED:
        _WARNED.add(path.resolve())
        log.warning("%d objects are twice in %s (two runs wrote into its folder at once?); "
                    "each is counted once, from its first row", repeated, path)


class ResultsLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        self.rows = read_rows(self.path)
        self._done = {row_key(r) for r in self.rows}
        self._handle = self.path.open("a", encoding="utf-8")

    def _drop_torn_tail(self) -> None:
        """Cut the file after its last newline: what follows is a row a crash left half-written."""
        if not has_torn_tail(self.path):
            return
        data = self.path.read_bytes()
        with self.path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)

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
