"""Run one controller setting on one (question, seed) episode of a protocol and record its trace."""

from __future__ import annotations

from typing import Any

from autotts.controllers.baselines import BASELINES
from autotts.env.episodes import Episodes
from autotts.errors import AutottsError
from autotts.store.replay_store import ReplayStore


def single_episode(store: ReplayStore, question: int, seed: int, protocol: str = "reference",
                   subset_size: int = 64) -> Episodes:
    """The episode (question, seed) exactly as the full protocol builds it (same branch order)."""
    from autotts.evaluate.runner import protocol_episodes
    if not 0 <= question < store.num_questions:
        raise AutottsError(f"--question {question}: {store.name} has questions 0..{store.num_questions - 1}")
    if seed < 0:
        raise AutottsError(f"--seed {seed}: expected a non-negative shuffle seed")
    episodes = protocol_episodes(store, protocol, seeds=seed + 1, subset_size=subset_size)
    return episodes.select(((episodes.question == question) & (episodes.seed == seed)).nonzero().squeeze(1))


def one_setting(name: str, knob: float | None = None, beta: float | None = None) -> tuple[Any, float | None]:
    """(controller, knob/β) for a single setting; without one, the middle of the default sweep."""
    from autotts.evaluate.cli_eval import controller_settings
    value = beta if beta is not None else knob
    if value is None and name in BASELINES:
        sweep = BASELINES[name][2]
        value = sweep[len(sweep) // 2]
    settings = list(controller_settings(name, None if value is None else [value], None if value is None else [value]))
    ctrl, k, b = settings[len(settings) // 2]
    return ctrl, (k if b is None else b)


def trace_episode(store_spec: str, question: int, seed: int, controller: str, knob: float | None = None,
                  beta: float | None = None, protocol: str = "reference", subset_size: int = 64
                  ) -> tuple[list[dict], str]:
    """Trace records of one episode and a one-line label naming store, question, seed and setting."""
    from autotts.evaluate.runner import evaluate
    from autotts.evaluate.sweep import setting_label
    from autotts.evaluate.trace import TraceRecorder
    from autotts.store import load_store
    store = load_store(store_spec)
    episode = single_episode(store, question, seed, protocol, subset_size)
    ctrl, value = one_setting(controller, knob, beta)
    recorder = TraceRecorder(store, episode, [0])
    evaluate(store, episode, ctrl, recorder=recorder)
    label = f"{store.name} · question {question} · seed {seed} · {setting_label(controller, value)}"
    return recorder.records, label


__all__ = ["one_setting", "single_episode", "trace_episode"]
