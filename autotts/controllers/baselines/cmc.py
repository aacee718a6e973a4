"""CMC, the "Confidence Momentum Controller" the AutoTTS paper discovered (spec §5), as a rule program.

One spec round (A-K) spans up to two env steps: A-E (abandon, then probe with
the round's pre-probe winner) is one step; F-J (EMA, stop gate, widening) is
read off the next observation. Widening opens branches at the end of the
round, so a widening round ends there and the next observation starts A-E;
otherwise the next round's A-E is decided in the same step.

β may be one value per episode (a whole β sweep as one rollout): the schedule
then holds [E] tensors, kept in the controller's memory so that the rollout's
compaction keeps them aligned with their rows; the EMA history is as wide as
the largest `t_ema` and each row reads only its own last `t_ema` entries.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from autotts.controllers.baselines.knobs import Knob, as_knob
from autotts.controllers.rules import Decision, Rule, RuleProgram
from autotts.controllers.vote import beta_confidence, slot_vote_table
from autotts.env.fastops import any_true, equal, flat_nonzero, is_sync_free, row_count, rows_and
from autotts.env.state import ACTIVE, FINISHED, KEY_OPEN, Observation

MAX_BRANCH, MAX_OUTER = 64, 500
START, PROBE, REVIEW = 0, 1, 2


@dataclass(frozen=True)
class CMCSchedule:
    """The β schedule (spec §5.1), computed with Python's round() exactly as the reference does.

    Fields are Python numbers for one β, or [E] tensors (`rows`) for one β per episode.
    """

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

    @staticmethod
    def rows(betas: Tensor) -> "CMCSchedule":
        """[E] tensors of the schedule of each row's β (each distinct β computed once, as `from_beta`)."""
        uniq, inverse = torch.unique(betas.double(), return_inverse=True)
        table = [CMCSchedule.from_beta(float(b)) for b in uniq.tolist()]
        out = {}
        for f in fields(CMCSchedule):
            values = [getattr(s, f.name) for s in table]
            dtype = torch.float64 if isinstance(values[0], float) else torch.long
            out[f.name] = torch.tensor(values, dtype=dtype)[inverse]
        return CMCSchedule(**out)

    def largest(self, name: str) -> int:
        value = getattr(self, name)
        return int(value.max()) if isinstance(value, Tensor) else int(value)


class CMC(RuleProgram):
    """CMC(β): probe a small cohort, abandon dissenters, widen while confidence lags, stop on EMA confidence."""

    def __init__(self, beta: Knob = 0.5):
        self.beta = as_knob(beta, torch.float64)
        self.s = CMCSchedule.rows(self.beta) if isinstance(self.beta, Tensor) else CMCSchedule.from_beta(self.beta)
        self.slots = min(MAX_BRANCH, max(self.s.largest("max_branch_use"), self.s.largest("n_init")))
        self.width = self.s.largest("t_ema")  # EMA history entries kept (rows read their last t_ema)
        self._keys: dict[tuple, Tensor] = {}
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
        mem = {"phase": zeros.clone(), "r": zeros.clone(), "n_h": zeros.clone(),
               "ema": torch.zeros(e, dtype=torch.float64, device=dev),
               "hist": torch.zeros((e, self.width), dtype=torch.float64, device=dev),
               "disagree": torch.zeros((e, b), dtype=torch.int16, device=dev)}  # < MAX_OUTER rounds
        # a caller's per-episode β (the teacher switch), within self.beta's range
        rows = (context or {}).get("cmc_beta")
        betas = rows.reshape(-1) if rows is not None else self.beta if isinstance(self.beta, Tensor) else None
        if betas is not None:
            if betas.shape != (e,):
                raise ValueError(f"CMC has {betas.numel()} per-episode β values for {e} episodes")
            s = self.s if rows is None else self._fitting(CMCSchedule.rows(betas.cpu()), betas)
            mem["s"] = CMCSchedule(**{f.name: getattr(s, f.name).to(dev) for f in fields(CMCSchedule)})
        return mem

    def _fitting(self, s: CMCSchedule, betas: Tensor) -> CMCSchedule:
        """`s` if it fits the slots and EMA width this CMC was built with (memory is sized by them)."""
        if s.largest("t_ema") > self.width or max(s.largest("max_branch_use"), s.largest("n_init")) > self.slots:
            raise ValueError(f"per-episode β up to {float(betas.max()):g} needs more slots or EMA width than "
                             f"this CMC was built with (β {self.beta})")
        return s

    def _schedule(self, mem: dict) -> CMCSchedule:
        return mem.get("s", self.s)

    # ---- memory update: F-J of the round just probed, then A-E of the next -------------------

    def update(self, obs: Observation, mem: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
        s = self._schedule(mem)
        conf = beta_confidence(obs.pool_top1, obs.pool_top2, obs.slots)
        review = mem["phase"] == REVIEW
        alive = equal(obs.status, ACTIVE)
        n_alive = row_count(alive)
        # F-G: second EMA update of the round. hist[:, -1] always holds the current ema, so it is overwritten.
        ema = torch.where(review, (1 - s.alpha) * mem["ema"] + s.alpha * conf, mem["ema"])
        hist = mem["hist"].clone()
        hist[:, -1] = ema
        # delta = newest - oldest of the last min(n_h, T) entries; with fewer than two the oldest is the newest.
        w = self.width
        delta = ema - hist.gather(1, (w - mem["n_h"]).clamp(max=w - 1)[:, None]).squeeze(1)
        r = mem["r"]
        gate = review & (r >= s.warm_up) & (obs.pool_size >= s.min_complete) & (ema >= s.conf_thresh) & (
            delta >= -s.delta_slack)
        resolved = review & (n_alive == 0)
        capped = review & (r + 1 >= MAX_OUTER)
        go_on = review & ~(gate | resolved | capped)
        # J: open up to widen_burst more while under both branch caps, the trend is flat and confidence lags.
        half = (s.warm_up // 2).clamp(min=1) if isinstance(s.warm_up, Tensor) else max(1, s.warm_up // 2)
        wants = go_on & (delta <= s.trend_thresh) & (r >= half) & (ema < s.conf_thresh)
        cap = s.max_branch_use.clamp(max=MAX_BRANCH) if isinstance(s.max_branch_use, Tensor) else min(
            s.max_branch_use, MAX_BRANCH)
        room = torch.minimum(cap - obs.n_open, obs.n_avail - obs.n_open)
        widen = room.clamp(min=0).clamp(max=s.widen_burst) * wants
        widening = widen > 0
        probe = ((mem["phase"] == PROBE) | (go_on & ~widening)) & (obs.n_open > 0)
        mem = dict(mem, ema=ema, hist=hist, r=r + go_on)
        mem, plan = self._plan_probe(obs, mem, s, probe, conf, alive, n_alive)
        derived = {"gate": gate, "resolved": resolved, "capped": capped, "winner": obs.pool_winner,
                   "widen": widen, "widening": widening, **plan}
        return mem, derived

    def _plan_probe(self, obs: Observation, mem: dict[str, Tensor], s: CMCSchedule, probe: Tensor, conf: Tensor,
                    alive: Tensor, n_alive: Tensor) -> tuple[dict[str, Tensor], dict]:
        """A-E for the episodes in `probe`: first EMA update, disagreement, abandonment, depth budgets."""
        ema = torch.where(probe, (1 - s.alpha) * mem["ema"] + s.alpha * conf, mem["ema"])
        hist = torch.where(probe[:, None], torch.cat([mem["hist"][:, 1:], ema[:, None]], dim=1), mem["hist"])
        n_h = (mem["n_h"] + probe).clamp(max=s.t_ema)
        counting = probe & (mem["r"] >= s.warm_up) & (obs.pool_winner >= 0)
        disagree, abandon, aligned = mem["disagree"], None, None
        if any_true(counting):  # C-D only run once warm and with a pool winner
            disagree, abandon, aligned = self._disagreement(obs, disagree, rows_and(alive, counting), n_alive,
                                                            s.abandon_patience)
        advance = rows_and(alive, probe)
        if abandon is not None:
            advance = advance & ~abandon
        # Budget 1, or burst_aligned for branches agreeing with W0 (int8 views of the masks: no casts).
        budget = advance.view(torch.int8)
        if aligned is not None and isinstance(s.burst_aligned, Tensor):
            budget = budget + (advance & aligned).view(torch.int8) * (s.burst_aligned - 1).to(torch.int8)[:, None]
        elif aligned is not None and s.burst_aligned != 1:
            budget = torch.add(budget, (advance & aligned).view(torch.int8), alpha=s.burst_aligned - 1)
        # E: probe in order of probe_count (= depth - 1 for live branches) descending, then spawn order.
        cap = KEY_OPEN // obs.slots - 1
        priority = torch.sub(self._top_keys(obs), obs.depth.clamp(max=cap), alpha=obs.slots)
        mem = dict(mem, ema=ema, hist=hist, n_h=n_h, disagree=disagree)
        plan = {"probe": probe, "abandon": abandon, "advance": advance, "budget": budget, "priority": priority}
        return mem, plan

    def _top_keys(self, obs: Observation) -> Tensor:
        """[B] int32 (cap * B + slot), cap = KEY_OPEN // B - 1: priority (cap - depth) * B + slot
        is this - depth * B."""
        key = (obs.slots, obs.depth.device)
        if self._keys.get(key) is None:
            cap = KEY_OPEN // obs.slots - 1
            self._keys[key] = torch.arange(cap * obs.slots, (cap + 1) * obs.slots, dtype=torch.int32, device=key[1])
        return self._keys[key]

    def _disagreement(self, obs: Observation, disagree: Tensor, counting: Tensor, n_alive: Tensor,
                      patience: int | Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """C-D on the `counting` branches: disagreement counters, abandonment (None if none), agreement with W0."""
        aligned = counting & equal(obs.answer, obs.pool_winner[:, None])
        # where(counting, where(agree, 0, disagree + 1), disagree), as arithmetic: torch.where is slow on [E,B].
        disagree = (disagree + counting) * ~aligned
        return disagree, self._abandon_mask(counting, disagree, n_alive, patience), aligned

    def _abandon_mask(self, counting: Tensor, disagree: Tensor, n_alive: Tensor, patience: int | Tensor
                      ) -> Tensor | None:
        """D: abandon candidates (disagree >= patience), most-disagreeing first, keeping two alive; None if none."""
        if isinstance(patience, Tensor):
            patience = patience.to(disagree.dtype)[:, None]
        cand = counting & (disagree >= patience)
        if not any_true(cand):
            return None
        limit = (n_alive - 2).clamp(min=0)
        n_cand = row_count(cand)
        if is_sync_free():  # every row ranks its candidates; the rows with more than may go keep the first
            first = self._first_candidates(cand, disagree, limit)
            return torch.where(((n_cand > limit) & (limit > 0))[:, None], first, rows_and(cand, n_cand <= limit))
        partial = flat_nonzero((n_cand > limit) & (limit > 0))
        first = None
        if partial.numel():  # more candidates than may go: the first `limit` of them
            first = self._first_candidates(cand.index_select(0, partial), disagree.index_select(0, partial),
                                           limit.index_select(0, partial))
        cand = rows_and(cand, n_cand <= limit)  # every candidate goes, or (two alive) none
        if first is not None:
            cand = cand.index_copy(0, partial, first)
        return cand if any_true(cand) else None

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
        d.set_open(mem["phase"] == START, self._schedule(mem).n_init)

    def _nothing_opened(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        # Almost never true: test it first, a no-op set_stop still costs several ops.
        nothing = (mem["phase"] != START) & (obs.n_open == 0)
        if any_true(nothing):
            d.set_stop(nothing, torch.full_like(obs.n_open, -1))

    def _gate(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop(derived["gate"], derived["winner"])

    def _resolved(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        if any_true(derived["resolved"]):
            d.set_stop(derived["resolved"], self.aggregate(obs, mem, derived, derived["resolved"]))

    def _round_cap(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        if any_true(derived["capped"]):
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
        if is_sync_free():  # every row votes; the rows asked for with an empty pool take it
            fallback = slot_vote_table(obs.answer, _kept(obs.status, obs.answer))[0]
            return torch.where(rows & (obs.pool_winner < 0), fallback, obs.pool_winner)
        out = obs.pool_winner.clone()
        empty = (rows & (obs.pool_winner < 0)).nonzero().squeeze(1)
        if empty.numel():
            answer = obs.answer[empty]
            out[empty] = slot_vote_table(answer, _kept(obs.status[empty], answer))[0]
        return out


def _kept(status: Tensor, answer: Tensor) -> Tensor:
    """[E,B] branches not abandoned that hold an answer (the fallback vote of §5.5)."""
    return ((status == ACTIVE) | (status == FINISHED)) & (answer >= 0)
