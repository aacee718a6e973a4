"""Knob sweeps on one store: every setting's figures plus per-question means for the bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from autotts.controllers.baselines import BASELINES
from autotts.env.episodes import Episodes
from autotts.env.rollout import Rollout
from autotts.errors import AutottsError
from autotts.evaluate.bootstrap import question_means
from autotts.evaluate.metrics import figures
from autotts.store.replay_store import ReplayStore

RESULTS_FORMAT = "autotts-report-results/1"

# Tokens are reported relative to this setting: self-consistency over 64 full reads.
ANCHOR = ("sc", 64.0)

_LABELS = {"sc": "SC@N", "asc": "ASC", "esc": "ESC", "parallel_probe": "Parallel-Probe", "cmc": "CMC"}


@dataclass(frozen=True)
class SettingResult:
    """One (method, knob) on one store: reference-exact figures and per-question means [Q].

    seq_tokens: mean sequential tokens per question (the critical path; NaN in results files older than it).
    """

    method: str
    knob: float | None
    accuracy: float
    tokens: float
    episodes: int
    wall_s: float
    question_accuracy: np.ndarray
    question_tokens: np.ndarray
    seq_tokens: float = float("nan")

    @staticmethod
    def from_rollout(method: str, knob: float | None, result: Rollout, episodes: Episodes,
                     wall_s: float = 0.0) -> "SettingResult":
        fig = figures(result, episodes)
        return SettingResult(method=method, knob=knob, accuracy=fig.accuracy, tokens=fig.tokens,
                             episodes=fig.episodes, wall_s=wall_s,
                             question_accuracy=100.0 * question_means(result.correct, episodes),
                             question_tokens=question_means(result.tokens, episodes), seq_tokens=fig.seq_tokens)


@dataclass(frozen=True)
class StoreResults:
    """Every setting evaluated on one store: what `results.json` keeps so a report can be redrawn."""

    store: str
    model: str
    dataset: str
    results: list[SettingResult]


def results_to_json(stores: Sequence[StoreResults], meta: dict[str, Any]) -> dict[str, Any]:
    return {"format": RESULTS_FORMAT, **meta, "stores": [
        {"store": s.store, "model": s.model, "dataset": s.dataset, "settings": [
            {"method": r.method, "knob": r.knob, "accuracy": r.accuracy, "tokens": r.tokens, "seq_tokens": r.seq_tokens,
             "episodes": r.episodes,
             "wall_s": r.wall_s, "question_accuracy": r.question_accuracy.tolist(),
             "question_tokens": r.question_tokens.tolist()} for r in s.results]} for s in stores]}


def results_from_json(data: Any, path: str) -> tuple[list[StoreResults], dict[str, Any]]:
    """Inverse of `results_to_json`; a malformed file raises one line naming the file and the field."""
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise AutottsError(f"{path}: not an autotts results file (expected \"format\": \"{RESULTS_FORMAT}\")")
    stores = []
    for i, s in enumerate(data.get("stores") or []):
        try:
            results = [SettingResult(r["method"], r["knob"], float(r["accuracy"]), float(r["tokens"]),
                                     int(r["episodes"]), float(r["wall_s"]), np.asarray(r["question_accuracy"], float),
                                     np.asarray(r["question_tokens"], float), float(r.get("seq_tokens", "nan")))
                       for r in s["settings"]]
            stores.append(StoreResults(s["store"], s["model"], s["dataset"], results))
        except (KeyError, TypeError, ValueError) as err:
            raise AutottsError(f"{path}: stores[{i}]: missing or malformed field ({err})") from None
    if not stores:
        raise AutottsError(f"{path}: field 'stores': expected at least one store")
    return stores, {k: v for k, v in data.items() if k not in ("format", "stores")}


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
              progress: Callable[[SettingResult], None] | None = None, workers: int = 1) -> list[SettingResult]:
    """Evaluate every (method, knob values) of `plan`; None values mean the method's default sweep.

    A method's settings run folded into one rollout where that pays, and the
    rollouts over `workers` processes (`autotts.evaluate.folded.plan_rollouts`).
    """
    from autotts.evaluate.cli_eval import setting_values
    from autotts.evaluate.folded import plan_rollouts
    methods = []
    for name, values in plan:
        values = list(values) if values is not None else None
        settings, _, loaded = setting_values(name, values, values)
        methods.append((name, settings, loaded))
    out = []
    for name, value, result, wall in plan_rollouts(store, episodes, methods, workers=workers):
        res = SettingResult.from_rollout(name, float(value), result, episodes, wall)
        out.append(res)
        if progress is not None:
            progress(res)
    return out


__all__ = ["ANCHOR", "SettingResult", "StoreResults", "is_baseline", "method_label", "results_from_json",
           "results_to_json", "run_sweep", "setting_label"]
