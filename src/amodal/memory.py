"""Peak memory: the GPU's allocator peak when there is a GPU, else the process's peak resident set."""

from __future__ import annotations

import resource
import sys

import torch


def peak_memory_mb(device: str | None = None) -> float:
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
