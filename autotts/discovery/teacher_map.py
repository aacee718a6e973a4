"""Choose the export's β map (`autotts.controllers.switch`): CMC below and above the β range where the policy beat it.

The rule (README "How we choose"): at each β of the export check's grid, on the
validation stores at the check's seeds, compare the policy with CMC at CMC(β)'s tokens
on each store ("accuracy at a token level", `autotts.evaluate.frontier`), averaged per
validation split (the AIME split; the shifted stores). Below the first β where the policy
is ahead on *every* split, CMC(β) runs; from there the policy (`choose_beta_map`), from the
least β of its own that spends that CMC(β)'s tokens on every store, until
CMC is above the policy's top on every store again. The switched curve is then checked
like any export (tokens rise with β on every store, the knob rule); if it fails, the
policy is exported alone.

The switched curve needs no rollout of CMC beyond CMC's own sweep: each episode runs
exactly as its program alone (tests/test_switch.py), so its points are CMC's at CMC
points and one policy sweep at the inner βs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

from autotts.controllers.learned import ActionSpec, GuardSpec
from autotts.controllers.policy import PolicyShape
from autotts.controllers.switch import BetaMap
from autotts.discovery.knob import KNOB_TOLERANCE
from autotts.discovery.monotone import sweep_record
from autotts.discovery.validation import Sweep, beta_sweep, cmc_sweep, sweeps_knob
from autotts.evaluate.frontier import accuracy_at
from autotts.store.replay_store import ReplayStore


def margins(ours: Sequence[Sweep], cmc: Sequence[Sweep]) -> np.ndarray:
    """[S, K] ours − CMC (points) at CMC(β_k)'s tokens on each store (−inf where ours cannot spend that little)."""
    out = []
    for o, c in zip(ours, cmc):
        at = accuracy_at(np.array(o.tokens), np.array(o.accuracy), np.array(c.tokens))
        out.append(np.where(np.isnan(at), -np.inf, at - np.array(c.accuracy)))
    return np.array(out)


def matched_beta(ours: Sequence[Sweep], targets: Sequence[float]) -> float | None:
    """The least policy β that spends at least `targets[s]` tokens on every store s (None if some store cannot).

    Every store, not the mean: where the policy takes over from CMC its tokens must not fall on any store,
    and a store whose tokens run short of the others' would fall first.
    """
    betas = []
    for o, target in zip(ours, targets):
        tokens = np.array(o.tokens)
        if np.any(np.diff(tokens) <= 0) or target > tokens[-1]:
            return None
        betas.append(float(np.interp(target, tokens, np.array(o.betas))) if target >= tokens[0] else 0.0)
    return max(betas)


def choose_beta_map(ours: Sequence[Sweep], cmc: Sequence[Sweep], splits: Sequence[str]) -> tuple[BetaMap, list[dict]]:
    """The β map of the rule above, and per β its split margins and choice (for the manifest and the log).

    CMC(β) runs below the first grid β where ours beat CMC at CMC(β)'s tokens on every split (k0). From
    there the policy runs, its own β rising from the least that spends CMC(β_k0)'s tokens on every store
    (its top if it cannot) to 1, until the first grid β whose CMC is above the policy's top and dearer
    on every store (the knob rule judges each store's β = 1 against its best β): from there CMC(β)
    again. So the path follows the upper envelope of the two curves and its tokens rise.
    """
    grid = list(cmc[0].betas)
    m = margins(ours, cmc)
    names = sorted(set(splits))
    split_means = {n: m[[i for i, s in enumerate(splits) if s == n]].mean(0) for n in names}
    wins = [all(split_means[n][k] > 0 for n in names) for k in range(len(grid))]
    programs, inner = ["cmc"] * len(grid), list(grid)
    k0 = next((k for k, w in enumerate(wins) if w), None)
    if k0 is not None:
        k1, start = _policy_span(ours, cmc, splits, k0)
        for k in range(k0, k1 + 1):
            programs[k] = "policy"
            inner[k] = round(start + (1.0 - start) * (k - k0) / max(1, k1 - k0), 6) if k1 > k0 else start
    rows = [{"beta": b, "program": programs[k], "inner": inner[k], "wins": wins[k],
             "margins": {n: _finite(split_means[n][k]) for n in names}} for k, b in enumerate(grid)]
    return BetaMap(tuple(grid), tuple(programs), tuple(inner)), rows


def _policy_span(ours: Sequence[Sweep], cmc: Sequence[Sweep], splits: Sequence[str], k0: int) -> tuple[int, float]:
    """(last grid index the policy runs at, its β at k0) for a policy segment that starts at grid index k0."""
    start = matched_beta(ours, [c.tokens[k0] for c in cmc])
    if start is None or start >= 1.0:  # the policy cannot spend CMC(β_k0)'s tokens everywhere: its top, once
        return k0, 1.0
    for k in range(k0 + 1, len(cmc[0].betas)):  # per store: the knob rule wants each store's β = 1 near its best
        if all(c.accuracy[k] >= o.accuracy[-1] and c.tokens[k] > o.tokens[-1] for c, o in zip(cmc, ours)):
            return k - 1, start
    return len(cmc[0].betas) - 1, start


def switched_sweeps(beta_map: BetaMap, policy: Sequence[Sweep], cmc: Sequence[Sweep]) -> list[Sweep]:
    """Per store, the switched export's sweep on the grid: CMC's points, or the policy's at its inner β.

    `policy[s]` is the policy's sweep at the inner βs of the map's policy points, in grid order.
    """
    out = []
    for p, c in zip(policy, cmc):
        acc, tok, j = list(c.accuracy), list(c.tokens), 0
        for k, program in enumerate(beta_map.programs):
            if program == "policy":
                acc[k], tok[k], j = p.accuracy[j], p.tokens[j], j + 1
        out.append(Sweep(c.store, c.betas, tuple(acc), tuple(tok)))
    return out


def switch_check(verdict: dict, weights: Tensor, stores: Sequence[ReplayStore], splits: Sequence[str],
                 shape: PolicyShape, spec: ActionSpec, guards: Sequence[GuardSpec], seeds: int, protocol: str,
                 step_mode: str = "auto", tolerance: float = KNOB_TOLERANCE) -> dict:
    """`verdict` (the export check of `weights` on `stores`, `monotone_check`'s form) with the switch decided.

    The switched curve must keep the checks the policy's had (tokens rise with β on every store, the
    knob rule); then it is the export's (``stores``, ``knob``), the policy's own kept as
    ``switch.policy_alone``. Else only ``switch`` (with its ``why``) is added.
    """
    grid, names = list(verdict["betas"]), list(verdict["stores"])  # monotone_check's names, in store order
    ours = [Sweep(n, tuple(grid), tuple(verdict["stores"][n]["accuracy"]), tuple(verdict["stores"][n]["tokens"]))
            for n in names]
    cmc = [cmc_sweep(st, grid, seeds, protocol, step_mode) for st in stores]
    beta_map, rows = choose_beta_map(ours, cmc, splits)
    out = dict(verdict, switch={"rows": rows, "beta_map": beta_map.record(), "used": False})
    if not beta_map.uses_teacher:
        out["switch"]["why"] = "the policy beat CMC at every β"
        return out
    inner = [b for p, b in zip(beta_map.programs, beta_map.inner) if p == "policy"]
    policy = [beta_sweep(weights, st, inner, seeds, shape, spec, guards, protocol, step_mode) if inner
              else Sweep(st.name, (), (), ()) for st in stores]
    switched = switched_sweeps(beta_map, policy, cmc)
    knob = sweeps_knob(grid, switched, splits, tolerance)
    curves = {n: sweep_record(w) for n, w in zip(names, switched)}
    rises = all(c["monotone"] for c in curves.values())
    if not (rises and knob["holds"]):
        falls = [f"{n}: {w.tokens[k]:.0f} tokens at β={w.betas[k]:g}, {w.tokens[k + 1]:.0f} at β={w.betas[k + 1]:g}"
                 for n, w in zip(names, switched) for k in range(len(grid) - 1) if w.tokens[k + 1] < w.tokens[k]]
        out["switch"]["why"] = "the switched curve " + (
            "breaks the knob rule: " + "; ".join(knob["failures"]) if rises
            else "spends less at a higher β: " + "; ".join(falls))
        out["switch"]["switched"] = {"stores": curves, "knob": knob}
        return out
    out["switch"].update(used=True, policy_alone={"stores": verdict["stores"], "knob": verdict["knob"]})
    out.update(stores=curves, knob=knob, monotone=True)
    return out


def _finite(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


__all__ = ["choose_beta_map", "margins", "matched_beta", "switch_check", "switched_sweeps"]
