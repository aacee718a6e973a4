"""Parallel-Probe (spec §4): a fixed cohort probed in lockstep, pruning off-track branches,
stopping when the majority has been stable for T rounds.

Env rounds map onto the spec's loop as: open the cohort; forward; then each
observation evaluates the round just forwarded (winner, off-track, prune,
termination) and, unless it stops, prunes and forwards the next round. The cohort
size (the swept knob) may be one value per episode (`knobs`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from autotts.controllers.baselines.knobs import Knob, as_knob, knob_max, knob_rows
from autotts.controllers.rules import Decision, Rule, RuleProgram
from autotts.controllers.vote import slot_winner
from autotts.env.fastops import any_true, equal, flat_nonzero, is_sync_free, row_count, rows_and
from autotts.env.state import ACTIVE, FINISHED, Observation

OPEN, FIRST_FORWARD, EVALUATE = 0, 1, 2


class ParallelProbe(RuleProgram):
    """Parallel-Probe with the reference's parameters (K, eps_inter, eps_intra are unused there too)."""

    def __init__(self, num_chains: Knob = 64, T: int = 14, prune_patience: int = 8, warm_up: int = 10,
                 probe_burst: int = 1, max_steps: int = 100):
        self.num_chains, self.T, self.patience = as_knob(num_chains, torch.long), int(T), int(prune_patience)
        self.warm_up, self.burst, self.max_steps = int(warm_up), int(probe_burst), int(max_steps)
        self.slots = max(knob_max(self.num_chains), 1)
        self.rules = (
            Rule("open_cohort", self._open_cohort),
            Rule("nothing_opened", self._nothing_opened),
            Rule("no_active", self._no_active),
            Rule("stable_winner", self._stable),
            Rule("all_resolved", self._all_resolved),
            Rule("max_steps", self._max_steps),
            Rule("prune_off_track", self._prune),
            Rule("forward", self._forward),
        )

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        e, b, dev = obs.num_episodes, obs.slots, obs.status.device
        zeros = torch.zeros(e, dtype=torch.long, device=dev)
        return {"phase": zeros.clone(), "step": zeros.clone(), "stable": zeros.clone(), "prev": zeros - 1,
                "off": torch.zeros((e, b), dtype=torch.int16, device=dev),  # <= max_steps
                "chains": knob_rows(self.num_chains, e, dev)}

    def update(self, obs: Observation, mem: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
        evaluate = mem["phase"] == EVALUATE
        unfinished = equal(obs.status, ACTIVE)
        active = unfinished | equal(obs.status, FINISHED)
        winner = slot_winner(obs.answer, active)
        n_active = row_count(active)
        guard = evaluate & (mem["step"] >= self.warm_up) & (n_active > 1)
        off, prune = mem["off"], None
        if any_true(guard):  # off-track counters stay 0 through warm-up
            off, prune = self._off_track(obs, off, rows_and(unfinished, guard), winner)
        left = unfinished
        if prune is not None and any_true(prune):
            winner = self._revote(obs, active & ~prune, prune, winner)
            left = unfinished & ~prune
        else:
            prune = None
        stable = torch.where(winner == mem["prev"], mem["stable"] + 1, 0)
        derived = {"evaluate": evaluate, "winner": winner, "prune": prune, "no_active": n_active == 0,
                   "stable": stable, "left": row_count(left) > 0, "unfinished": unfinished}
        mem = dict(mem, off=off)
        mem["stable"] = torch.where(evaluate & (n_active > 0), stable, mem["stable"])
        mem["prev"] = torch.where(evaluate & (n_active > 0), winner, mem["prev"])
        return mem, derived

    def _off_track(self, obs: Observation, off: Tensor, counting: Tensor, winner: Tensor) -> tuple[Tensor, Tensor]:
        """Counted branches: off-track +1 if their answer is not the winner, else 0; those at patience are pruned."""
        agree = equal(obs.answer, winner[:, None])
        # where(counting, where(agree, 0, off + 1), off), as arithmetic: torch.where is slow on [E,B] on CPU.
        off = (off + counting) * ~(counting & agree)
        return off, counting & (off >= self.patience)

    @staticmethod
    def _revote(obs: Observation, kept: Tensor, prune: Tensor, winner: Tensor) -> Tensor:
        """The winner over the branches that survive this round's prunes, recomputed only where some were pruned."""
        if is_sync_free():
            return torch.where(row_count(prune) > 0, slot_winner(obs.answer, kept), winner)
        rows = flat_nonzero(row_count(prune) > 0)
        rewon = slot_winner(obs.answer.index_select(0, rows), kept.index_select(0, rows))
        return winner.index_copy(0, rows, rewon)

    def commit(self, obs: Observation, mem: dict[str, Tensor], derived: dict, d: Decision) -> dict[str, Tensor]:
        phase = mem["phase"]
        step = torch.where(phase == EVALUATE, mem["step"] + 1, mem["step"])
        return dict(mem, phase=(phase + 1).clamp(max=EVALUATE), step=step)

    def _open_cohort(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_open(mem["phase"] == OPEN, mem["chains"])

    # Rules whose condition almost never holds check it first: a no-op set_stop still costs several ops.
    def _nothing_opened(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        nothing = (mem["phase"] == FIRST_FORWARD) & (obs.n_open == 0)
        if any_true(nothing):
            d.set_stop(nothing, torch.full_like(obs.n_open, -1))

    def _no_active(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        if any_true(derived["no_active"]):
            d.set_stop(derived["evaluate"] & derived["no_active"], mem["prev"])

    def _stable(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop(derived["evaluate"] & (derived["stable"] >= self.T), derived["winner"])

    def _all_resolved(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop(derived["evaluate"] & ~derived["left"], derived["winner"])

    def _max_steps(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        capped = derived["evaluate"] & (mem["step"] + 1 >= self.max_steps)
        if any_true(capped):
            d.set_stop(capped, derived["winner"])

    def _prune(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        if derived["prune"] is not None:
            d.set_branch(derived["prune"], prune=True)

    def _forward(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_branch(rows_and(derived["unfinished"], mem["phase"] != OPEN), advance=self.burst)
