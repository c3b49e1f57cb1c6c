"""results.jsonl: one JSON object per evaluated object, appended and flushed as it goes.

Re-running into the same folder resumes: objects already in the file are skipped. A line cut short by
a crash (``kill -9`` mid-write) is dropped when the file is opened again, so every object ends up
exactly once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from amodal.sample import ObjectKey

FILENAME = "results.jsonl"


def row_key(row: dict) -> ObjectKey:
    return ObjectKey(str(row["image_id"]), str(row["object_id"]))


def read_rows(path: str | Path) -> list[dict]:
    """Every complete row of a results file (a torn last line is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            rows.append(json.loads(line))
    return rows


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
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(end)

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
