"""Finding and reading annotation files, with one-line errors that name the file and the fix."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from amodal.data.files import require_regular
from amodal.errors import DatasetError

try:
    from numpy._core.multiarray import scalar as numpy_scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import scalar as numpy_scalar


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
    require_regular(path, "annotation", DatasetError)
    try:
        with path.open("rb") as handle:
            return json.load(handle)
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err.strerror or err})") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path} is not valid JSON ({err}); is it the right file?") from err
    except RecursionError:
        raise DatasetError(f"{path} nests its JSON too deeply to read (thousands of levels); no annotation "
                           "file does: is it the right file?") from None


def read_pickle(path: Path) -> Any:
    """An annotation pickle (FishBowl's), built from plain data only: ``AnnotationUnpickler``."""
    require_regular(path, "annotation", DatasetError)
    try:
        with path.open("rb") as handle:
            return AnnotationUnpickler(handle).load()
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err.strerror or err})") from err
    except RecursionError:
        raise DatasetError(f"{path} nests its data too deeply to read; is it the right file?") from None
    except ForbiddenAllocation as err:
        raise DatasetError(f"{path} asks for {err}, which an annotation file never holds: refused; use the "
                           "dataset's official file") from None
    except ForbiddenGlobal as err:
        raise DatasetError(
            f"{path} asks to load {err}, which an annotation file never holds (it could run code): refused, "
            "nothing in the file was run; use the dataset's official file"
        ) from None
    except Exception as err:  # unpickling raises anything a broken or foreign file provokes
        raise DatasetError(f"{path} is not a readable pickle ({type(err).__name__}: {err})") from err


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle names a class or function outside ``AnnotationUnpickler``'s allow-list."""


class ForbiddenAllocation(ForbiddenGlobal):
    """A pickle asks an allowed function for memory its own bytes do not hold (``bytearray(2**34)``)."""


def _plain_dtype(*args) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise ForbiddenGlobal(f"numpy.dtype({dtype}) (an object dtype)")
    return dtype


def _plain_scalar(dtype: np.dtype, data: bytes):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise ForbiddenGlobal("numpy.core.multiarray.scalar of an object")
    return numpy_scalar(dtype, data)


def _latin1(text: str, encoding: str) -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise ForbiddenGlobal(f"_codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def _bytearray_of_content(*args) -> bytearray:
    """``bytearray`` as pickle protocols 0-4 write one: from its content (bytes, or text and its encoding),
    never from a size, so what a pickle allocates stays bounded by the file's own size."""
    if not args or not isinstance(args[0], (bytes, str)):
        shown = ", ".join(repr(a) if not isinstance(a, (bytes, str)) else type(a).__name__ for a in args)
        raise ForbiddenAllocation(f"bytearray({shown}), a bytearray of a size rather than of its content")
    return bytearray(*args)


SAFE_GLOBALS = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): _bytearray_of_content,
    ("_codecs", "encode"): _latin1,  # bytes, as protocol 2 writes them
    ("numpy", "dtype"): _plain_dtype,
    ("numpy.core.multiarray", "scalar"): _plain_scalar,  # numpy < 2
    ("numpy._core.multiarray", "scalar"): _plain_scalar,
}


class AnnotationUnpickler(pickle.Unpickler):
    """Unpickles only what an annotation pickle holds: dicts, lists, tuples, sets, str, bytes, numbers,
    None (no globals needed) and numpy number scalars (FishBowl's SaVos preprocessing stores its boxes
    and ``OCC_R`` as ``np.int64`` / ``np.float64``). Every other global (a class, ``os.system``) is
    refused before it is looked up, so a hostile file runs nothing."""

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # as protocols 0-2 spell it
        allowed = SAFE_GLOBALS.get((module, name))
        if allowed is None:
            raise ForbiddenGlobal(f"{module}.{name}")
        return allowed


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


def text_id(value: Any, index: int, seen: dict[str, tuple[int, Any]], path: Path, what: str) -> str:
    """An id (an image's, an object's) as the text ids are compared and named by; refused when it was
    already seen, as the same value or as another that reads the same (``1`` and ``"1"``): their objects
    would merge. ``seen`` maps each text to where it came from."""
    text = str(value)
    if text in seen:
        first, original = seen[text]
        if original == value and type(original) is type(value):
            raise DatasetError(f"{path}: {what}s {first} and {index} both have id {value!r}; each needs its own id")
        raise DatasetError(f"{path}: {what} {first} has id {original!r} and {what} {index} has id {value!r}, "
                           "one id once read as text; give each its own id")
    seen[text] = (index, value)
    return text


def image_size(entry: dict, path: Path, where: str, hint: str = "") -> tuple[int, int] | None:
    """(height, width) an image record states, None where it states none; refused unless whole numbers ≥ 1."""
    if "height" not in entry or "width" not in entry:
        return None
    size = []
    for key in ("height", "width"):
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
            raise DatasetError(f"{path}: {where}'s {key!r} is {value!r}, expected a whole number of pixels{hint}")
        size.append(int(value))
    return size[0], size[1]


def rate(value: Any, path: Path, where: str, hint: str = "") -> float | None:
    """An annotated occlusion rate (``occlude_rate``): a number, or None where the file states none."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: {where}'s occlusion rate is {value!r}, expected a number{hint}") from None


def file_name(entry: dict, path: Path, where: str, hint: str = "") -> str:
    """An image record's ``file_name``: a non-empty text."""
    value = entry["file_name"]
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{path}: {where}'s 'file_name' is {value!r}, expected the image's file name{hint}")
    return value


def natural_key(text: str) -> list[tuple[int, int, str]]:
    """Sorts "2" before "10" (video and file names are numbers without padding)."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part
    ]
