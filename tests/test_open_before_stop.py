"""The `open_before_stop` guard: no controller, rule program or policy, answers before reading a branch.

A stop before any branch is open would answer with nothing at 0 tokens (a smoke run on a
random tiny model once exported such a policy). Every rule engine ends with the guard;
the online runtime runs the same engine (tests/test_online_agreement.py checks both paths
give the same traces for these controllers).
"""

from __future__ import annotations

import os

import pytest
import torch

from autotts.controllers.baselines import BASELINES, make_baseline
from autotts.controllers.learned import policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights, unflatten
from autotts.controllers.rules import Decision, Rule, RuleEngine, RuleProgram, default_answer
from autotts.env.episodes import reference_episodes
from autotts.env.rollout import rollout
from autotts.env.state import Observation
from autotts.evaluate.trace import TraceRecorder
from autotts.store import load_store

GUARD = "guard:open_before_stop"


class EagerStop(RuleProgram):
    """Stops at once, every round, with the default answer (nothing open at round 0: no answer)."""

    slots = 8

    def __init__(self):
        self.rules = (Rule("eager_stop", self._stop),)

    def _stop(self, obs: Observation, mem, derived, d: Decision) -> None:
        d.set_stop(~obs.done, default_answer(obs))


def stop_head_weights(shape: PolicyShape = PolicyShape()) -> torch.Tensor:
    """A policy whose stop head fires in every state (a >> b) and whose open head never does."""
    flat = initial_weights(shape, seed=3)
    w = unflatten(flat, shape)
    w["w_ep"][:, :4].zero_()
    w["g_ep"].zero_()
    w["b_ep"][:4] = torch.tensor([10.0, -10.0, -10.0, 10.0])  # stop: yes; open: no
    return flat


def eager_controller(kind: str):
    """The two controllers that want to stop before opening, by name (shared with the agreement test)."""
    if kind == "eager":
        return RuleEngine(EagerStop())
    return policy_controller(stop_head_weights())


@pytest.fixture(scope="module")
def store():
    return load_store("synthetic:questions=6,branches=16,seed=4")


@pytest.mark.parametrize("kind", ["eager", "stop_head"])
def test_a_controller_that_stops_at_round_0_reads_one_branch_and_answers(store, kind) -> None:
    episodes = reference_episodes(store, seeds=3)
    recorder = TraceRecorder(store, episodes, range(len(episodes)))
    result = rollout(store, episodes, eager_controller(kind), recorder=recorder)
    assert bool((result.tokens > 0).all()) and bool((result.answer >= 0).all())
    assert bool((result.opened == 1).all())
    first = [r for r in recorder.records if r["round"] == 0]
    assert len(first) == len(episodes)
    assert all(not r["stop"] and r["open"] == 1 and r["open_by"] == GUARD for r in first)
    # the one branch was read to its end: the answer is its final answer, at its full length
    q, slot0 = episodes.question, episodes.order[:, 0]
    assert torch.equal(result.tokens, store.length[q, slot0])
    assert torch.equal(result.answer, store.final[q, slot0])
    later = [r for r in recorder.records if r["round"] == 1]
    assert all(r["stop"] and r["stop_by"] != GUARD for r in later)


def test_the_guard_leaves_a_stop_after_an_open_alone(store) -> None:
    """Stops in later rounds, and episodes with nothing to open, are not the guard's business."""
    engine = RuleEngine(EagerStop())
    episodes = reference_episodes(store, seeds=1)
    episodes = type(episodes)(episodes.question, episodes.order, torch.zeros_like(episodes.n_avail), episodes.seed)
    result = rollout(store, episodes, engine)
    assert bool((result.rounds == 0).all()) and bool((result.tokens == 0).all())


@pytest.mark.skipif(not os.environ.get("AUTOTTS_DATA"), reason="needs the public stores (AUTOTTS_DATA)")
def test_baselines_never_reach_the_guard() -> None:
    """Baselines open before they stop on their own: the guard never decides (fidelity stays exact)."""
    store = load_store("Qwen3-0.6B/aime25")
    episodes = reference_episodes(store, seeds=2)
    for name, (_, _, knobs) in BASELINES.items():
        for knob in (knobs[0], knobs[-1]):
            recorder = TraceRecorder(store, episodes, range(len(episodes)))
            rollout(store, episodes, make_baseline(name, knob), recorder=recorder)
            decided = {r["open_by"] for r in recorder.records} | {r["stop_by"] for r in recorder.records}
            assert GUARD not in decided, (name, knob)
