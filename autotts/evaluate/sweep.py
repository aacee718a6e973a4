"""Knob sweeps on one store: every setting's figures plus per-question means for the bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from autotts.controllers.baselines import BASELINES
from autotts.env.episodes import Episodes
from autotts.env.rollout import Rollout
from autotts.evaluate.bootstrap import question_means
from autotts.evaluate.metrics import figures
from autotts.evaluate.runner import evaluate
from autotts.store.replay_store import ReplayStore

# Tokens are reported relative to this setting: self-consistency over 64 full reads.
ANCHOR = ("sc", 64.0)

_LABELS = {"sc": "SC@N", "asc": "ASC", "esc": "ESC", "parallel_probe": "Parallel-Probe", "cmc": "CMC"}


@dataclass(frozen=True)
class SettingResult:
    """One (method, knob) on one store: reference-exact figures and per-question means [Q]."""

    method: str
    knob: float | None
    accuracy: float
    tokens: float
    episodes: int
    wall_s: float
    question_accuracy: np.ndarray
    question_tokens: np.ndarray

    @staticmethod
    def from_rollout(method: str, knob: float | None, result: Rollout, episodes: Episodes,
                     wall_s: float = 0.0) -> "SettingResult":
        fig = figures(result, episodes)
        return SettingResult(method=method, knob=knob, accuracy=fig.accuracy, tokens=fig.tokens,
                             episodes=fig.episodes, wall_s=wall_s,
                             question_accuracy=100.0 * question_means(result.correct, episodes),
                             question_tokens=question_means(result.tokens, episodes))


def method_label(method: str) -> str:
    """Display name of a method: baselines by their paper names, exported controllers by directory name."""
    return _LABELS.get(method) or Path(method.rstrip("/")).name or method


def setting_label(method: str, knob: float | None) -> str:
    if knob is None:
        return method_label(method)
    if method == "sc":
        return f"SC@{knob:g}"
    if method in BASELINES and method != "cmc":
        return f"{method_label(method)} ({knob:g})"
    return f"{method_label(method)} β={knob:g}"


def is_baseline(method: str) -> bool:
    return method in BASELINES


def run_sweep(store: ReplayStore, episodes: Episodes, plan: Sequence[tuple[str, Sequence[float] | None]],
              progress: Callable[[SettingResult], None] | None = None) -> list[SettingResult]:
    """Evaluate every (method, knob values) of `plan`; None values mean the method's default sweep."""
    from autotts.evaluate.cli_eval import controller_settings
    out = []
    for name, values in plan:
        values = list(values) if values is not None else None
        for ctrl, knob, beta in controller_settings(name, values, values):
            result, wall = evaluate(store, episodes, ctrl)
            value = knob if beta is None else beta
            res = SettingResult.from_rollout(name, None if value is None else float(value), result, episodes, wall)
            out.append(res)
            if progress is not None:
                progress(res)
    return out


__all__ = ["ANCHOR", "SettingResult", "is_baseline", "method_label", "run_sweep", "setting_label"]
