"""Training checkpoints: saved whole or not at all, and read back as tensors, numbers, strings and
containers only, so a checkpoint that is not one (truncated, foreign, or naming code) is refused in one line."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import torch

from amodal.data.files import write_atomic
from amodal.errors import ConfigError


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` whole or not at all (``write_atomic``): an interrupted save keeps the last checkpoint."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


CHECKPOINT_KEYS = ("step", "model", "optimizer", "schedule", "ema", "loss", "validation", "seconds", "fingerprint")
"""What ``Trainer`` saves in a checkpoint."""


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """A checkpoint of ``save_atomic``, read as tensors, numbers, strings and containers only
    (``weights_only``): a file that names anything else is refused and runs nothing; a truncated or foreign
    file, or one without what ``Trainer`` saves, is refused in one line naming it."""
    fix = "delete it to train that phase afresh"
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL (\S+)", str(err))
        if named:
            raise ConfigError(f"{path} names {named.group(1)}, which a training checkpoint never holds: refused, "
                              f"nothing in it ran; {fix}") from None
        raise ConfigError(f"{path} is not a training checkpoint (not a file torch.save wrote: "
                          f"{_first_sentence(err)}); {fix}") from None
    except Exception as err:  # torch.load raises anything a cut-off or foreign file provokes
        size = path.stat().st_size if path.exists() else 0
        cut = "it is empty" if size == 0 else f"{size:,} bytes, cut off or not a file torch.save wrote"
        raise ConfigError(f"{path} is not a readable checkpoint ({cut}: {_first_sentence(err)}); {fix}") from None
    missing = [key for key in CHECKPOINT_KEYS if key not in state] if isinstance(state, dict) else CHECKPOINT_KEYS
    if missing or not isinstance(state["fingerprint"], dict):
        what = f"has no {', '.join(missing)}" if missing else "has no fingerprint of its config"
        raise ConfigError(f"{path} is not a training checkpoint of amodal-train-synthetic ({what}); {fix}")
    return state


def _first_sentence(err: BaseException) -> str:
    text = str(err).strip().split(". ")[0]
    return f"{type(err).__name__}: {text}" if isinstance(err, LookupError) or not text else text
