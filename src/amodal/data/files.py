"""Reading images and mask files, with one-line errors that name the file; writing masks and pictures,
and any file whole or not at all; file-name-safe ids.

Images of any depth become 8-bit RGB by scaling, never by clipping (PIL's own conversion saturates a
16-bit image to white). An image with more pixels than ``runtime.max_image_pixels`` (PIL's
decompression-bomb limit, ``limit_image_pixels``) is refused before it is decoded, as one skipped object.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import secrets
import stat
import warnings
from collections.abc import Iterable
from numbers import Real
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from amodal.errors import ConfigError, SampleError
from amodal.sample import ObjectKey, as_image, as_mask, soft_pixels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PILLOW_MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS
"""Pillow's own limit (89,478,485 pixels, about 9459 × 9459), the default of ``runtime.max_image_pixels``."""

log = logging.getLogger(__name__)


def limit_image_pixels(limit: int | None) -> None:
    """``runtime.max_image_pixels``: images with more pixels are refused (null: no limit). The CLIs set it
    when they start; it is PIL's process-wide ``Image.MAX_IMAGE_PIXELS``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, Real) or not 1 <= limit < math.inf):
        raise ConfigError(
            f"runtime.max_image_pixels={limit!r}: use a number of pixels ≥ 1 "
            f"(Pillow's default is {PILLOW_MAX_IMAGE_PIXELS}), or null for no limit"
        )
    Image.MAX_IMAGE_PIXELS = None if limit is None else int(limit)


def require_regular(path: str | Path, kind: str, error: type[Exception] = SampleError) -> None:
    """Refuse a FIFO, socket, device or folder where a file is to be read: reading a FIFO waits for a writer
    forever, a device may never end. A path that does not exist is left to the reader to report."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a plain file")
        raise error(f"{kind} file {path} is {what}, not a regular file: refused, only regular files are read")


def _open(path: Path, kind: str) -> Image.Image:
    """The file opened (its header read, nothing decoded), refused when it is a decompression bomb or not a
    regular file."""
    require_regular(path, kind)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over the limit, not twice over it
            return Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        counted = re.search(r"\((\d+) pixels\)", str(err))  # Pillow's error states twice the limit, not it
        size = f"{int(counted.group(1)):,} pixels" if counted else str(err)
        raise SampleError(
            f"{kind} file {path} is too large to decode ({size}, more than runtime.max_image_pixels="
            f"{Image.MAX_IMAGE_PIXELS}, the decompression-bomb guard); if it is a genuine image, raise that "
            "limit or set it to null"
        ) from None


def read_image(path: str | Path) -> np.ndarray:
    """An RGB ``uint8`` image from any file PIL reads: greyscale, palette and RGBA are converted, and
    16- and 32-bit greyscale are scaled to 8 bits."""
    path = Path(path)
    try:
        with _open(path, "image") as image:
            return as_image(_eight_bits(image), str(path))
    except FileNotFoundError as err:
        raise SampleError(f"image file {path} does not exist") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise SampleError(f"image file {path} cannot be read as an image ({err})") from err


def _eight_bits(image: Image.Image) -> np.ndarray:
    """The pixels as 8-bit RGB (or greyscale H×W, which ``as_image`` repeats). Integer greyscale deeper
    than 8 bits is scaled by its full range: 65535 for 16-bit files (I;16*, and mode I holding 16-bit
    values, as older Pillow opens 16-bit PNGs), 2³¹ − 1 for 32-bit ones."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image).astype(np.float64).clip(0, None)
        full = 65535.0 if image.mode != "I" or values.max(initial=0) <= 65535 else 2.0**31 - 1
        return np.rint(values * (255.0 / full)).astype(np.uint8)
    if image.mode == "F":  # floats: as_image scales [0, 1] and clips the rest
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))


class SoftMasks:
    """Reports mask files with pixels neither 0 nor their maximum (a gradient, JPEG artefacts), each
    thresholded at half its maximum (``as_mask``): the first such file only, so once per dataset or
    call, not once per object."""

    def __init__(self) -> None:
        self.reported = False

    def check(self, path: Path, values: np.ndarray) -> None:
        count = soft_pixels(values)
        if count and not self.reported:
            self.reported = True
            top = float(values.max())
            log.warning(
                "mask %s is not binary: %d of its %d pixels are neither 0 nor its maximum %g (a soft edge or "
                "JPEG artefacts); masks are thresholded at half their maximum (here: inside from %g). "
                "Further non-binary masks are not reported", path, count, values.size, top, top / 2,
            )


def read_mask(path: str | Path, shape: tuple[int, int] | None = None, soft: SoftMasks | None = None) -> np.ndarray:
    """A ``bool`` mask from an image file: inside where the value is at least half the mask's maximum
    (``mask_file_values`` says which values, by the file's mode). ``soft`` reports non-binary masks once
    for many files; without it, this file is reported if it is one."""
    path = Path(path)
    try:
        with _open(path, "mask") as image:
            values = mask_file_values(image, path)
    except FileNotFoundError as err:
        raise SampleError(f"mask file {path} does not exist") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise SampleError(f"mask file {path} cannot be read as an image ({err})") from err
    mask = as_mask(values, str(path), shape)
    (soft or SoftMasks()).check(path, values)
    return mask


GREY_MODES = ("1", "L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
COLOUR_MODES = ("RGB", "RGBX")
ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa", "P")
"""Modes whose alpha may be the mask: palette files are read through RGBA (a palette may carry transparency)."""


def mask_file_values(image: Image.Image, path: Path) -> np.ndarray:
    """A mask file's values as H×W, by its mode: greyscale as it is; RGB by its largest channel; CMYK by its
    luminance (its channels are ink, so taken as RGBA they read inverted); with alpha (LA, RGBA, palette),
    the alpha where the colour is one constant and the file is not opaque (a shape drawn only in alpha),
    else the colour. Other modes
    (YCbCr, LAB, HSV, ...) are refused naming the mode."""
    mode = image.mode
    if mode in GREY_MODES:
        return np.asarray(image)
    if mode in COLOUR_MODES:
        return np.asarray(image.convert("RGB")).max(axis=2)
    if mode == "CMYK":
        return np.asarray(image.convert("L"))
    if mode in ALPHA_MODES:
        rgba = np.asarray(image.convert("RGBA"))
        colour, alpha = rgba[:, :, :3], rgba[:, :, 3]
        drawn_in_alpha = colour.size and (colour == colour.reshape(-1, 3)[0]).all() and (alpha != 255).any()
        return alpha if drawn_in_alpha else colour.max(axis=2)
    raise SampleError(
        f"mask file {path} has mode {mode}, which is not read as a mask (use greyscale L or 1, RGB, RGBA, LA, "
        "palette or CMYK): refused rather than guessed"
    )


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """A mask as an 8-bit PNG, 255 inside."""
    save_png(path, mask.astype(np.uint8) * 255)


def save_png(path: str | Path, picture: np.ndarray) -> None:
    """A uint8 picture (H×W×3 RGB, or H×W grey) as a PNG, its folder made if need be."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path)


SAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
NAME_LENGTH = 80
"""The readable part of a name is cut here (file systems allow 255 bytes; a picture's name joins two ids)."""
HASH_MARK = "~"
"""Precedes the hash; not a safe character, so a name kept as it is never holds it."""


def safe_name(text: object) -> str:
    """A file-name-safe form of an id (SAILVOS and FishBowl image ids hold slashes), one name per id: an id
    of letters, digits, ``.``, ``_`` and ``-`` (at most ``NAME_LENGTH`` long, not ``.`` or ``..``) is its own
    name; any other keeps that readable part and adds ``~`` and a hash of the id (``cat 1`` →
    ``cat_1~<hash>``, so never the name of ``cat_1``). No name is empty, ``.``, ``..`` or holds a slash, so
    none leaves the folder it is made in."""
    text = str(text)
    clean = SAFE_CHARACTERS.sub("_", text)
    if clean == text and len(text) <= NAME_LENGTH and text not in ("", ".", ".."):
        return text
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()
    return f"{clean[:NAME_LENGTH]}{HASH_MARK}{digest}"


def mask_path(root: str | Path, key: ObjectKey) -> Path:
    """``<root>/<image_id>/<object_id>.png``, ids made file-name-safe (``safe_name``): where a run saves its
    predicted masks (``masks/``) and where ``method=external`` reads another system's. It never leaves
    ``root``."""
    return Path(root) / safe_name(key.image_id) / f"{safe_name(key.object_id)}.png"


def find_image(folder: Path, stem: str) -> Path | None:
    """The image ``<stem>.<usual suffix>`` in ``folder``; two such files (``x.png`` beside ``x.jpg``) are
    refused naming both, since either could be the one meant."""
    found: dict[tuple[int, int], Path] = {}
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                status = candidate.stat()
                found.setdefault((status.st_dev, status.st_ino), candidate)  # x.png, x.PNG: one file if case folds
    if len(found) > 1:
        names = sorted(path.name for path in found.values())
        raise SampleError(f"{folder}: {' and '.join(names)} are both image {stem}; keep one of them")
    return next(iter(found.values()), None)


def write_atomic(path: str | Path, data: str | bytes | Iterable[str]) -> None:
    """Write a whole file or nothing: into a temporary file beside it, then renamed over it, so a crash
    or a full disk never leaves it half-written (the old content stays). ``data`` may be lines as they
    are made (a merge's million rows, never held at once); an error while making them writes nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's permissions
    try:
        with os.fdopen(handle, "wb") as file:
            if isinstance(data, (str, bytes)):
                file.write(data.encode() if isinstance(data, str) else data)
            else:
                file.writelines(line.encode() for line in data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
