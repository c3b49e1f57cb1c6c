"""The one in-memory cache: the few most recently used values by key. Datasets keep decoded images,
the depth area its maps, ``models/model_cache.py`` built models and ``method/inpaint.py`` the diffusion
pipeline in one. (Inpainted images are cached on disk by ``method/inpainted_cache.py``, another kind.)"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class LRUCache(Generic[T]):
    """At most ``size`` values. The least recently used leaves before a new one is made, so that a large
    value (a model) is freed first; ``on_evict`` then runs (to give its memory back). A value whose
    ``make`` fails is not kept, so the next call says the same error."""

    def __init__(self, size: int = 2, on_evict: Callable[[], None] | None = None) -> None:
        self.size = size
        self.on_evict = on_evict
        self._items: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        while len(self._items) >= self.size:
            self._items.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict()
        self._items[key] = value = make()
        return value

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
