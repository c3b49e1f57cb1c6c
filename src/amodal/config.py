"""Where the Hydra configs live, the resolvers they use, and building components from them."""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from amodal.errors import AmodalError, ConfigError


def config_dir() -> Path:
    """``conf/`` of the repository (editable install) or ``amodal/conf`` of an installed wheel."""
    packaged = Path(__file__).parent / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"


def train_config_dir() -> Path:
    """The config root of ``amodal-train-synthetic``: a root of its own, so that ``amodal-run`` does not
    offer the training config as one of its groups."""
    packaged = Path(__file__).parent / "conf_train"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf_train"


def auto_device(request: str = "auto") -> str:
    """``auto`` is ``cuda`` when a GPU is visible, else ``cpu``; anything else is taken as given."""
    if request in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return request


def check_device(device: str, key: str = "runtime.device") -> None:
    """Refuse, before anything is built, a CUDA device that this machine does not have (``key``: where it
    was set, for the message)."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{key}={device}: no CUDA GPU is visible here; use {key}=cpu (or auto)")
    index = str(device).partition(":")[2]
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"{key}={device}: this machine has {torch.cuda.device_count()} GPU(s), "
                          f"numbered from 0; use {key}=cuda:0")


def auto_dtype(request: str = "auto", device: str = "auto", gpu: str = "float16") -> str:
    """``auto`` is ``gpu`` on CUDA (float16; bfloat16 for a model that overflows in float16, e.g. Flux)
    and float32 elsewhere (a CPU has no fast half precision); anything else is taken as given.
    ``${dtype:${runtime.dtype},${runtime.device}[,bfloat16]}`` in a config resolves it before the
    value reaches a cache key or a resume fingerprint."""
    if request in ("", "auto"):
        return gpu if auto_device(device).startswith("cuda") else "float32"
    return request


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""The one map from a config's dtype names to torch's."""


def torch_dtype(name: str, key: str = "runtime.dtype") -> torch.dtype:
    """The torch dtype that a config value names (``key``: where it was set, for the message)."""
    if name not in DTYPES:
        raise ConfigError(f"{key}={name!r}: use auto, float32, float16 or bfloat16")
    return DTYPES[name]


def half_precision(device: str, dtype: torch.dtype):
    """The context a model runs in: float16/bfloat16 autocast on a GPU (the weights stay as they are);
    nothing for float32 or on a CPU, which has no fast half precision."""
    if str(device).startswith("cuda") and dtype != torch.float32:
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


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


NUMBERS = {int: "a whole number", float: "a number", bool: "true or false"}


def _expected(hint) -> tuple[type, bool] | None:
    """(int, float or bool, whether null is allowed) for a parameter annotated with one of them, else None."""
    if hint in NUMBERS:
        return hint, False
    members = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in members:
        rest = [m for m in members if m is not type(None)]
        if len(rest) == 1 and rest[0] in NUMBERS:
            return rest[0], True
    return None


def _fits(value, kind: type, nullable: bool) -> bool:
    if value is None:
        return nullable
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def check_types(node: DictConfig | ListConfig) -> None:
    """Refuse a value that cannot be what its component's parameter is annotated as (``backbone.s=abc``),
    naming the key as the user wrote it (an interpolated node keeps its own path: ``backbone.s``, not
    ``method.inpainter.s``), before anything is built."""
    if isinstance(node, ListConfig):
        children = [node[i] for i in range(len(node))]
    else:
        target = node.get("_target_")
        try:
            component = get_object(target) if isinstance(target, str) else None
            hints = typing.get_type_hints(component.__init__ if isinstance(component, type) else component)
        except Exception:  # an unimportable target or unresolvable annotations: instantiate says what is wrong
            hints = {}
        for key, hint in hints.items():
            expected = _expected(hint)
            if expected is not None and key in node and not OmegaConf.is_missing(node, key):
                if not _fits(node[key], *expected):
                    raise ConfigError(f"{node._get_full_key(key)}={node[key]}: expected {NUMBERS[expected[0]]}"
                                      f"{' or null' if expected[1] else ''}")
        keys = [k for k in node if not OmegaConf.is_missing(node, k)] if node.get("_recursive_", True) else []
        children = []
        for key in keys:
            try:
                children.append(node[key])
            except Exception:  # an interpolation that does not resolve: instantiate says which
                continue
    for child in children:
        if isinstance(child, (DictConfig, ListConfig)):
            check_types(child)


# -- the schema of the run's own settings ------------------------------------------------------------------
# Types and names only: the values and their comments stay in conf/run.yaml, which extends this schema
# (`defaults: [_run_settings, _self_]`), so Hydra refuses a key that is not here or a value of another type.
# A key added to runtime / shard / eval / output in run.yaml is added here too.


@dataclass
class RuntimeSettings:
    device: str = MISSING
    dtype: str = MISSING
    seed: int = MISSING
    batch_size: int = MISSING
    max_image_pixels: typing.Any = MISSING  # a number ≥ 1 or null: limit_image_pixels says more than a type
    threads: int | None = MISSING


@dataclass
class ShardSettings:
    index: int = MISSING
    count: int = MISSING


@dataclass
class EvalSettings:
    metric: str = MISSING
    include_unoccluded: bool = MISSING
    buckets: list[float] = MISSING


@dataclass
class OutputSettings:
    save_masks: bool = MISSING
    pictures: int = MISSING
    progress: bool = MISSING


RUN_SETTINGS = {"runtime": RuntimeSettings, "shard": ShardSettings, "eval": EvalSettings, "output": OutputSettings}
"""The nodes of the run config that have a schema."""
ConfigStore.instance().store(name="_run_settings", node=RUN_SETTINGS)

_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text",
          list[float]: "a list of numbers"}


def _kind(hint) -> str:
    members = [m for m in typing.get_args(hint) if m is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(members) == 1:
        return f"{_KINDS[members[0]]} or null"
    return _KINDS[hint]


def check_overrides(argv: list[str]) -> None:
    """The command line's overrides of the run's settings, checked against their schema before Hydra
    composes (whose own refusal is several lines): an unknown key or a value of another type, each value
    of a sweep included, is one line naming the full key."""
    tokens = [t for t in argv if "=" in t and not t.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(tokens)
    except Exception:  # Hydra says what is wrong with it
        return
    for override in overrides:
        section, _, rest = override.key_or_group.partition(".")
        if section not in RUN_SETTINGS or not rest or override.is_delete() or override.package:
            continue
        schema = RUN_SETTINGS[section]
        fields = {f.name: f.type for f in dataclasses.fields(schema)}
        name = rest.split(".")[0].split("[")[0]
        if name not in fields:
            raise ConfigError(f"{override.input_line}: {section} has no key {name!r}; its keys: {', '.join(fields)}")
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        for value in values:
            node = OmegaConf.structured(schema)
            try:
                OmegaConf.update(node, rest, value, merge=False)
            except OmegaConfBaseException:
                shown = value if override.is_sweep_override() else override.get_value_element_as_str()
                raise ConfigError(f"{section}.{rest}={shown}: expected "
                                  f"{_kind(typing.get_type_hints(schema)[name])}") from None


def build(node: DictConfig, what: str):
    """``instantiate`` with our one-line errors: an ``AmodalError`` raised while building stays itself
    instead of disappearing inside Hydra's ``InstantiationException``."""
    check_types(node)
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
