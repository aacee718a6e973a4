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

ALGORITHMS = ("pgpe", "snes", "cmaes", "ga")


class Evaluator:
    """The problem's objective function: scores [P, D] on the batch bound for this generation."""

    def __init__(self) -> None:
        self.objective: Any = None
        self.batch: Any = None
        self.last: dict[str, Tensor] = {}

    def bind(self, objective: Any, batch: Any) -> None:
        self.objective, self.batch = objective, batch

    def __call__(self, weights: Tensor) -> Tensor:
        fitness, self.last = self.objective(weights, self.batch)
        return fitness.to(weights.device)

    def __getstate__(self) -> dict:
        return {}  # the objective (stores) is rebuilt from config on resume, not pickled

    def __setstate__(self, state: dict) -> None:
        self.__init__()


@dataclass
class SearchConfig:
    algorithm: str = "pgpe"
    popsize: int = 16
    stdev_init: float = 0.1
    center_lr: float = 0.05
    stdev_lr: float = 0.1
    stdev_min: float = 0.01
    mutation_stdev: float = 0.05     # GA
    tournament_size: int = 4         # GA
    extra: dict = field(default_factory=dict)


def make_searcher(cfg: SearchConfig, center: Tensor, seed: int, device: str | torch.device = "cpu") -> Any:
    """An EvoTorch searcher for `cfg.algorithm`, centred on `center` (the initial weights)."""
    from evotorch import Problem
    from evotorch.algorithms import CMAES, PGPE, SNES, GeneticAlgorithm
    from evotorch.operators import GaussianMutation, SimulatedBinaryCrossOver

    if cfg.algorithm not in ALGORITHMS:
        raise AutottsError(f"search.algorithm={cfg.algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    center = center.detach().float().to(device)
    spread = float(cfg.stdev_init)
    problem = Problem("max", Evaluator(), solution_length=center.numel(), vectorized=True, seed=seed, device=device,
                      initial_bounds=((center - spread).tolist(), (center + spread).tolist()))
    if cfg.algorithm == "pgpe":
        return PGPE(problem, popsize=cfg.popsize, center_init=center, stdev_init=cfg.stdev_init,
                    center_learning_rate=cfg.center_lr, stdev_learning_rate=cfg.stdev_lr, stdev_min=cfg.stdev_min,
                    optimizer="clipup", ranking_method="centered", **cfg.extra)
    if cfg.algorithm == "snes":
        return SNES(problem, popsize=cfg.popsize, center_init=center, stdev_init=cfg.stdev_init,
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
    """The search distribution's centre (GA: its best individual so far)."""
    status = searcher.status
    if "center" in status:
        return status["center"].detach().clone()
    return status["best"].values.detach().clone() if hasattr(status["best"], "values") else status["best"].clone()


def stdev_of(searcher: Any) -> float:
    status = searcher.status
    return float(status["stdev"].mean()) if "stdev" in status else float("nan")


def save_searcher(searcher: Any) -> bytes:
    return pickle.dumps(searcher)


def load_searcher(blob: bytes) -> Any:
    return pickle.loads(blob)  # noqa: S301 -- our own checkpoint
