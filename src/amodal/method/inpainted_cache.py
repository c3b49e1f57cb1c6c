"""The inpainted-image cache: x̂₀ per object on disk, so sweeps over what comes after inpainting reuse it.
(Loaded models are cached in memory by ``models/model_cache.py``, a cache of another kind.)

A sweep over extractors or point samplers does not change x̂₀; with the cache the diffusion model runs
once per object for the whole sweep. An entry is keyed by everything that changes x̂₀ — the object
(dataset, image, object ids and its seed), the area, background, condition image, view and backbone
settings, dtype and device type, and for a local pipeline folder its files' sizes and times — hashed
into the folder name, and written atomically (a crash leaves no half-written entry).

The cache never stops a run: an entry that cannot be read back (truncated, garbage, another size) is a
miss, recomputed and overwritten, and a cache folder that cannot be written (full, read-only) gives one
warning, after which the run goes on without writing to it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from amodal.data.files import safe_name, write_atomic
from amodal.sample import ObjectKey

log = logging.getLogger(__name__)

def settings_key(settings: dict[str, Any]) -> str:
    """A short, stable hash of the settings that change x̂₀."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json")


def local_weights_stamp(model: str) -> dict[str, list[int]] | None:
    """Size and modification time of a local pipeline folder's weight and config files, so that weights
    retrained into the same folder miss the cache; None for a hub id (its revision is in the key)."""
    folder = Path(str(model)).expanduser()
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return {str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns] for p in files}


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
        if isinstance(pipeline, dict) and pipeline.get("model"):
            backbone["weights"] = local_weights_stamp(pipeline["model"])
        settings["backbone"] = backbone
        self.enabled = enabled
        self.settings = settings
        self.root = Path(dir).expanduser() / settings_key(settings)
        self._writable = True
        self._corrupt_seen = False

    def _path(self, dataset: str, key: ObjectKey, seed: int) -> Path:
        return self.root / safe_name(dataset) / safe_name(key.image_id) / f"{safe_name(key.object_id)}-{seed}.png"

    def get(self, dataset: str, key: ObjectKey, seed: int, shape: tuple[int, int]) -> np.ndarray | None:
        """The cached x̂₀ (``shape`` = its height and width), or None: not cached, or unreadable."""
        if not self.enabled:
            return None
        path = self._path(dataset, key, seed)
        if not path.is_file():
            return None
        try:
            with Image.open(path) as image:
                inpainted = np.asarray(image.convert("RGB"))
            if inpainted.shape[:2] != tuple(shape):
                raise ValueError(f"{inpainted.shape[1]}×{inpainted.shape[0]}, not {shape[1]}×{shape[0]}")
        except (OSError, ValueError, SyntaxError, EOFError) as err:  # what Pillow raises on a broken file
            if not self._corrupt_seen:
                log.warning("inpainting cache entry %s is unreadable (%s): inpainting the object again and "
                            "replacing the entry (further such entries are replaced without a warning)", path, err)
            self._corrupt_seen = True
            return None
        return inpainted

    def put(self, dataset: str, key: ObjectKey, seed: int, inpainted: np.ndarray) -> None:
        if not self.enabled or not self._writable:
            return
        try:
            settings_file = self.root / "settings.json"
            if not settings_file.exists():
                write_atomic(settings_file, json.dumps(self.settings, indent=2, sort_keys=True, default=str) + "\n")
            png = io.BytesIO()
            Image.fromarray(inpainted).save(png, format="PNG")
            write_atomic(self._path(dataset, key, seed), png.getvalue())
        except OSError as err:
            self._writable = False
            log.warning("cannot write the inpainting cache in %s (%s): going on without saving to it; free space "
                        "there, or set cache.dir to a writable folder or cache.enabled=false", self.root,
                        err.strerror or err)
