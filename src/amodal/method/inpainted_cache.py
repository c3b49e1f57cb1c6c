"""The inpainted-image cache: x̂₀ per object on disk, so sweeps over what comes after inpainting reuse it.
(Loaded models are cached in memory by ``models/model_cache.py``, a cache of another kind.)

A sweep over extractors or point samplers does not change x̂₀; with the cache the diffusion model runs
once per object for the whole sweep. An entry is keyed by everything that changes x̂₀:
the settings (area, background, condition, view and backbone settings, dtype and device type, for a
local pipeline folder its files' sizes and times) and the code that draws (``code_stamps``: this
package's version and a hash of its method and model sources, and of the module of every component
defined outside it), hashed into the folder name; and per entry the object (dataset, image, object ids,
seed) and the inpainter's actual inputs, the condition image x and the area M at the view
(``inputs_key``), so an image replaced under the same id or an edited component of one's own misses.
Entries are written atomically (a crash leaves no half-written entry).

The cache never stops a run: an entry that cannot be read back (truncated, garbage, another size, a
decompression bomb: its size is checked before anything is decoded) is a miss, recomputed and
overwritten, and a cache folder that cannot be written (full, read-only) gives one warning, after which
the run goes on without writing to it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import logging
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from PIL import Image

import amodal
from amodal.data.files import safe_name, write_atomic
from amodal.models.stamps import is_local, weights_stamp
from amodal.sample import ObjectKey

log = logging.getLogger(__name__)

DRAWING_CODE = ("method", "models", "*.py")
"""The package's sources that x̂₀ passes through (its stages and models, and the top-level modules they
use); data/, eval/, train/ and cli/ do not change it (the data's part is in ``inputs_key``)."""

def settings_key(settings: dict[str, Any]) -> str:
    """A short, stable hash of the settings that change x̂₀."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def inputs_key(condition: np.ndarray, area: np.ndarray) -> str:
    """A short hash of what the inpainter is given for one object: x and M at the view, values and shapes."""
    digest = hashlib.sha256()  # the fastest of hashlib's here: CPUs hash it in hardware (SHA-NI, ARMv8)
    for array in (np.ascontiguousarray(condition), np.packbits(area)):
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    digest.update(str(area.shape).encode())
    return digest.hexdigest()[:16]


def _sources_hash(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def package_stamp() -> str:
    """This package's version and a hash of its drawing sources (``DRAWING_CODE``), once per process: an
    editable install's version says nothing of the edits, the hash does."""
    root = Path(amodal.__file__).parent
    files = [f for pattern in DRAWING_CODE for f in
             (root.glob(pattern) if pattern.endswith(".py") else (root / pattern).rglob("*.py"))]
    return f"{amodal.__version__}+{_sources_hash(files, root)}"


def _targets(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["_target_"]} if isinstance(node.get("_target_"), str) else set()
        return found.union(*(_targets(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_targets(v) for v in node)) if node else set()
    return set()


@functools.cache
def module_stamp(target: str) -> str:
    """A hash of the source file of the module that defines ``target`` (a component of one's own, outside
    this package), so that editing it misses the cache; "unknown" where it has none to read."""
    module_name = target
    while module_name and module_name not in sys.modules:
        try:
            importlib.import_module(module_name)
        except ImportError:
            module_name = module_name.rpartition(".")[0]
    file = getattr(sys.modules.get(module_name), "__file__", None)
    return _sources_hash([Path(file)], Path(file).parent) if file else "unknown"


def code_stamps(settings: dict) -> dict[str, str]:
    """The code that draws x̂₀: this package (``package_stamp``) and each ``_target_`` outside it."""
    own = amodal.__name__ + "."
    return {"amodal": package_stamp(),
            **{t: module_stamp(t) for t in sorted(_targets(settings)) if not t.startswith(own)}}


class InpaintedImageCache:
    """``cache.dir/<settings hash>/<dataset>/<image>/<object>.png`` plus ``settings.json`` per hash."""

    def __init__(self, dir: str | Path, settings: DictConfig | dict, enabled: bool = True) -> None:
        if isinstance(settings, DictConfig):
            settings = OmegaConf.to_container(settings, resolve=True)
        settings = dict(settings)
        settings["dataset"] = {k: v for k, v in (settings.get("dataset") or {}).items() if k != "limit"}
        backbone = dict(settings.get("backbone") or {})
        device = str(backbone.pop("device", "cpu"))
        backbone["device_type"] = device.split(":")[0]
        pipeline = backbone.get("pipeline")
        unknown_weights = False
        if isinstance(pipeline, dict) and pipeline.get("model"):
            model, revision = str(pipeline["model"]), pipeline.get("revision")
            backbone["weights"] = weights_stamp(model, revision)
            pinned = isinstance(revision, str) and re.fullmatch("[0-9a-f]{40}", revision) is not None
            unknown_weights = backbone["weights"] is None and not is_local(model) and not pinned
        settings["backbone"] = backbone
        settings["code"] = code_stamps(settings)
        if enabled and unknown_weights:  # a later download of the same name may be other weights: no key can tell
            log.info("the inpainting cache is off for this run: %s is not in the Hugging Face cache yet, so the "
                     "weights it will download are not known in advance (the next run uses the cache)", model)
            enabled = False
        self.enabled = enabled
        self.settings = settings
        self.root = Path(dir).expanduser() / settings_key(settings)
        self._writable = True
        self._corrupt_seen = False

    def _path(self, dataset: str, key: ObjectKey, seed: int, inputs: str = "") -> Path:
        name = f"{safe_name(key.object_id)}-{seed}" + (f"-{inputs}" if inputs else "")
        return self.root / safe_name(dataset) / safe_name(key.image_id) / f"{name}.png"

    def get(self, dataset: str, key: ObjectKey, seed: int, shape: tuple[int, int],
            inputs: str = "") -> np.ndarray | None:
        """The cached x̂₀ (``shape`` = its height and width), or None: not cached, or unreadable. ``inputs``:
        the ``inputs_key`` of what the inpainter would be given."""
        if not self.enabled:
            return None
        path = self._path(dataset, key, seed, inputs)
        if not path.is_file():
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
                image = Image.open(path)
            with image:
                if image.size != (shape[1], shape[0]):  # before decoding: a bomb costs its header only
                    raise ValueError(f"{image.size[0]}×{image.size[1]}, not {shape[1]}×{shape[0]}")
                inpainted = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:  # Pillow's errors
            if not self._corrupt_seen:
                log.warning("inpainting cache entry %s is unreadable (%s): inpainting the object again and "
                            "replacing the entry (further such entries are replaced without a warning)", path, err)
            self._corrupt_seen = True
            return None
        return inpainted

    def put(self, dataset: str, key: ObjectKey, seed: int, inpainted: np.ndarray, inputs: str = "") -> None:
        if not self.enabled or not self._writable:
            return
        try:
            settings_file = self.root / "settings.json"
            if not settings_file.exists():
                write_atomic(settings_file, json.dumps(self.settings, indent=2, sort_keys=True, default=str) + "\n")
            png = io.BytesIO()
            Image.fromarray(inpainted).save(png, format="PNG")
            write_atomic(self._path(dataset, key, seed, inputs), png.getvalue())
        except OSError as err:
            self._writable = False
            log.warning("cannot write the inpainting cache in %s (%s): going on without saving to it; free space "
                        "there, or set cache.dir to a writable folder or cache.enabled=false", self.root,
                        err.strerror or err)
