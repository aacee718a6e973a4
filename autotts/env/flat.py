"""Flat-index primitives for the hot loops of the env and of the controllers.

A [3000,64] tensor op costs 0.1-2 ms on our CPU VMs, so per-round work is
sparse: find the touched entries once, gather them, compute on the short
list, scatter the results back. These helpers are the fastest way we found
to do each of those steps on CPU, and plain torch elsewhere (CUDA).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def flat_nonzero(mask: Tensor) -> Tensor:
    """int64 flat indices of the True entries of `mask` (any shape), in row-major order.

    On CPU numpy's flatnonzero is 5-10x faster than torch.nonzero (a two-pass
    count-then-write kernel) on our [E,B] masks; on other devices it is torch's.
    """
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.contiguous().numpy()))
    return mask.reshape(-1).nonzero().squeeze(1)


def gather(flat: Tensor, idx: Tensor) -> Tensor:
    """`flat[idx]` (index_select is ~2.5x faster than [] indexing on CPU)."""
    return flat.index_select(0, idx)


def put(flat: Tensor, idx: Tensor, value: Tensor | int) -> None:
    """`flat[idx] = value` in place (scatter_ is ~2.5x faster than [] assignment on CPU); idx must be int64."""
    if not isinstance(value, Tensor):
        value = torch.full_like(idx, value, dtype=flat.dtype)
    flat.scatter_(0, idx, value.to(flat.dtype))


__all__ = ["flat_nonzero", "gather", "put"]
