"""β must be monotone: more β never buys fewer tokens. Checked on a fine grid, per store."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, GuardSpec
from autotts.controllers.policy import PolicyShape
from autotts.discovery.validation import beta_sweep
from autotts.store.replay_store import ReplayStore


def beta_grid(n: int) -> list[float]:
    """n evenly spaced β values from 0 to 1 (n >= 2)."""
    return [round(i / (n - 1), 6) for i in range(n)]


def monotone_check(weights: Tensor, stores: Sequence[ReplayStore], shape: PolicyShape = PolicyShape(),
                   spec: ActionSpec = ActionSpec(), guards: Sequence[GuardSpec] = DEFAULT_GUARDS,
                   betas: int = 11, seeds: int = 3, protocol: str = "reference") -> dict:
    """Mean tokens (and accuracy) at `betas` grid points per store, and whether tokens never decrease.

    Returns ``{"betas": [...], "stores": {name: {"tokens", "accuracy", "monotone", "worst_drop"}},
    "monotone": bool}`` (JSON-ready: it goes into the export manifest).
    """
    if betas < 11:
        raise ValueError(f"monotone_check needs at least 11 β values, got {betas}")
    grid = beta_grid(betas)
    out: dict = {"betas": grid, "seeds": seeds, "protocol": protocol, "stores": {}}
    for store in stores:
        sweep = beta_sweep(weights, store, grid, seeds, shape, spec, guards, protocol)
        drops = [a - b for a, b in zip(sweep.tokens[:-1], sweep.tokens[1:])]
        out["stores"][_unique(out["stores"], store.name)] = {
            "tokens": list(sweep.tokens), "accuracy": list(sweep.accuracy),
            "monotone": all(d <= 0 for d in drops), "worst_drop": max(0.0, max(drops))}
    out["monotone"] = all(s["monotone"] for s in out["stores"].values())
    return out


def _unique(taken: dict, name: str) -> str:
    key, i = name, 2
    while key in taken:
        key, i = f"{name}#{i}", i + 1
    return key
