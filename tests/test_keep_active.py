"""`keep_active(k, read)`: prunes that would leave fewer than k branches are cancelled; the kept ones read on."""

from __future__ import annotations

import pytest
import torch

from autotts.controllers.learned import ActionSpec, GuardSpec, policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights, unflatten
from autotts.controllers.rules import guard_problem
from autotts.env.episodes import reference_episodes
from autotts.env.rollout import rollout
from autotts.store.synthetic import synthetic_store


def _pruning_everything() -> torch.Tensor:
    """Neutral weights whose prune head fires on every branch and whose stop head never does."""
    shape = PolicyShape()
    flat = initial_weights(shape).clone()
    w = unflatten(flat, shape)
    w["b_br"][0], w["b_br"][1] = 20.0, -20.0     # prune: a >> b
    w["b_ep"][0], w["b_ep"][1] = -20.0, 20.0     # stop: never
    return flat


@pytest.mark.parametrize("read", [0, 1])
def test_kept_branches_hold_or_read_on(read: int) -> None:
    store = synthetic_store(questions=5, branches=16, seed=4)
    spec = ActionSpec(slots=16)
    guards = (GuardSpec("width_by_beta", {"lo": 4, "hi": 16}), GuardSpec("keep_active", {"k": 1, "read": read}),
              GuardSpec("stop_when_idle", {}), GuardSpec("max_rounds", {"r": 30}))
    eps = reference_episodes(store, seeds=2)
    out = rollout(store, eps, policy_controller(_pruning_everything(), PolicyShape(), spec, guards),
                  context={"beta": torch.zeros(len(eps))})
    if read == 0:   # every round: prune all, keep one, hold it -> nothing is read after the first round
        assert bool((out.rounds == 30).all())
    else:           # the kept branch reads an interval a round: it finishes, and then the episode can stop
        assert bool((out.rounds < 30).any()) and out.tokens.float().mean() > 0


def test_read_is_optional_in_configs_and_manifests() -> None:
    assert guard_problem("keep_active", {"k": 1}) is None
    assert guard_problem("keep_active", {"k": 1, "read": 2}) is None
    assert "expected ['k', 'read'] (read optional)" in guard_problem("keep_active", {"read": 1})
