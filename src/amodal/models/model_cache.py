"""The model cache: segmentation and depth models are built once per process and shared, by every
object of a run and by every job of a multirun (Hydra runs the jobs of ``-m`` one after another in the
same process). (Inpainted images are cached on disk by ``method/inpainted_cache.py``, a cache of another
kind; the diffusion pipeline keeps its last one in ``method/inpaint.py``.)

The cache holds the few most recently used models, so a sweep over many model sizes does not keep
them all in GPU memory at once.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Hashable
from typing import Any

import torch

from amodal.lru import LRUCache

MAX_MODELS = 3


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_MODELS: LRUCache[Any] = LRUCache(size=MAX_MODELS, on_evict=_free_memory)


def cached_model(key: Hashable, make: Callable[[], Any]) -> Any:
    """The value built for ``key`` (a description of the model, its weights and its device), built by
    ``make`` the first time. A failed build is not cached, so the next call says the same error."""
    return _MODELS.get(key, make)


def clear_models() -> None:
    """Free every cached model (``benchmarks/table_s1.py``: one segmenter leaves the GPU before the next is
    measured)."""
    _MODELS.clear()
    gc.collect()
