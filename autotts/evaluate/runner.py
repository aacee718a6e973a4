"""Evaluate controllers on stores under a protocol: the engine behind `autotts eval` and reports."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from autotts.env.episodes import Episodes, reference_episodes, subset_episodes
from autotts.env.rollout import Recorder, Rollout, rollout
from autotts.errors import AutottsError
from autotts.evaluate.metrics import figures
from autotts.store.replay_store import ReplayStore

PROTOCOLS = ("reference", "subsets")


def protocol_episodes(store: ReplayStore, protocol: str = "reference", seeds: int | None = None,
                      subset_size: int = 64) -> Episodes:
    """Episodes of a named protocol (reference: 100 Python shuffles; subsets: 64 random 64-of-N subsets)."""
    if protocol == "reference":
        return reference_episodes(store, seeds=100 if seeds is None else seeds)
    if protocol == "subsets":
        return subset_episodes(store, seeds=64 if seeds is None else seeds, k=subset_size)
    raise AutottsError(f"unknown protocol '{protocol}' (expected one of {', '.join(PROTOCOLS)})")


@dataclass(frozen=True)
class EvalRow:
    """One line of `autotts eval --json`."""

    store: str
    model: str
    dataset: str
    controller: str
    knob: float | None
    beta: float | None
    accuracy: float
    tokens: float
    seq_tokens: float
    episodes: int
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        return {k: v for k, v in row.items() if not (k in ("knob", "beta") and v is None)}


def evaluate(store: ReplayStore, episodes: Episodes, controller: Any, context: dict | None = None,
             recorder: Recorder | None = None, step_mode: str = "auto") -> tuple[Rollout, float]:
    """Roll the controller out on all episodes; returns the rollout and the wall time of the rollout alone."""
    start = time.perf_counter()
    result = rollout(store, episodes, controller, context=context, recorder=recorder, step_mode=step_mode)
    if result.tokens.is_cuda:
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def eval_row(store: ReplayStore, episodes: Episodes, name: str, result: Rollout, wall: float,
             knob: float | None = None, beta: float | None = None) -> EvalRow:
    fig = figures(result, episodes)
    return EvalRow(store=store.source or store.name, model=store.model, dataset=store.dataset, controller=name,
                   knob=knob, beta=beta, accuracy=fig.accuracy, tokens=fig.tokens, seq_tokens=fig.seq_tokens,
                   episodes=fig.episodes,
                   wall_s=round(wall, 4))
