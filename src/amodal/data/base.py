"""Datasets yield one object at a time; opening one is cheap and loading is lazy.

A dataset lists its objects as ``ObjectKey``s (ids only) and loads one ``Sample`` on demand, so a
run can skip finished objects or take a shard without decoding anything it does not evaluate. Its
``limit`` (``dataset.limit``) is the number of objects a run *scores*; the runner counts them, since
only a loaded object says whether it is scored (half of COCO-A's objects are unoccluded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from amodal.errors import ConfigError
from amodal.sample import ObjectKey, Sample


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the objects whose id hashes to ``index`` modulo ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(
                f"shard.index={self.index} shard.count={self.count}: need count ≥ 1 and 0 ≤ index < count"
            )

    def holds(self, key: ObjectKey) -> bool:
        if self.count == 1:
            return True
        digest = hashlib.sha1(f"{key.image_id}\0{key.object_id}".encode()).digest()
        return int.from_bytes(digest[:8], "little") % self.count == self.index


class ObjectDataset:
    """Base class: subclasses list their objects (``_list_objects``) and load one (``load``)."""

    name = "dataset"
    extras: tuple[str, ...] = ()
    """What its samples carry in ``Sample.extras`` (``unoccluded``: each object drawn without occluders)."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ConfigError(f"dataset.limit={limit} selects no object: use a positive number, or null for all")
        self.limit = limit
        self._keys: list[ObjectKey] | None = None

    def _list_objects(self) -> list[ObjectKey]:
        raise NotImplementedError

    def load(self, key: ObjectKey) -> Sample:
        raise NotImplementedError

    def keys(self, shard: Shard | None = None) -> list[ObjectKey]:
        """Every object in dataset order (``limit`` is counted by the runner), or those of ``shard``."""
        if self._keys is None:
            self._keys = self._list_objects()
        if shard is None:
            return list(self._keys)
        return [key for key in self._keys if shard.holds(key)]

    def __len__(self) -> int:
        return len(self.keys())

    def __iter__(self):
        for key in self.keys():
            yield self.load(key)


def others_of(masks: Sequence, index: int) -> tuple:
    """The visible masks of every object of an image but one."""
    return tuple(m for i, m in enumerate(masks) if i != index)
