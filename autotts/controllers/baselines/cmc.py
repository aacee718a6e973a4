"""CMC, the "Confidence Momentum Controller" the AutoTTS paper discovered (spec §5), as a rule program.

One spec round (A-K) spans up to two env steps: A-E (abandon, then probe with
the round's pre-probe winner) is one step; F-J (EMA, stop gate, widening) is
read off the next observation. Widening opens branches at the end of the
round, so a widening round ends there and the next observation starts A-E;
otherwise the next round's A-E is decided in the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from autotts.controllers.rules import Decision, Rule, RuleProgram
from autotts.controllers.vote import beta_confidence, slot_vote_table
from autotts.env.fastops import any_true, equal, flat_nonzero, row_count, rows_and
from autotts.env.state import ACTIVE, FINISHED, KEY_OPEN, Observation

MAX_BRANCH, MAX_OUTER = 64, 500
START, PROBE, REVIEW = 0, 1, 2


@dataclass(frozen=True)
class CMCSchedule:
    """The β schedule (spec §5.1), computed with Python's round() exactly as the reference does."""

    n_init: int
    max_branch_use: int
    warm_up: int
    abandon_patience: int
    t_ema: int
    alpha: float
    conf_thresh: float
    delta_slack: float
    burst_aligned: int
    widen_burst: int
    trend_thresh: float
    min_complete: int

    @staticmethod
    def from_beta(beta: float) -> "CMCSchedule":
        b = min(1.0, max(0.0, float(beta)))
        return CMCSchedule(
            n_init=max(2, round(2 + 6 * b)), max_branch_use=min(MAX_BRANCH, round(4 + 60 * b)),
            warm_up=max(2, round(2 + 8 * b)), abandon_patience=max(3, round(3 + 9 * b)),
            t_ema=max(2, round(2 + 6 * b)), alpha=round(0.70 - 0.40 * b, 4),
            conf_thresh=round(0.85 + 0.12 * b, 4), delta_slack=round(0.04 - 0.03 * b, 4),
            burst_aligned=max(1, round(1 + 2 * b)), widen_burst=max(1, round(1 + 3 * b)),
            trend_thresh=round(0.04 - 0.03 * b, 4), min_complete=max(2, round(2 + 3 * b)))


class CMC(RuleProgram):
    """CMC(β): probe a small cohort, abandon dissenters, widen while confidence lags, stop on EMA confidence."""

    def __init__(self, beta: float = 0.5):
        self.beta = float(beta)
        self.s = CMCSchedule.from_beta(beta)
        self.slots = min(MAX_BRANCH, max(self.s.max_branch_use, self.s.n_init))
        self.rules = (
            Rule("initial_cohort", self._initial),
            Rule("nothing_opened", self._nothing_opened),
            Rule("confidence_gate", self._gate),
            Rule("all_resolved", self._resolved),
            Rule("round_cap", self._round_cap),
            Rule("widen", self._widen),
            Rule("abandon_dissenter", self._abandon),
            Rule("allocate_depth", self._allocate),
        )

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        e, b, dev = obs.num_episodes, obs.slots, obs.status.device
        zeros = torch.zeros(e, dtype=torch.long, device=dev)
        return {"phase": zeros.clone(), "r": zeros.clone(), "n_h": zeros.clone(),
                "ema": torch.zeros(e, dtype=torch.float64, device=dev),
                "hist": torch.zeros((e, self.s.t_ema), dtype=torch.float64, device=dev),
                "disagree": torch.zeros((e, b), dtype=torch.int16, device=dev)}  # < MAX_OUTER rounds

    # ---- memory update: F-J of the round just probed, then A-E of the next -------------------

    def update(self, obs: Observation, mem: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
        s = self.s
        conf = beta_confidence(obs.pool_top1, obs.pool_top2, obs.slots)
        review = mem["phase"] == REVIEW
        mem = dict(mem)
        # F-G: second EMA update of the round, overwriting its history entry.
        ema = torch.where(review, (1 - s.alpha) * mem["ema"] + s.alpha * conf, mem["ema"])
        hist = mem["hist"].clone()
        hist[:, -1] = torch.where(review, ema, hist[:, -1])
        first = hist.gather(1, (s.t_ema - mem["n_h"]).clamp(0, s.t_ema - 1)[:, None]).squeeze(1)
        delta = torch.where(mem["n_h"] >= 2, hist[:, -1] - first, 0.0)
        warm = mem["r"] >= s.warm_up
        gate = review & warm & (obs.pool_size >= s.min_complete) & (ema >= s.conf_thresh) & (delta >= -s.delta_slack)
        alive = equal(obs.status, ACTIVE)
        resolved = review & (row_count(alive) == 0)
        capped = review & (mem["r"] + 1 >= MAX_OUTER)
        stops = gate | resolved | capped
        wants = (review & (obs.n_open < s.max_branch_use) & (obs.n_open < MAX_BRANCH) & (delta <= s.trend_thresh)
                 & (mem["r"] >= max(1, s.warm_up // 2)) & (ema < s.conf_thresh))
        widen = torch.minimum((s.max_branch_use - obs.n_open).clamp(min=0),
                              torch.full_like(obs.n_open, s.widen_burst)).clamp(max=MAX_BRANCH) * wants
        widen = torch.minimum(widen, obs.n_avail - obs.n_open)
        widening = ~stops & (widen > 0)
        r = torch.where(review & ~stops, mem["r"] + 1, mem["r"])
        probe = ((mem["phase"] == PROBE) | (review & ~stops & ~widening)) & (obs.n_open > 0)
        mem.update(ema=ema, hist=hist, r=r)
        mem, plan = self._plan_probe(obs, mem, probe, conf, alive)
        derived = {"gate": gate, "resolved": resolved, "capped": capped, "winner": obs.pool_winner,
                   "widen": widen, "widening": widening, **plan}
        return mem, derived

    def _plan_probe(self, obs: Observation, mem: dict[str, Tensor], probe: Tensor, conf: Tensor, alive: Tensor
                    ) -> tuple[dict[str, Tensor], dict]:
        """A-E for the episodes in `probe`: first EMA update, disagreement, abandonment, depth budgets."""
        s = self.s
        ema = torch.where(probe, (1 - s.alpha) * mem["ema"] + s.alpha * conf, mem["ema"])
        shifted = torch.cat([mem["hist"][:, 1:], ema[:, None]], dim=1)
        hist = torch.where(probe[:, None], shifted, mem["hist"])
        n_h = torch.where(probe, (mem["n_h"] + 1).clamp(max=s.t_ema), mem["n_h"])
        counting = probe & (mem["r"] >= s.warm_up) & (obs.pool_winner >= 0)
        disagree, abandon, aligned = mem["disagree"], None, None
        if any_true(counting):  # C-D only run once warm and with a pool winner
            disagree, abandon, aligned = self._disagreement(obs, disagree, rows_and(alive, counting), alive)
        advance = rows_and(alive, probe)
        if abandon is not None:
            advance = advance & ~abandon
        budget = advance.to(torch.int32)
        if aligned is not None and s.burst_aligned != 1:
            budget += (advance & aligned).to(torch.int32) * (s.burst_aligned - 1)
        # E: probe in order of probe_count (= depth - 1 for live branches) descending, then spawn order.
        cap = KEY_OPEN // obs.slots - 1
        top = torch.arange(cap * obs.slots, (cap + 1) * obs.slots, dtype=torch.int32, device=obs.depth.device)
        priority = torch.sub(top, obs.depth.clamp(max=cap), alpha=obs.slots)  # (cap - depth) * slots + slot
        mem = dict(mem, ema=ema, hist=hist, n_h=n_h, disagree=disagree)
        plan = {"probe": probe, "abandon": abandon, "advance": advance, "budget": budget, "priority": priority}
        return mem, plan

    def _disagreement(self, obs: Observation, disagree: Tensor, counting: Tensor, alive: Tensor
                      ) -> tuple[Tensor, Tensor | None, Tensor]:
        """C-D on the `counting` branches: disagreement counters, abandonment (None if none), agreement with W0."""
        aligned = counting & equal(obs.answer, obs.pool_winner[:, None])
        # where(counting, where(agree, 0, disagree + 1), disagree), as arithmetic: torch.where is slow on [E,B].
        disagree = (disagree + counting) * ~aligned
        return disagree, self._abandon_mask(counting, disagree, alive), aligned

    def _abandon_mask(self, counting: Tensor, disagree: Tensor, alive: Tensor) -> Tensor | None:
        """D: abandon candidates (disagree >= patience), most-disagreeing first, keeping two alive; None if none."""
        cand = counting & (disagree >= self.s.abandon_patience)
        if not any_true(cand):
            return None
        limit = (row_count(alive) - 2).clamp(min=0)
        over = row_count(cand) > limit
        if not any_true(over):
            return cand
        cand = rows_and(cand, ~over | (limit > 0))  # episodes with two branches alive abandon none
        partial = flat_nonzero(over & (limit > 0))
        if partial.numel():
            cand = cand.index_copy(0, partial, self._first_candidates(cand.index_select(0, partial),
                                                                      disagree.index_select(0, partial),
                                                                      limit.index_select(0, partial)))
        return cand

    @staticmethod
    def _first_candidates(cand: Tensor, disagree: Tensor, limit: Tensor) -> Tensor:
        """The first `limit` [R] candidates of each row, most disagreement first, then spawn order (a stable sort)."""
        b = cand.shape[1]
        slot = torch.arange(b, device=cand.device)[None, :]
        d = disagree.long()
        key = torch.where(cand, (d.max() + 1 - d) * b + slot, (1 << 40) + slot)  # non-candidates last
        rank = torch.empty_like(key).scatter_(1, key.argsort(dim=1), slot.expand_as(key))
        return cand & (rank < limit[:, None])

    # ---- rules ---------------------------------------------------------------------------------

    def _initial(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_open(mem["phase"] == START, self.s.n_init)

    def _nothing_opened(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop((mem["phase"] != START) & (obs.n_open == 0), torch.full_like(obs.n_open, -1))

    def _gate(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop(derived["gate"], derived["winner"])

    def _resolved(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        if bool(derived["resolved"].any()):
            d.set_stop(derived["resolved"], self.aggregate(obs, mem, derived, derived["resolved"]))

    def _round_cap(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        if bool(derived["capped"].any()):
            d.set_stop(derived["capped"], self.aggregate(obs, mem, derived, derived["capped"]))

    def _widen(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_open(derived["widening"], derived["widen"])

    def _abandon(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        if derived["abandon"] is not None:
            d.set_branch(derived["abandon"], prune=True)

    def _allocate(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_branch(derived["advance"], advance=derived["budget"])
        d.priority = derived["priority"]

    def commit(self, obs: Observation, mem: dict[str, Tensor], derived: dict, d: Decision) -> dict[str, Tensor]:
        phase = torch.where(mem["phase"] == START, PROBE, mem["phase"])
        phase = torch.where(derived["widening"], PROBE, phase)
        phase = torch.where(derived["probe"], REVIEW, phase)
        return dict(mem, phase=phase)

    def aggregate(self, obs: Observation, mem: Any, derived: dict, rows: Tensor) -> Tensor:
        """§5.5: the pool winner; if the pool is empty, the majority of non-abandoned latest answers."""
        out = obs.pool_winner.clone()
        empty = (rows & (obs.pool_winner < 0)).nonzero().squeeze(1)
        if empty.numel():
            status, answer = obs.status[empty], obs.answer[empty]
            kept = ((status == ACTIVE) | (status == FINISHED)) & (answer >= 0)
            out[empty] = slot_vote_table(answer, kept)[0]
        return out
