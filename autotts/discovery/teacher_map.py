"""Choose the export's β map (`autotts.controllers.switch`): the policy only at the β where it beat CMC.

The rule (README "How we choose", written before it was applied): at each β of the
export check's grid, on the validation stores at the check's seeds, compare the
policy with CMC at CMC(β)'s tokens on each store ("accuracy at a token level",
`autotts.evaluate.frontier`). The policy runs at β when the mean margin is above zero
on *every* validation split (the AIME split and the shifted stores each), and some
policy β spends CMC(β)'s tokens (mean over the stores); that β is its inner β.
Elsewhere CMC(β) runs. The switched curve is then checked like any export (tokens
rise with β on every store, the knob rule); if it fails, the policy is exported alone.
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


def matched_beta(ours: Sequence[Sweep], target: float) -> float | None:
    """The policy β whose mean tokens over the stores are `target` (None outside the policy's range)."""
    betas = np.array(ours[0].betas)
    tokens = np.mean([o.tokens for o in ours], axis=0)
    if np.any(np.diff(tokens) <= 0) or not tokens[0] <= target <= tokens[-1]:
        return None
    return float(np.interp(target, tokens, betas))


def choose_beta_map(ours: Sequence[Sweep], cmc: Sequence[Sweep], splits: Sequence[str]) -> tuple[BetaMap, list[dict]]:
    """The β map of the rule above, and per β its split margins and choice (for the manifest and the log)."""
    grid = list(cmc[0].betas)
    m = margins(ours, cmc)
    names = sorted(set(splits))
    split_means = {n: m[[i for i, s in enumerate(splits) if s == n]].mean(0) for n in names}
    cmc_tokens = np.mean([c.tokens for c in cmc], axis=0)
    programs, inner, rows = [], [], []
    for k, beta in enumerate(grid):
        wins = all(split_means[n][k] > 0 for n in names)
        b = matched_beta(ours, float(cmc_tokens[k])) if wins else None
        programs.append("policy" if b is not None else "cmc")
        inner.append(round(b, 6) if b is not None else beta)
        rows.append({"beta": beta, "program": programs[-1], "inner": inner[-1],
                     "margins": {n: _finite(split_means[n][k]) for n in names}})
    return BetaMap(tuple(grid), tuple(programs), tuple(inner)), rows


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
    curves = {n: {"tokens": list(w.tokens), "accuracy": list(w.accuracy),
                  "monotone": all(a <= b for a, b in zip(w.tokens[:-1], w.tokens[1:])),
                  "worst_drop": max([0.0] + [a - b for a, b in zip(w.tokens[:-1], w.tokens[1:])])}
              for n, w in zip(names, switched)}
    rises = all(c["monotone"] for c in curves.values())
    if not (rises and knob["holds"]):
        out["switch"]["why"] = "the switched curve " + (
            "breaks the knob rule: " + "; ".join(knob["failures"]) if rises else "spends less at a higher β")
        out["switch"]["switched"] = {"stores": curves, "knob": knob}
        return out
    out["switch"].update(used=True, policy_alone={"stores": verdict["stores"], "knob": verdict["knob"]})
    out.update(stores=curves, knob=knob, monotone=True)
    return out


def _finite(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


__all__ = ["choose_beta_map", "margins", "matched_beta", "switch_check", "switched_sweeps"]
