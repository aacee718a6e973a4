"""The dense masked step (`autotts.env.dense`) is the sparse step, field by field, and makes no host sync.

* Random actions (every Action field, None or not) drive `batched.step` and `dense_step` from the same
  state on edge-case and synthetic stores; after every round every field of the observation, the hidden
  oracle and the pool tallies is equal.
* Every baseline (SC, ASC, ESC, Parallel-Probe, CMC) and a BetaPolicy with random weights (one policy
  and a population, per-episode β) run in lockstep: the controller acts on each state in its own mode
  (sparse forms, or the sync-free forms under `fastops.sync_free`), each env steps, and the two states
  are compared every round -- answers, per-branch charges, rounds, every state field.
* Whole rollouts (with the batch compaction) agree, and on a public store the dense path reproduces the
  reference sweep rows that the fidelity test checks.
* `HostSyncs`: a dense rollout of a learned population and of CMC makes one sync per round (the live
  count) plus one per rollout (the pool width); the sparse one makes many.
"""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Any, Callable

import pytest
import torch

from autotts.controllers.baselines import make_baseline
from autotts.controllers.learned import policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.env.batched import reset, step
from autotts.env.dense import dense_step, resolve_step_mode
from autotts.env.episodes import Episodes, concat_episodes, random_episodes, reference_episodes
from autotts.env.fastops import sync_free
from autotts.env.rollout import rollout
from autotts.env.state import FINISHED, PRUNED, EnvState
from autotts.errors import AutottsError
from autotts.evaluate.metrics import figures
from autotts.scale.syncs import HostSyncs
from autotts.store import ReplayStore, build_store, load_store
from autotts.store.synthetic import synthetic_store
from random_stores import random_records
from test_env_differential import random_action
from test_fidelity import OURS, rows_for

DATA = os.environ.get("AUTOTTS_DATA")
BASELINES = [("sc", 4), ("sc", 64), ("asc", 16), ("esc", 16), ("parallel_probe", 4), ("parallel_probe", 64),
             ("cmc", 0.0), ("cmc", 0.5), ("cmc", 1.0)]


def assert_same_state(a: EnvState, b: EnvState, where: str) -> None:
    """Every tensor of the observation, the hidden oracle and the pool tallies: equal values and dtypes."""
    for part in ("obs", "hidden", "pool"):
        x, y = getattr(a, part), getattr(b, part)
        for f in fields(x):
            u, v = getattr(x, f.name), getattr(y, f.name)
            assert u.dtype == v.dtype and u.shape == v.shape and torch.equal(u, v), f"{where}: {part}.{f.name}"


def _stores() -> list[tuple[str, ReplayStore]]:
    out = [(f"random{s}", build_store(random_records(seed=s, questions=15))) for s in range(3)]
    out.append(("synthetic", synthetic_store(questions=8, branches=40, seed=3)))
    if DATA:
        out.append(("public", load_store("Qwen3-0.6B/aime25")))
    return out


STORES = _stores()


@pytest.mark.parametrize("name,store", STORES, ids=[n for n, _ in STORES])
def test_dense_step_equals_sparse_step_under_random_actions(name: str, store: ReplayStore) -> None:
    g = torch.Generator().manual_seed(len(name))
    eps = random_episodes(store, 200, g, max_branches=24)
    vocab_len = torch.tensor([len(store.vocab[int(q)]) for q in eps.question])
    sparse = dense = reset(store, eps, 24)
    finished = pruned = rounds = 0
    while not bool(sparse.obs.done.all()):
        action = random_action(sparse.obs, g, vocab_len, p_stop=0.03)
        sparse, dense = step(store, sparse, action), dense_step(store, dense, action)
        assert_same_state(sparse, dense, f"{name} round {rounds}")
        rounds += 1
    finished, pruned = int((sparse.obs.status == FINISHED).sum()), int((sparse.obs.status == PRUNED).sum())
    assert rounds > 5 and finished > 100 and pruned > 10, (rounds, finished, pruned)


def test_sync_free_controller_forms_agree_with_the_sparse_forms() -> None:
    """The masked forms of rarely taken branches (fallback votes, revotes), directly: the lockstep runs seldom
    reach them. (CMC's partial abandonment is common there: a mutation of its masked form fails the lockstep.)"""
    from autotts.controllers.baselines.cmc import CMC
    from autotts.controllers.baselines.parallel_probe import ParallelProbe
    from autotts.controllers.rules import default_answer

    store = build_store(random_records(seed=7, questions=15))
    g = torch.Generator().manual_seed(7)
    eps = random_episodes(store, 300, g, max_branches=8)
    vocab_len = torch.tensor([len(store.vocab[int(q)]) for q in eps.question])
    state, cmc, pp = reset(store, eps, 8), CMC(0.5), ParallelProbe(8)
    program = policy_controller(_policy_weights(2, 3)).program
    mem = {"member": torch.randint(3, (len(eps),), generator=g), "beta": torch.rand(len(eps), generator=g)}
    fallbacks = revotes = 0
    for _ in range(12):
        obs = state.obs
        rows = torch.rand(len(eps), generator=g) < 0.5
        drop = (torch.rand(obs.status.shape, generator=g) < 0.6) & (obs.status == 1)
        forms = []
        for free in (False, True):
            with sync_free(free):
                forms.append([torch.where(rows, cmc.aggregate(obs, {}, {}, rows), -1), default_answer(obs),
                              torch.where(rows, program._answers(obs, mem, rows, {}), -1),
                              pp._revote(obs, (obs.status > 0) & ~drop, drop, obs.pool_winner)])
        for i, (a, b) in enumerate(zip(*forms)):
            assert torch.equal(a, b), i
        fallbacks += int((rows & (obs.pool_winner < 0) & (obs.n_open > 0)).sum())
        revotes += int(drop.any(1).sum())
        state = step(store, state, random_action(obs, g, vocab_len, p_stop=0.02))
    assert fallbacks > 50 and revotes > 50, (fallbacks, revotes)


def lockstep(store: ReplayStore, episodes: Episodes, make: Callable[[], Any], context: dict | None, where: str
             ) -> EnvState:
    """Drive a sparse run and a dense run (controller in its sync-free forms) side by side; compare each round."""
    sparse_ctrl, dense_ctrl = make(), make()
    sparse = dense = reset(store, episodes, sparse_ctrl.slots)
    mem_s = sparse_ctrl.init(sparse.obs, context)
    with sync_free():
        mem_d = dense_ctrl.init(dense.obs, context)
    for r in range(1000):
        action, mem_s = sparse_ctrl.act(sparse.obs, mem_s)
        with sync_free():
            dense_action, mem_d = dense_ctrl.act(dense.obs, mem_d)
        sparse, dense = step(store, sparse, action), dense_step(store, dense, dense_action)
        assert_same_state(sparse, dense, f"{where} round {r}")
        if bool(sparse.obs.done.all()):
            return sparse
    raise AssertionError(f"{where}: still running after 1000 rounds")


@pytest.mark.parametrize("name,store", STORES, ids=[n for n, _ in STORES])
def test_every_baseline_runs_identically_on_both_steps(name: str, store: ReplayStore) -> None:
    eps = reference_episodes(store, seeds=2 if store.num_questions > 10 else 6)
    for baseline, knob in BASELINES:
        end = lockstep(store, eps, lambda: make_baseline(baseline, knob), None, f"{name} {baseline}({knob})")
        assert bool((end.obs.result >= 0).any()), f"{name} {baseline}({knob}): no answers at all"


def _policy_weights(seed: int, members: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return initial_weights(PolicyShape()) + 0.6 * torch.randn(members, PolicyShape().size, generator=g)


@pytest.mark.parametrize("name,store", STORES, ids=[n for n, _ in STORES])
def test_learned_policy_runs_identically_on_both_steps(name: str, store: ReplayStore) -> None:
    """A population of 3 random BetaPolicies at 4 β each (folded into episodes), and one policy alone."""
    eps = random_episodes(store, 40, torch.Generator().manual_seed(1), max_branches=32)
    e, betas = len(eps), torch.tensor([0.0, 0.3, 0.7, 1.0])
    weights = _policy_weights(1, 3)
    rows = concat_episodes([eps] * 12)
    context = {"beta": betas.repeat_interleave(e).repeat(3), "member": torch.arange(3).repeat_interleave(4 * e)}
    end = lockstep(store, rows, lambda: policy_controller(weights), context, f"{name} population")
    stopped_early = end.obs.round < 100
    assert bool(stopped_early.any()) and bool((end.obs.status == PRUNED).any()), f"{name}: policies did nothing"
    lockstep(store, concat_episodes([eps] * 4), lambda: policy_controller(weights[0]),
             {"beta": betas.repeat_interleave(e)}, f"{name} one policy")


@pytest.mark.parametrize("make", [lambda: make_baseline("cmc", 0.7), lambda: make_baseline("parallel_probe", 16),
                                  lambda: make_baseline("asc", 8)], ids=["cmc", "parallel_probe", "asc"])
def test_rollouts_agree_with_compaction(make: Callable[[], Any]) -> None:
    """The rollout drops finished rows on both paths (a stable sort on the dense one): same outcomes."""
    store = synthetic_store(questions=12, branches=64, seed=5)
    eps = random_episodes(store, 300, torch.Generator().manual_seed(2))
    a, b = rollout(store, eps, make(), step_mode="sparse"), rollout(store, eps, make(), step_mode="dense")
    for f in fields(a):
        assert torch.equal(getattr(a, f.name), getattr(b, f.name)), f.name
    # More than half the episodes ended before the last round: the rollout compacted the batch at least once.
    assert float((a.rounds < a.rounds.max()).double().mean()) > 0.5


def test_dense_path_reproduces_the_reference_sweep_rows() -> None:
    """The fidelity test's rows of one public store (every SC/ASC/ESC knob, its Parallel-Probe and CMC subset),
    rolled out on the dense step."""
    if not DATA:
        pytest.skip("AUTOTTS_DATA is not set: no public stores")
    store = load_store("Qwen3-8B/aime25")
    episodes = reference_episodes(store)
    rows = rows_for(store.name)
    assert len(rows) == 21
    for r in rows:
        fig = figures(rollout(store, episodes, make_baseline(OURS[r["method"]], float(r["knob"])),
                              step_mode="dense"), episodes)
        assert abs(round(fig.accuracy, 2) - float(r["acc"])) <= 0.01 + 1e-9, r
        assert abs(fig.tokens - float(r["avg_tokens"])) <= 1.0, r


def _syncs(store: ReplayStore, eps: Episodes, ctrl: Any, context: dict | None, mode: str) -> tuple[HostSyncs, int]:
    rounds = []
    recorder = type("R", (), {"on_action": lambda *a: None, "on_state": lambda self, s, rows: rounds.append(1)})()
    with HostSyncs() as syncs:
        rollout(store, eps, ctrl, context=context, recorder=recorder, step_mode=mode)
    return syncs, len(rounds) - 1  # on_state also sees the reset state


@pytest.mark.parametrize("which", ["population", "cmc"])
def test_dense_rollout_syncs_once_per_round(which: str) -> None:
    store = synthetic_store(questions=20, branches=64, seed=1)
    eps = random_episodes(store, 100, torch.Generator().manual_seed(0), max_branches=32)
    if which == "population":
        rows, e = concat_episodes([eps] * 3), len(eps)
        context = {"beta": torch.linspace(0, 1, 3 * e), "member": torch.arange(3).repeat_interleave(e)}
        make = lambda: policy_controller(_policy_weights(0, 3))  # noqa: E731
    else:
        rows, context, make = eps, None, lambda: make_baseline("cmc", 0.5)  # noqa: E731
    dense, rounds = _syncs(store, rows, make(), context, "dense")
    sparse, _ = _syncs(store, rows, make(), context, "sparse")
    assert rounds > 20
    assert dense.count("__int__", "env/rollout.py") == rounds  # the loop's live count
    assert dense.total - rounds <= 1, dense.counts  # + the pool width, once per rollout
    assert sparse.total > 5 * rounds, sparse.total  # what the dense path removed


def test_step_mode_is_chosen_by_device_and_checked() -> None:
    assert resolve_step_mode("auto", "cpu") == "sparse" and resolve_step_mode("auto", torch.device("cuda")) == "dense"
    assert resolve_step_mode("dense", "cpu") == "dense" and resolve_step_mode("sparse", "cuda") == "sparse"
    with pytest.raises(AutottsError, match=r"^env.step_mode='fast': expected one of auto, sparse, dense$"):
        resolve_step_mode("fast", "cpu")


def test_step_mode_reaches_the_search_objective_from_the_config() -> None:
    from autotts.discovery.relaxed_search import make_objective
    from autotts.discovery.settings import settings_from
    from train_support import train_cfg

    assert settings_from(train_cfg()).step_mode == "auto"
    settings = settings_from(train_cfg("env.step_mode=dense"))
    assert make_objective(settings, [synthetic_store(questions=4, branches=8, seed=0)]).step_mode == "dense"
    with pytest.raises(AutottsError, match=r"^env.step_mode='gpu': expected one of auto, sparse, dense$"):
        settings_from(train_cfg("env.step_mode=gpu"))
