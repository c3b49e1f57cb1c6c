"""Where the Hydra configs live, the resolvers they use, and building components from them."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from amodal.errors import AmodalError, ConfigError


def config_dir() -> Path:
    """``conf/`` of the repository (editable install) or ``amodal/conf`` of an installed wheel."""
    packaged = Path(__file__).parent / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"


def auto_device(request: str = "auto") -> str:
    """``auto`` is ``cuda`` when a GPU is visible, else ``cpu``; anything else is taken as given."""
    if request in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return request


def auto_dtype(request: str = "auto", device: str = "auto", gpu: str = "float16") -> str:
    """``auto`` is ``gpu`` on CUDA (float16; bfloat16 for a model that overflows in float16, e.g. Flux)
    and float32 elsewhere (a CPU has no fast half precision); anything else is taken as given.
    ``${dtype:${runtime.dtype},${runtime.device}[,bfloat16]}`` in a config resolves it before the
    value reaches a cache key or a resume fingerprint."""
    if request in ("", "auto"):
        return gpu if auto_device(device).startswith("cuda") else "float32"
    return request


def package_path(relative: str) -> str:
    """``${package:models/weights/synthetic_sd}``: a path inside the installed ``amodal`` package, so a
    config can name files that ship with it (weights) wherever the package is installed."""
    return str(Path(__file__).parent / relative)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("device"):
        OmegaConf.register_new_resolver("device", auto_device)
    if not OmegaConf.has_resolver("dtype"):
        OmegaConf.register_new_resolver("dtype", auto_dtype)
    if not OmegaConf.has_resolver("package"):
        OmegaConf.register_new_resolver("package", package_path)


def build(node: DictConfig, what: str):
    """``instantiate`` with our one-line errors: an ``AmodalError`` raised while building stays itself
    instead of disappearing inside Hydra's ``InstantiationException``."""
    try:
        return instantiate(node)
    except InstantiationException as err:
        cause = err
        while cause is not None and not isinstance(cause, AmodalError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        detail = err.__cause__ if err.__cause__ is not None else err
        target = node.get("_target_", "?") if isinstance(node, DictConfig) else "?"
        message = " ".join(str(detail).split())
        raise ConfigError(f"cannot build {what} ({target}): {type(detail).__name__}: {message}") from err


register_resolvers()
