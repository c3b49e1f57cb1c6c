"""Per-object seeds: the same config and seed give the same masks whatever the order, batch or shard."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from amodal.sample import ObjectKey


def object_seed(seed: int, key: ObjectKey) -> int:
    """A 63-bit seed from the run's seed and the object's ids (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256(f"{seed}\0{key.image_id}\0{key.object_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def numpy_rng(seed: int, *stream: int) -> np.random.Generator:
    """A numpy generator for one object and one named use (``stream``) of its randomness."""
    return np.random.default_rng([seed, *stream])


def torch_generator(seed: int, *stream: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for one object: seeded with ``seed`` itself (what a diffusers pipeline is given),
    or, with ``stream``, for one named use of the object's randomness, independent of that one."""
    if stream:
        seed = int(numpy_rng(seed, *stream).integers(2**63))
    return torch.Generator(device=device).manual_seed(seed)
