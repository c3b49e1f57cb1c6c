"""The model cache: segmentation and depth models are built once per process and shared, by every
object of a run and by every job of a multirun (Hydra runs the jobs of ``-m`` one after another in the
same process). (Inpainted images are cached on disk by ``method/inpainted_cache.py``, a cache of another
kind; the diffusion pipeline keeps its last one in ``method/inpaint.py``.)

The cache holds the few most recently used models, so a sweep over many model sizes does not keep
them all in GPU memory at once.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch

MAX_MODELS = 3
_MODELS: OrderedDict[Hashable, Any] = OrderedDict()


def cached_model(key: Hashable, make: Callable[[], Any]) -> Any:
    """The value built for ``key`` (a description of the model, its weights and its device), built by
    ``make`` the first time. A failed build is not cached, so the next call says the same error."""
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    while len(_MODELS) >= MAX_MODELS:
        _MODELS.popitem(last=False)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    _MODELS[key] = value = make()
    return value


def clear_models() -> None:
    """Free every cached model (``benchmarks/table_s1.py``: one segmenter leaves the GPU before the next is
    measured)."""
    _MODELS.clear()
    gc.collect()
