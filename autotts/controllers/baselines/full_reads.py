"""SC@N, ASC and ESC: controllers that read whole branches one after another (spec §1b, §2, §3).

Full reads finish at once, so the completed-branch vote in slot order is the
vote in read order the spec asks for. The swept knob (N, max_samples) may be
one value per episode (`knobs`): a whole sweep is then one rollout.
"""

from __future__ import annotations

from typing import Any

import torch

from autotts.controllers.baselines.knobs import Knob, as_knob, knob_max, knob_min, knob_rows
from autotts.controllers.rules import Decision, Rule, RuleProgram, completed_vote
from autotts.controllers.vote import beta_confidence
from autotts.env.state import Observation


def _ran_out(obs: Observation) -> torch.Tensor:
    return obs.n_open >= obs.n_avail


class SelfConsistency(RuleProgram):
    """SC@N: read N branches fully, answer their ordered majority."""

    def __init__(self, n: Knob = 64):
        self.n = as_knob(n, torch.long)
        self.slots = knob_max(self.n)
        self.rules = (Rule("majority_of_n", self._majority), Rule("read_n", self._read))

    def init(self, obs: Observation, context: dict | None = None) -> dict:
        return {"n": knob_rows(self.n, obs.num_episodes, obs.status.device)}

    def _majority(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        finished = (obs.n_open >= mem["n"]) | _ran_out(obs)
        d.set_stop(finished, completed_vote(obs)[0])

    def _read(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_open(torch.ones_like(obs.done), mem["n"] - obs.n_open, full_read=True)


class AdaptiveConsistency(RuleProgram):
    """ASC: one full read per round; stop once the Beta-majority confidence exceeds `threshold`."""

    def __init__(self, max_samples: Knob = 40, threshold: float = 0.95):
        self.max_samples, self.threshold = as_knob(max_samples, torch.long), float(threshold)
        self.slots = max(knob_max(self.max_samples), 1)
        self.rules = (Rule("confident", self._confident), Rule("max_samples", self._exhausted),
                      Rule("read_next", self._read))

    def init(self, obs: Observation, context: dict | None = None) -> dict:
        return {"max_samples": knob_rows(self.max_samples, obs.num_episodes, obs.status.device)}

    def update(self, obs: Observation, memory: Any) -> tuple[Any, dict]:
        winner, top1, top2 = completed_vote(obs)
        return memory, {"winner": winner, "conf": beta_confidence(top1, top2, obs.slots)}

    def _confident(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop((obs.n_open >= 2) & (derived["conf"] > self.threshold), derived["winner"])

    def _exhausted(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop((obs.n_open >= mem["max_samples"]) | _ran_out(obs), derived["winner"])

    def _read(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_open(torch.ones_like(obs.done), 1, full_read=True)


class EarlyStoppingConsistency(RuleProgram):
    """ESC: read windows of `window` branches; stop when one window is unanimous."""

    def __init__(self, max_samples: Knob = 32, window: int = 5):
        self.max_samples, self.window = as_knob(max_samples, torch.long), int(window)
        if knob_min(self.max_samples) < 1 or self.window < 1:
            raise ValueError("ESC needs max_samples >= 1 and window >= 1")
        self.windows = self.max_samples // self.window
        self.slots = max(knob_max(self.windows) * self.window, 1)
        self.rules = (Rule("window_unanimous", self._unanimous), Rule("windows_done", self._exhausted),
                      Rule("read_window", self._read))

    def init(self, obs: Observation, context: dict | None = None) -> dict:
        return {"reads": knob_rows(self.windows * self.window, obs.num_episodes, obs.status.device)}

    def _unanimous(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        start = ((obs.n_open - 1).clamp(min=0) // self.window) * self.window
        slot = torch.arange(obs.slots, device=obs.n_open.device)[None, :]
        in_window = (slot >= start[:, None]) & (slot < obs.n_open[:, None])
        big = torch.iinfo(obs.answer.dtype).max
        lo = torch.where(in_window, obs.answer, big).min(1).values
        hi = torch.where(in_window, obs.answer, -1).max(1).values
        d.set_stop((obs.n_open > 0) & (lo == hi), hi)

    def _exhausted(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_stop((obs.n_open >= mem["reads"]) | _ran_out(obs), completed_vote(obs)[0])

    def _read(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        # A whole window, never past the reads budget: the same as `window` for every knob >= window,
        # and 0 below it (so the engine's open_before_stop reads one branch, whatever the slot width).
        d.set_open(torch.ones_like(obs.done), (mem["reads"] - obs.n_open).clamp(0, self.window), full_read=True)
