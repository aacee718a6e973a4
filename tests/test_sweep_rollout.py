"""A sweep as one rollout equals one rollout per setting, episode by episode.

Every knob of each baseline (CMC's β included) and every β of a learned
controller, folded into the episode dimension as per-episode tensors, must give
each episode the answer, tokens, sequential tokens, rounds and opened branches
of its own setting's rollout, on a public store and on a synthetic one with
edge cases (empty probe lists, single-branch questions, ESC knobs below its window).
"""

from __future__ import annotations

import os

import pytest
import torch

from autotts.controllers.baselines import BASELINES, make_baseline
from autotts.controllers.learned import policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.env.episodes import concat_episodes, random_episodes, reference_episodes
from autotts.env.rollout import Rollout, rollout
from autotts.evaluate.folded import fold_size, plan_rollouts, sweep_rollouts
from autotts.store import build_store, load_store
from random_stores import random_records

FIELDS = ("answer", "correct", "tokens", "seq_tokens", "rounds", "opened")
EXTRA_KNOBS = {"esc": [1, 5, 9], "sc": [3], "parallel_probe": [1, 3], "cmc": [0.05, 0.33, 0.95], "asc": [1, 3]}


def _same(want: Rollout, got: Rollout, what: str) -> None:
    for f in FIELDS:
        a, b = getattr(want, f), getattr(got, f)
        bad = (a != b).nonzero().squeeze(1)
        assert bad.numel() == 0, f"{what}: {f} differs in {bad.numel()} episodes (first {int(bad[0])})"


def _stores():
    out = [("synthetic", build_store(random_records(seed=11, questions=12)))]
    if os.environ.get("AUTOTTS_DATA"):
        out.append(("Qwen3-1.7B/aime25", load_store("Qwen3-1.7B/aime25")))
    return out


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_sweep_in_one_rollout_equals_per_knob_rollouts(name: str) -> None:
    for label, store in _stores():
        episodes = concat_episodes([reference_episodes(store, seeds=4),
                                    random_episodes(store, 40, torch.Generator().manual_seed(3))])
        knobs = BASELINES[name][2] + EXTRA_KNOBS[name]
        folded = sweep_rollouts(store, episodes, name, knobs, fold=len(knobs))
        assert [v for v, _, _ in folded] == [float(k) for k in knobs]
        for k, (_, got, _) in zip(knobs, folded):
            _same(rollout(store, episodes, make_baseline(name, k)), got, f"{label} {name}({k})")
        # Broadcast scalars and a per-episode tensor of one repeated value agree too.
        one = rollout(store, episodes, make_baseline(name, torch.full((len(episodes),), float(knobs[-1]))))
        _same(rollout(store, episodes, make_baseline(name, knobs[-1])), one, f"{label} {name} tensor knob")


def test_learned_beta_sweep_in_one_rollout_equals_per_beta_rollouts() -> None:
    _, store = _stores()[-1]
    episodes = reference_episodes(store, seeds=3)
    ctrl = policy_controller(initial_weights(PolicyShape(), seed=1, scale=0.5))  # spends more as β grows
    betas = [0.0, 0.3, 0.7, 1.0]
    folded = sweep_rollouts(store, episodes, "learned", betas, loaded=ctrl, fold=len(betas))
    tokens = []
    for b, (_, got, _) in zip(betas, folded):
        want = rollout(store, episodes, ctrl, context={"beta": torch.full((len(episodes),), b)})
        _same(want, got, f"policy β={b}")
        tokens.append(float(got.tokens.double().mean()))
    assert len(set(tokens)) > 1  # β changes decisions: the test is not comparing one setting with itself


def test_fold_size_folds_everything_off_cpu_and_bounds_rows_on_cpu() -> None:
    assert fold_size(11, 5000, "cpu") == 1 and fold_size(11, 300, "cpu") == 11 and fold_size(11, 1000, "cpu") == 8
    assert fold_size(11, 3000, "meta") == 11 and fold_size(11, 3000, "cpu", fold=3) == 3


def test_plan_rollouts_in_worker_processes_match_one_process() -> None:
    """Forked workers return every setting of a plan, in plan order, with the same rollouts."""
    _, store = _stores()[-1]
    episodes = reference_episodes(store, seeds=3)
    plan = [("sc", [1, 8], None), ("cmc", [0.0, 0.5, 1.0], None), ("parallel_probe", [4], None)]
    one = list(plan_rollouts(store, episodes, plan, fold=2))
    two = list(plan_rollouts(store, episodes, plan, fold=2, workers=2))
    assert [(m, v) for m, v, _, _ in two] == [(m, float(v)) for m, vs, _ in plan for v in vs]
    for (m, v, want, _), (_, _, got, _) in zip(one, two):
        _same(want, got, f"{m}({v}) in a worker")
