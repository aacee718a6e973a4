"""The teacher switch runs each episode exactly as its own program would alone.

A β map that mixes the learned policy and CMC, folded over several β in one
rollout, must give every episode the answer, tokens, sequential tokens, rounds
and opened branches of a rollout of that episode's program at that program's β.
"""

from __future__ import annotations

import os

import pytest
import torch

from autotts.controllers.baselines import make_baseline
from autotts.controllers.learned import ActionSpec, GuardSpec, policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.controllers.switch import BetaMap, TeacherSwitch, switch_of
from autotts.env.episodes import concat_episodes, reference_episodes
from autotts.env.rollout import rollout
from autotts.errors import AutottsError
from autotts.store import build_store, load_store
from random_stores import random_records

FIELDS = ("answer", "correct", "tokens", "seq_tokens", "rounds", "opened")
MAP = BetaMap(betas=(0.0, 0.5, 0.6, 1.0), programs=("cmc", "policy", "policy", "cmc"), inner=(0.0, 0.2, 0.9, 1.0))


def _store():
    if os.environ.get("AUTOTTS_DATA"):
        return load_store("Qwen3-1.7B/aime25")
    return build_store(random_records(seed=11, questions=12))


def test_resolve_interpolates_within_a_program_and_takes_the_nearer_point_across() -> None:
    teacher, inner = MAP.resolve(torch.tensor([0.0, 0.2, 0.3, 0.5, 0.55, 0.6, 0.79, 0.81, 1.0]))
    assert teacher.tolist() == [True, True, False, False, False, False, False, True, True]
    assert torch.allclose(inner, torch.tensor([0.0, 0.0, 0.2, 0.2, 0.55, 0.9, 0.9, 1.0, 1.0], dtype=torch.float64))


def _capped_policy():
    """A random policy with 3 slots: it reaches its cap, where its `can_open` feature turns off."""
    spec = ActionSpec(slots=3, max_open=2)
    guards = (GuardSpec("max_branches", {"m": 3}), GuardSpec("keep_active", {"k": 1}),
              GuardSpec("stop_when_idle", {}), GuardSpec("max_rounds", {"r": 100}))
    return policy_controller(initial_weights(PolicyShape(), seed=1, scale=0.5), spec=spec, guards=guards)


@pytest.mark.parametrize("make", [lambda: policy_controller(initial_weights(PolicyShape(), seed=1, scale=0.5)),
                                  _capped_policy], ids=["random", "at_its_slot_cap"])
def test_each_episode_runs_as_its_program_alone(make) -> None:
    store = _store()
    episodes = reference_episodes(store, seeds=3)
    n = len(episodes)
    policy = make()
    switch = TeacherSwitch(policy, MAP)
    betas = [0.0, 0.3, 0.55, 0.9]
    got = rollout(store, concat_episodes([episodes] * len(betas)), switch,
                  context={"beta": torch.tensor(betas).repeat_interleave(n)})
    teacher, inner = MAP.resolve(torch.tensor(betas))
    programs = set()
    for part, on_teacher, b in zip(got.split(len(betas)), teacher.tolist(), inner.tolist()):
        if on_teacher:
            want = rollout(store, episodes, make_baseline("cmc", b))
        else:
            want = rollout(store, episodes, policy, context={"beta": torch.full((n,), b)})
        programs.add(on_teacher)
        for f in FIELDS:
            assert torch.equal(getattr(want, f), getattr(part, f)), f"{f} differs at inner β={b} (teacher {on_teacher})"
    assert programs == {True, False}


def test_a_map_without_the_teacher_is_the_policy_itself_and_bad_maps_are_one_line() -> None:
    policy = policy_controller(initial_weights(PolicyShape(), seed=1))
    assert switch_of(policy, {"betas": [0, 1], "programs": ["policy", "policy"], "inner": [0, 1]}) is policy
    assert isinstance(switch_of(policy, MAP.record()), TeacherSwitch)
    with pytest.raises(AutottsError, match="beta_map.programs"):
        BetaMap((0.0, 1.0), ("policy", "sc"), (0.0, 1.0))
    with pytest.raises(AutottsError, match="beta_map.betas"):
        BetaMap((0.0, 0.8), ("policy", "cmc"), (0.0, 1.0))
    with pytest.raises(AutottsError, match="manifest: beta_map"):
        switch_of(policy, {"betas": [0, 1]})


def test_cmc_refuses_per_episode_beta_beyond_the_schedule_it_was_built_for() -> None:
    store = build_store(random_records(seed=11, questions=3))
    episodes = reference_episodes(store, seeds=1)
    narrow = make_baseline("cmc", 0.0)          # 4 slots, EMA width 2: CMC(1) needs 64 and 8
    with pytest.raises(ValueError, match="needs more slots or EMA width"):
        rollout(store, episodes, narrow, context={"cmc_beta": torch.ones(len(episodes), dtype=torch.float64)})
