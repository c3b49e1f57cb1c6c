"""Bootstrap intervals of a mean over objects: how far an mIoU, or a mean ΔIoU between two runs on the same
objects (a paired bootstrap: each resample draws objects, and an object brings both runs' IoUs), could
move on another draw of objects from the same distribution.

The interval is the percentile bootstrap: resample the objects with replacement ``resamples`` times, take
the mean of each resample, and report the central ``confidence`` share of those means. It uses
``scipy.stats.bootstrap`` (``method="percentile"``) where scipy is installed, else the same computation in
numpy; ``METHOD`` names which. The random draws come from the ``numpy.random.Generator`` passed in, so the
same seed gives the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 10_000
"""Resamples per interval (``--resamples``): the interval's ends move by well under 0.1 point between seeds."""
CONFIDENCE = 0.95
SEED = 0
"""The default seed of the resampling (``--bootstrap-seed``)."""
BATCH_VALUES = 4_000_000
"""Resampled values held in memory at once (32 MB of float64), whatever the number of objects."""

try:
    from scipy import stats as _stats
except ImportError:  # scipy is not a dependency of amodal; numpy computes the same interval
    _stats = None

METHOD = "percentile bootstrap (scipy.stats.bootstrap)" if _stats is not None else "percentile bootstrap (numpy)"


def mean_interval(values: Sequence[float], rng: np.random.Generator, resamples: int = RESAMPLES,
                  confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """(low, high): the ``confidence`` percentile-bootstrap interval of the mean of ``values``; None for
    fewer than two values (one object says nothing about how the mean varies)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    if np.all(values == values[0]):  # every resample has the same mean (scipy would warn and give NaN)
        return float(values[0]), float(values[0])
    batch = max(1, BATCH_VALUES // len(values))
    if _stats is not None:
        result = _stats.bootstrap((values,), np.mean, n_resamples=resamples, batch=batch, vectorized=True,
                                  confidence_level=confidence, method="percentile", rng=rng)
        return float(result.confidence_interval.low), float(result.confidence_interval.high)
    means = np.concatenate([
        values[rng.integers(0, len(values), size=(min(batch, resamples - start), len(values)))].mean(axis=1)
        for start in range(0, resamples, batch)
    ])
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def seeded_interval(values: Sequence[float], seed: int = SEED, resamples: int = RESAMPLES,
                    confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """``mean_interval`` with a generator of its own from ``seed``: each interval of a report or comparison
    is the same whichever other intervals are computed beside it."""
    return mean_interval(values, np.random.default_rng(seed), resamples, confidence)
