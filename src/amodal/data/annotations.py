"""Finding and reading annotation files, with one-line errors that name the file and the fix."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from amodal.errors import DatasetError


def root_path(root: str | None, what: str, needed: bool = True, otherwise: str = "") -> Path | None:
    """``dataset.root`` as a folder that exists, or None when it is not set. A root that does not exist is
    an error only where something is looked up under it (``needed``): the configs default the root to
    ``${paths.data}/<name>``, so a user who names every file by itself never has to create it."""
    if not root:
        return None
    path = Path(root).expanduser()
    if path.is_dir():
        return path
    if not needed:
        return None
    raise DatasetError(
        f"dataset.root={path} does not exist or is not a folder; point it at the {what} folder{otherwise}"
    )


def locate(
    given: str | None,
    root: Path | None,
    standard: Sequence[str],
    option: str,
    what: str,
    otherwise: str = "",
) -> Path:
    """The path ``dataset.<option>`` names, or the first of the ``standard`` places under the root.
    ``otherwise`` ends the error with another way out ("; or set dataset.x=false to ...")."""
    if given:
        path = Path(given).expanduser()
        if not path.exists():
            raise DatasetError(f"dataset.{option}={path} does not exist; point it at the {what}{otherwise}")
        return path
    if root is None:
        raise DatasetError(
            f"dataset.root is not set: pass dataset.root=/path/to/the/dataset, "
            f"or dataset.{option}= the {what}{otherwise}"
        )
    candidates = [root / name for name in standard]
    for path in candidates:
        if path.exists():
            return path
    raise DatasetError(
        f"no {what} at {candidates[0]}: put it there or pass dataset.{option}=/path/to/it{otherwise}"
    )


def read_json(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return json.load(handle)
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err.strerror or err})") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path} is not valid JSON ({err}); is it the right file?") from err


def read_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err.strerror or err})") from err
    except Exception as err:  # unpickling raises anything a broken or foreign file provokes
        raise DatasetError(f"{path} is not a readable pickle ({type(err).__name__}: {err})") from err


def require(record: Any, keys: Iterable[str], path: Path, where: str, hint: str = "") -> None:
    """Refuse a record (the file's top level, one image, one annotation) without the keys it needs."""
    if not isinstance(record, dict):
        raise DatasetError(f"{path}: {where} is a {type(record).__name__}, expected a JSON object{hint}")
    missing = [key for key in keys if key not in record]
    if missing:
        names = ", ".join(repr(k) for k in missing)
        raise DatasetError(
            f"{path}: {where} has no {names} (keys: {', '.join(sorted(record)) or 'none'}){hint}"
        )


def require_list(record: dict, key: str, path: Path, where: str, hint: str = "") -> list:
    require(record, [key], path, where, hint)
    value = record[key]
    if not isinstance(value, list):
        raise DatasetError(f"{path}: {where}'s {key!r} is a {type(value).__name__}, expected a list{hint}")
    return value


def natural_key(text: str) -> list[tuple[int, int, str]]:
    """Sorts "2" before "10" (video and file names are numbers without padding)."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part
    ]
