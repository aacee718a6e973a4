"""Evolution strategies over flat policy weights, via EvoTorch, with checkpointable state.

The ES sees a vectorized problem: it asks for fitnesses of a whole population
[P, D] at once, which the `Objective` evaluates in one batched rollout. The
generation's common random numbers (episodes, β values) are bound before each
step. A searcher pickles whole (distribution, optimizer state, RNG), so a
checkpoint resumes to exactly the generation an uninterrupted run would make.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from autotts.errors import AutottsError

logging.getLogger("evotorch").setLevel(logging.WARNING)

ALGORITHMS = ("pgpe", "snes", "cmaes", "ga", "relaxed")  # relaxed: Adam, autotts.discovery.relaxed_search


class Evaluator:
    """The problem's objective function: scores [P, D] on the batch bound for this generation.

    With a subspace (`base`, `mask`), the ES searches only the masked weights;
    the rest stay at `base`.
    """

    def __init__(self, base: Tensor | None = None, mask: Tensor | None = None) -> None:
        self.base, self.mask = base, mask
        self.objective: Any = None
        self.batch: Any = None
        self.last: dict[str, Tensor] = {}

    def bind(self, objective: Any, batch: Any) -> None:
        self.objective, self.batch = objective, batch

    def full(self, x: Tensor) -> Tensor:
        """Full weight vectors [..., D] from searched coordinates [..., d]."""
        if self.mask is None:
            return x
        out = self.base.to(x.device).expand(*x.shape[:-1], -1).clone()
        out[..., self.mask.to(x.device)] = x
        return out

    def __call__(self, weights: Tensor) -> Tensor:
        fitness, self.last = self.objective(self.full(weights), self.batch)
        return fitness.to(weights.device)

    def __getstate__(self) -> dict:
        # the objective (stores) is rebuilt from config on resume, not pickled
        return {"base": self.base, "mask": self.mask}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state.get("base"), state.get("mask"))


@dataclass
class SearchConfig:
    algorithm: str = "pgpe"
    popsize: int = 16
    stdev_init: float = 0.1
    center_lr: float = 0.05
    stdev_lr: float = 0.1
    stdev_min: float = 0.01
    stdev_head: float | None = None  # spread of the head-level weights (PolicyShape.head_level); None = stdev_init
    subspace: str = "all"            # "all" weights, or only the "head" level ones (others fixed at the start)
    freeze: tuple = ()               # weights kept at the start ("g_br:prune", "g_ep"): PolicyShape.frozen
    mutation_stdev: float = 0.05     # GA
    tournament_size: int = 4         # GA
    extra: dict = field(default_factory=dict)
    num_actors: int = 0              # score the population over this many Ray actors (0 = in this process)
    ray_address: str | None = None   # Ray cluster to join ("auto", "host:port"); None = start a local one
    relaxed: dict = field(default_factory=dict)  # search.algorithm=relaxed: autotts.discovery.relaxed.RelaxedConfig
    restarts: int = 1                # the generations split in at most this many segments (whole validation
                                     # cycles), each from its own start


def restart_length(restarts: int, generations: int, validate_every: int) -> int:
    """Generations per restart segment: a whole number of validation cycles, so each segment's last centre
    is validated before the next segment replaces it."""
    cycles = -(-generations // (max(1, restarts) * validate_every))
    return max(1, cycles) * validate_every


def restart_seed(seed: int, k: int) -> int:
    """Restart k's seed (its imitation start and ES samples); restart 0 is the run's own seed."""
    return seed + 7919 * k


def make_searcher(cfg: SearchConfig, center: Tensor, seed: int, device: str | torch.device = "cpu",
                  head_level: Tensor | None = None, shape: Any = None) -> Any:
    """An EvoTorch searcher for `cfg.algorithm`, centred on `center` (the initial weights).

    With `head_level` (a mask) and `cfg.stdev_head`, those weights start with their own spread.
    `relaxed` is Adam on the relaxed objective instead (it needs the policy `shape`).
    """
    if cfg.algorithm == "relaxed":
        from autotts.discovery.relaxed_search import make_gradient_searcher
        return make_gradient_searcher(cfg, center, shape, device)
    from evotorch import Problem
    from evotorch.algorithms import CMAES, PGPE, SNES, GeneticAlgorithm
    from evotorch.operators import GaussianMutation, SimulatedBinaryCrossOver

    if cfg.algorithm not in ALGORITHMS:
        raise AutottsError(f"search.algorithm={cfg.algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    center = center.detach().float().to(device)
    if cfg.subspace not in ("all", "head"):
        raise AutottsError(f"search.subspace={cfg.subspace!r}: expected 'all' or 'head'")
    if cfg.subspace == "head" and head_level is None:
        raise AutottsError("search.subspace=head needs the policy's head-level mask")
    searched = head_level.bool().cpu() if cfg.subspace == "head" else torch.ones(center.numel(), dtype=torch.bool)
    if cfg.freeze:
        if shape is None:
            raise AutottsError("search.freeze needs the policy shape")
        searched = searched & ~shape.frozen(cfg.freeze)
    evaluator = Evaluator()
    if not bool(searched.all()):
        mask = searched.to(center.device)
        evaluator, center = Evaluator(center.clone(), mask), center[mask]
        head_level = head_level.bool().to(center.device)[mask] if head_level is not None else None
    spread = float(cfg.stdev_init)
    stdev: float | Tensor = cfg.stdev_init
    if head_level is not None and cfg.stdev_head is not None:
        stdev = torch.where(head_level.to(device), cfg.stdev_head, cfg.stdev_init).float()
        spread = max(spread, float(cfg.stdev_head))
    problem = Problem("max", evaluator, solution_length=center.numel(), vectorized=True, seed=seed, device=device,
                      initial_bounds=((center - spread).tolist(), (center + spread).tolist()))
    if cfg.algorithm == "pgpe":
        return PGPE(problem, popsize=cfg.popsize, center_init=center, stdev_init=stdev,
                    center_learning_rate=cfg.center_lr, stdev_learning_rate=cfg.stdev_lr, stdev_min=cfg.stdev_min,
                    optimizer="clipup", ranking_method="centered", **cfg.extra)
    if cfg.algorithm == "snes":
        return SNES(problem, popsize=cfg.popsize, center_init=center, stdev_init=stdev,
                    stdev_min=cfg.stdev_min, **cfg.extra)
    if cfg.algorithm == "cmaes":
        return CMAES(problem, popsize=cfg.popsize, center_init=center, stdev_init=cfg.stdev_init,
                     stdev_min=cfg.stdev_min, separable=True, **cfg.extra)
    return GeneticAlgorithm(problem, popsize=cfg.popsize, operators=[
        SimulatedBinaryCrossOver(problem, tournament_size=cfg.tournament_size, eta=8.0),
        GaussianMutation(problem, stdev=cfg.mutation_stdev)], **cfg.extra)


def evaluator_of(searcher: Any) -> Evaluator:
    return searcher.problem._objective_func  # noqa: SLF001 -- EvoTorch keeps the callable we passed


def center_of(searcher: Any) -> Tensor:
    """The search distribution's centre as full policy weights (GA: its best individual so far)."""
    status = searcher.status
    if "center" in status:
        x = status["center"].detach().clone()
    else:
        x = status["best"].values.detach().clone() if hasattr(status["best"], "values") else status["best"].clone()
    return evaluator_of(searcher).full(x)


def stdev_of(searcher: Any) -> float:
    status = searcher.status
    return float(status["stdev"].mean()) if "stdev" in status else float("nan")


def save_searcher(searcher: Any) -> bytes:
    return pickle.dumps(searcher)


def load_searcher(blob: bytes) -> Any:
    return pickle.loads(blob)  # noqa: S301 -- our own checkpoint
