"""Reading images and mask files, with one-line errors that name the file, and writing files whole or not at all."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from amodal.errors import SampleError
from amodal.sample import as_image, as_mask

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | Path) -> np.ndarray:
    """An RGB ``uint8`` image from any file PIL reads (greyscale, palette and RGBA are converted)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return as_image(np.asarray(image.convert("RGB")), str(path))
    except FileNotFoundError as err:
        raise SampleError(f"image file {path} does not exist") from err
    except (UnidentifiedImageError, OSError) as err:
        raise SampleError(f"image file {path} cannot be read as an image ({err})") from err


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ``bool`` mask from a PNG (nonzero = inside; RGBA uses its colour channels)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGBA") if image.mode in ("RGBA", "LA", "P") else image)
    except FileNotFoundError as err:
        raise SampleError(f"mask file {path} does not exist") from err
    except (UnidentifiedImageError, OSError) as err:
        raise SampleError(f"mask file {path} cannot be read as an image ({err})") from err
    return as_mask(array, str(path), shape)


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """A mask as an 8-bit PNG, 255 inside."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def find_image(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a whole file or nothing: into a temporary file beside it, then renamed over it, so a crash
    or a full disk never leaves it half-written (the old content stays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's permissions
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
