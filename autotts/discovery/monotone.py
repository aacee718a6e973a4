"""β must be monotone: more β never buys fewer tokens, and (the knob rule) never lower accuracy. Per store, 11+ β."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, GuardSpec
from autotts.controllers.policy import PolicyShape
from autotts.discovery.knob import KNOB_TOLERANCE, unique_name
from autotts.discovery.validation import Sweep, beta_sweep, sweeps_knob
from autotts.store.replay_store import ReplayStore


def beta_grid(n: int) -> list[float]:
    """n evenly spaced β values from 0 to 1 (n >= 2)."""
    return [round(i / (n - 1), 6) for i in range(n)]


def monotone_check(weights: Tensor, stores: Sequence[ReplayStore], shape: PolicyShape = PolicyShape(),
                   spec: ActionSpec = ActionSpec(), guards: Sequence[GuardSpec] = DEFAULT_GUARDS,
                   betas: int = 11, seeds: int = 3, protocol: str = "reference",
                   splits: Sequence[str] | None = None, step_mode: str = "auto",
                   tolerance: float = KNOB_TOLERANCE) -> dict:
    """Mean tokens (and accuracy) at `betas` grid points per store, whether tokens never decrease, and the knob rule.

    Returns ``{"betas": [...], "stores": {name: {"tokens", "accuracy", "monotone", "worst_drop"}},
    "monotone": bool, "knob": knob_rule(...)}`` (JSON-ready: it goes into the export manifest).
    `splits` gives each store's split (parallel to `stores`) for the knob rule's split means; `tolerance`
    the points it allows (stricter than the judged 0.5 leaves room for the seeds this check lacks).
    """
    if betas < 11:
        raise ValueError(f"monotone_check needs at least 11 β values, got {betas}")
    grid = beta_grid(betas)
    out: dict = {"betas": grid, "seeds": seeds, "protocol": protocol, "stores": {}}
    sweeps = []
    for store in stores:
        sweep = beta_sweep(weights, store, grid, seeds, shape, spec, guards, protocol, step_mode)
        out["stores"][unique_name(out["stores"], store.name)] = sweep_record(sweep)
        sweeps.append(sweep)
    out["monotone"] = all(s["monotone"] for s in out["stores"].values())
    out["knob"] = sweeps_knob(grid, sweeps, splits, tolerance)
    return out


def sweep_record(sweep: Sweep) -> dict:
    """A store's entry of the check (JSON-ready): its curve, whether tokens never fall with β, the worst fall."""
    drops = [a - b for a, b in zip(sweep.tokens[:-1], sweep.tokens[1:])]
    return {"tokens": list(sweep.tokens), "accuracy": list(sweep.accuracy),
            "monotone": all(d <= 0 for d in drops), "worst_drop": max(0.0, max(drops))}
