"""Seeds: the same config and seed give the same masks whatever the order, batch or shard.

Each object gets its own seed (``object_seed``), and each use of an object's randomness its own stream
of it (``numpy_rng(seed, STREAM)``, ``torch_generator(seed, STREAM)``), named here so that a new use
takes a number no other use has. Random weights (tiny models, a new model's initialisation) are built
under ``seeded``. Changing a stream's number changes every result drawn from it, and the inpainting
cache's entries with them: add streams, never renumber them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from amodal.sample import ObjectKey

T = TypeVar("T")

# -- an object's streams (its seed is ``object_seed(runtime.seed, key)``) --------------------------
BACKGROUND_STREAM = 1
"""numpy: the histogram background x_bck (§4.2)."""
CONDITION_STREAM = 2
"""numpy: the noise ε of the condition image's object pixels (eq. 9)."""
POINTS_STREAM = 7001
"""numpy: the point prompts in V (§5.1), the very points every extractor (SAM, SAM 2, region) gets."""
CONDITION_LATENTS_STREAM = 1
"""torch: SD's condition latents. The stock 9-channel pipelines never encode the unmasked image, so
sampling them from the object's own generator would shift every draw the pipeline makes after it. (Its
number is BACKGROUND_STREAM's: its torch seed is that numpy stream's first integer. Kept as it is, since
renumbering would change every SD result and stale the cache.)"""

# -- the synthetic backbone's training (from the training config's seeds) --------------------------
TRAINING_VIEWS_STREAM = 7
"""numpy: the context factors of the training crops."""
UNET_VALIDATION_STREAM, VAE_VALIDATION_STREAM = 98, 99
"""numpy: the fixed validation pairs of the UNet and of the autoencoder."""


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


def seeded(seed: int, build: Callable[[], T]) -> T:
    """``build()`` with the global torch RNG set to ``seed`` and restored afterwards: random weights drawn
    from ``seed`` alone, whatever ran before, without changing what runs after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
