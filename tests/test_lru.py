"""The one in-memory cache (``amodal/lru.py``): datasets' decoded images, depth maps, models, the pipeline."""

import pytest

from amodal.lru import LRUCache


def test_the_least_recently_used_leaves_and_a_hit_makes_nothing():
    cache, made = LRUCache(size=2), []

    def make(key):
        return lambda: made.append(key) or key.upper()

    assert [cache.get(k, make(k)) for k in ("a", "b", "a", "c", "a", "b")] == ["A", "B", "A", "C", "A", "B"]
    assert made == ["a", "b", "c", "b"]  # "a" was used after "b", so "b" left for "c"


def test_the_old_value_leaves_before_the_new_is_made_and_its_memory_is_given_back():
    evicted = []
    cache = LRUCache(size=1, on_evict=lambda: evicted.append(len(cache)))
    cache.get("a", lambda: 1)
    sizes = []
    cache.get("b", lambda: sizes.append(len(cache)) or 2)
    assert sizes == [0] and evicted == [0]  # a large model is freed before the next one loads


def test_a_failed_make_is_not_kept():
    cache = LRUCache(size=2)

    def fails():
        raise OSError("no weights")

    with pytest.raises(OSError):
        cache.get("a", fails)
    assert cache.get("a", lambda: 1) == 1 and len(cache) == 1
