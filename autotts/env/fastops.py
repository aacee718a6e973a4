"""Fast forms of the few tensor ops that the per-round hot loops of the env and the controllers need.

On CPU an [E,B] = [3000,64] op costs 0.03-2 ms depending on how it is
written, and a rollout runs tens of them per round for 50-150 rounds. Measured
with torch 2.13 (AVX2) on our CI VMs, per [3000,64] op:

* comparisons that write a bool tensor (``x == v``, ``x > 0``): ~0.25 ms;
  ``~(x ^ v).bool()`` or ``x.clamp(min=0).bool()``: ~0.07-0.1 ms;
* bool ops that broadcast (``mask & rows[:, None]``) or reduce (``mask.any()``):
  0.2-0.4 ms; the same on a uint8 view: ~0.01-0.03 ms;
* ``torch.nonzero``: 0.4-2 ms; numpy's ``flatnonzero``: ~0.15 ms;
* ``index_select``/``scatter_`` beat ``[]`` indexing ~2.5x.

So the hot loops work sparsely (find touched entries once, gather, compute on
the short list, scatter back) and use these helpers for the dense steps.
Every helper computes exactly what its plain-torch form computes; off CPU it
is the plain-torch form.

Sparse work needs the host to know sizes (``flat_nonzero``) and to skip work
when a mask is empty (``any_true``): each is a host sync on a GPU. Inside
``sync_free()`` (the dense env step runs the round under it) the controllers
take masked forms instead, and ``any_true`` answers "maybe" (True) so callers
do their masked work unconditionally.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

_SYNC_FREE: ContextVar[bool] = ContextVar("autotts_sync_free", default=False)


@contextmanager
def sync_free(on: bool = True) -> Iterator[None]:
    """Run the block with sync-free (masked, fixed-shape) controller forms when `on`."""
    token = _SYNC_FREE.set(on)
    try:
        yield
    finally:
        _SYNC_FREE.reset(token)


def is_sync_free() -> bool:
    """Whether the caller runs inside `sync_free()`: take the masked form, never read a value on the host."""
    return _SYNC_FREE.get()


def flat_nonzero(mask: Tensor) -> Tensor:
    """int64 flat indices of the non-zero entries of `mask` (any shape), in row-major order."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.contiguous().numpy()))
    return mask.reshape(-1).nonzero().squeeze(1)


def gather(flat: Tensor, idx: Tensor) -> Tensor:
    """`flat[idx]` for a 1-D `flat`."""
    return flat.index_select(0, idx)


def put(flat: Tensor, idx: Tensor, value: Tensor | int) -> None:
    """`flat[idx] = value` in place for a 1-D `flat`; idx must be int64."""
    if isinstance(value, Tensor):
        flat.scatter_(0, idx, value if value.dtype == flat.dtype else value.to(flat.dtype))
    else:
        flat.index_fill_(0, idx, value)


def equal(x: Tensor, value: Tensor | int) -> Tensor:
    """``x == value`` for an integer tensor `x` and an int or broadcastable integer tensor `value`."""
    if x.device.type != "cpu":
        return x == value
    if isinstance(value, Tensor):
        value = value.to(x.dtype)
    return ~(x ^ value).bool()


def positive(x: Tensor) -> Tensor:
    """``x > 0`` for an integer tensor."""
    if x.device.type != "cpu":
        return x > 0
    return x.clamp(min=0).bool()


def rows_and(mask: Tensor, rows: Tensor) -> Tensor:
    """``mask & rows[:, None]`` for an [E,B] bool `mask` and [E] bool `rows`."""
    if mask.device.type != "cpu":
        return mask & rows[:, None]
    return (mask.view(torch.uint8) & rows.view(torch.uint8)[:, None]).view(torch.bool)


def any_true(mask: Tensor) -> bool:
    """``bool(mask.any())`` for a bool tensor; inside `sync_free()` True ("maybe": do the masked work)."""
    if _SYNC_FREE.get():
        return True
    return mask.numel() > 0 and bool(mask.view(torch.uint8).amax())


def row_count(mask: Tensor) -> Tensor:
    """[E] int32 number of True entries in each row of an [E,B] bool mask (``any(1)`` is ~10x slower)."""
    return mask.sum(1, dtype=torch.int32)


__all__ = ["any_true", "equal", "flat_nonzero", "gather", "is_sync_free", "positive", "put", "row_count", "rows_and",
           "sync_free"]
