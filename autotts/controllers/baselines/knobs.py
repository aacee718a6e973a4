"""Per-episode knobs: a baseline's swept parameter as a scalar or one value per episode.

A sweep evaluates every knob of a baseline in ONE rollout by tiling the
episodes once per knob and giving each row its own value, as the ES folds its
population into episodes. Per-row values live in the controller's memory (so
the rollout's compaction of finished rows keeps them aligned); a scalar is
broadcast, so single-knob controllers are unchanged.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

Knob = float | int | Sequence[float] | Tensor


def as_knob(value: Knob, dtype: torch.dtype) -> int | float | Tensor:
    """A Python scalar, or a 1-D tensor of per-episode values (a one-element input stays a scalar)."""
    if isinstance(value, (int, float)):
        return int(value) if dtype == torch.long else float(value)
    t = torch.as_tensor(value).reshape(-1)
    if t.numel() == 1:
        return as_knob(t.item(), dtype)
    return t.to(dtype)  # to long truncates, as int() does for a scalar


def knob_max(value: int | float | Tensor) -> int:
    """The largest value of a knob (it sizes the branch slots every row shares)."""
    return int(value.max()) if isinstance(value, Tensor) else int(value)


def knob_min(value: int | float | Tensor) -> float:
    return float(value.min()) if isinstance(value, Tensor) else float(value)


def knob_rows(value: int | float | Tensor, num_episodes: int, device: torch.device | str) -> Tensor:
    """[E] per-episode values of a knob (a scalar broadcast); a tensor must have one value per episode."""
    if not isinstance(value, Tensor):
        dtype = torch.long if isinstance(value, int) else torch.float64
        return torch.full((num_episodes,), value, dtype=dtype, device=device)
    if value.shape != (num_episodes,):
        raise ValueError(f"per-episode knob has {value.numel()} values for {num_episodes} episodes")
    return value.to(device)


__all__ = ["Knob", "as_knob", "knob_max", "knob_min", "knob_rows"]
