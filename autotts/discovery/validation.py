"""Validation of one weight vector on held-out stores: a β grid under an evaluation protocol.

The score is the search objective's own fitness (`objective.fitness_of`): accuracy
minus λ(β)·tokens/SC@64 tokens, averaged over the β grid and the stores, minus
the monotone penalty -- so "best validated" means best by the quantity the search
optimises, measured on episodes it never saw. Each result also carries the knob
rule's verdict on its sweep (`autotts.discovery.knob`): a generation that breaks
it is exported only if no validated one keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from autotts.controllers.learned import ActionSpec, GuardSpec, policy_controller
from autotts.controllers.policy import PolicyShape
from autotts.discovery.knob import KNOB_TOLERANCE, knob_rule, unique_name
from autotts.discovery.objective import ObjectiveConfig, fitness_of, frontier_of, sc64_tokens
from autotts.env.episodes import concat_episodes
from autotts.env.rollout import rollout
from autotts.evaluate.metrics import figures
from autotts.evaluate.runner import protocol_episodes
from autotts.store.replay_store import ReplayStore


@dataclass(frozen=True)
class ValidationConfig:
    betas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    seeds: int = 3
    protocol: str = "reference"


@dataclass(frozen=True)
class Sweep:
    """Accuracy (percent) and mean tokens of one store at each β of a grid."""

    store: str
    betas: tuple[float, ...]
    accuracy: tuple[float, ...]
    tokens: tuple[float, ...]


def beta_sweep(weights: Tensor, store: ReplayStore, betas: Sequence[float], seeds: int, shape: PolicyShape,
               spec: ActionSpec, guards: Sequence[GuardSpec], protocol: str = "reference", step_mode: str = "auto"
               ) -> Sweep:
    """One rollout of every β x protocol episode of `store` with a single policy (weights [D])."""
    ctrl = policy_controller(weights.detach().to(store.device), shape, spec, tuple(guards))
    return controller_sweep(ctrl, store, betas, seeds, protocol, step_mode)


def controller_sweep(ctrl, store: ReplayStore, betas: Sequence[float], seeds: int, protocol: str = "reference",
                     step_mode: str = "auto") -> Sweep:
    """`beta_sweep` of any controller taking a per-episode ``beta`` context (e.g. an export with a β map)."""
    return _folded_sweep(store, betas, seeds, protocol, lambda beta: (ctrl, {"beta": beta}), step_mode)


def cmc_sweep(store: ReplayStore, betas: Sequence[float], seeds: int, protocol: str = "reference",
              step_mode: str = "auto") -> Sweep:
    """`beta_sweep` of CMC (its β per episode): the teacher the export's switch compares with."""
    from autotts.controllers.baselines import make_baseline

    return _folded_sweep(store, betas, seeds, protocol, lambda beta: (make_baseline("cmc", beta.double()), None),
                         step_mode)


def _folded_sweep(store: ReplayStore, betas: Sequence[float], seeds: int, protocol: str, make, step_mode: str
                  ) -> Sweep:
    """Every β x protocol episode in one rollout; `make(per-row β)` gives (controller, context)."""
    episodes = protocol_episodes(store, protocol, seeds)
    n = len(episodes)
    ctrl, context = make(torch.tensor([float(b) for b in betas]).repeat_interleave(n))
    result = rollout(store, concat_episodes([episodes] * len(betas)), ctrl, context=context, step_mode=step_mode)
    acc, tok = [], []
    for part in result.split(len(betas)):
        fig = figures(part, episodes)
        acc.append(fig.accuracy)
        tok.append(fig.tokens)
    return Sweep(store.name, tuple(float(b) for b in betas), tuple(acc), tuple(tok))


def sweeps_knob(betas: Sequence[float], sweeps: Sequence[Sweep], splits: Sequence[str] | None = None,
                tolerance: float = KNOB_TOLERANCE) -> dict:
    """`knob_rule` on β-sweeps, each store named by `unique_name` in order; `splits` parallel to `sweeps`."""
    named: dict = {}
    split_by_name = {}
    for i, sweep in enumerate(sweeps):
        name = unique_name(named, sweep.store)
        named[name] = {"tokens": sweep.tokens, "accuracy": sweep.accuracy}
        split_by_name[name] = splits[i] if splits is not None else "all"
    return knob_rule(betas, named, split_by_name, tolerance)


@dataclass(frozen=True)
class ValidationResult:
    score: float
    monotone_drop: float
    sweeps: tuple[Sweep, ...]
    knob: dict | None = None    # knob_rule on the sweeps (None: not checked)

    @property
    def knob_holds(self) -> bool:
        return self.knob is None or bool(self.knob["holds"])

    def rows(self) -> list[dict]:
        """One row per (store, β): the β-sweep table."""
        return [{"store": s.store, "beta": b, "accuracy": a, "tokens": t}
                for s in self.sweeps for b, a, t in zip(s.betas, s.accuracy, s.tokens)]

    def curve(self) -> list[dict]:
        """Mean accuracy and tokens over stores at each β (the validation accuracy-token curve)."""
        out = []
        for i, beta in enumerate(self.sweeps[0].betas):
            out.append({"beta": beta, "accuracy": sum(s.accuracy[i] for s in self.sweeps) / len(self.sweeps),
                        "tokens": sum(s.tokens[i] for s in self.sweeps) / len(self.sweeps)})
        return out


class Validator:
    """Scores weight vectors on the validation stores (SC@64 token units computed once)."""

    def __init__(self, stores: list[ReplayStore], cfg: ValidationConfig, objective: ObjectiveConfig,
                 shape: PolicyShape, spec: ActionSpec, guards: Sequence[GuardSpec],
                 device: torch.device | str = "cpu", splits: Sequence[str] | None = None, step_mode: str = "auto"):
        self.stores = [s.to(device) for s in stores]
        self.splits = list(splits) if splits is not None else ["all"] * len(stores)
        self.step_mode = step_mode
        self.cfg, self.objective, self.shape, self.spec, self.guards = cfg, objective, shape, spec, tuple(guards)
        self.sc64 = torch.tensor([sc64_tokens(s) for s in self.stores], dtype=torch.float64)
        self.frontier = frontier_of(objective, self.stores, spec.slots, self.sc64)

    def __call__(self, weights: Tensor) -> ValidationResult:
        sweeps = tuple(beta_sweep(weights, s, self.cfg.betas, self.cfg.seeds, self.shape, self.spec, self.guards,
                                  self.cfg.protocol, self.step_mode) for s in self.stores)
        acc = torch.tensor([s.accuracy for s in sweeps], dtype=torch.float64).T[None] / 100  # [1, nb, S]
        rel = torch.tensor([s.tokens for s in sweeps], dtype=torch.float64).T[None] / self.sc64
        fitness, drop = fitness_of(self.objective, acc, rel, torch.tensor(self.cfg.betas), self.frontier)
        return ValidationResult(float(fitness[0]), float(drop[0]), sweeps, self.knob(sweeps))

    def knob(self, sweeps: Sequence[Sweep]) -> dict | None:
        """The knob rule on the validation sweeps (None when the grid is not ascending)."""
        betas = list(self.cfg.betas)
        if len(betas) < 2 or betas != sorted(betas):
            return None
        return sweeps_knob(betas, sweeps, self.splits)
