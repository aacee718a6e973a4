"""The `advance_when_held` guard: a round in which a policy would hold every branch, open none and not stop
advances the active branches instead (such a round reveals nothing; it only counts toward `max_rounds`).

The CMC imitation start of the math preset ended about 40% of its β = 0 episodes that way, at round 100,
with two branches unread (docs/discovery_diagnosis.md).
"""

from __future__ import annotations

import pytest
import torch

from autotts.controllers.learned import DEFAULT_GUARDS, GuardSpec, policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights, unflatten
from autotts.env.episodes import reference_episodes
from autotts.env.rollout import rollout
from autotts.evaluate.trace import TraceRecorder
from autotts.store import load_store

GUARD = "guard:advance_when_held"
WITH_GUARD = DEFAULT_GUARDS[:3] + (GuardSpec("advance_when_held", {}),) + DEFAULT_GUARDS[3:]


def holding_weights(shape: PolicyShape = PolicyShape()) -> torch.Tensor:
    """A policy that opens whenever it may, never stops, never prunes and never advances a branch."""
    flat = initial_weights(shape, seed=5)
    w = unflatten(flat, shape)
    for name in ("w_ep", "g_ep", "w_bx", "w_bh", "g_br"):
        w[name].zero_()
    w["b_ep"].copy_(torch.tensor([-10.0, 10.0, 10.0, -10.0, -10.0, 10.0]))   # stop: no; open: yes, one
    w["b_br"].copy_(torch.tensor([-10.0, 10.0, -10.0, 10.0, -10.0, 10.0]))   # prune, advance, fast: no
    return flat


@pytest.fixture(scope="module")
def store():
    return load_store("synthetic:questions=6,branches=16,seed=4")


def _run(store, guards):
    episodes = reference_episodes(store, seeds=2)
    recorder = TraceRecorder(store, episodes, range(len(episodes)))
    ctrl = policy_controller(holding_weights(), guards=guards)
    result = rollout(store, episodes, ctrl, recorder=recorder, context={"beta": torch.zeros(len(episodes))})
    return result, recorder.records


def _idle(records: list[dict]) -> int:
    """Rounds in which nothing opens, stops or moves (the trace lists only branches that changed)."""
    return sum(not r["stop"] and r["open"] == 0 and not r["branches"] for r in records)


def test_held_rounds_advance_the_active_branches_and_the_episodes_finish_their_reads(store) -> None:
    held, held_records = _run(store, DEFAULT_GUARDS)
    moved, records = _run(store, WITH_GUARD)
    assert bool((held.rounds == 100).all()) and _idle(held_records) > 0   # without the guard: idle to max_rounds
    assert bool((moved.rounds < 100).all()) and bool((moved.tokens > held.tokens).all())
    assert _idle(records) == 0
    by_guard = [b for r in records for b in r["branches"] if b["by"] == GUARD]
    assert by_guard and all(b["action"] == "advance 1" for b in by_guard)


def test_the_guard_leaves_rounds_in_which_the_policy_acts_alone(store) -> None:
    """While the policy still opens (width cap not reached), the guard decides nothing."""
    _, records = _run(store, WITH_GUARD)
    for r in records:
        if r["open"] > 0 and r["open_by"] != "guard:width_by_beta(4,32)":
            assert all(b["by"] != GUARD for b in r["branches"]), r
