"""The relaxed objective: exact against Monte Carlo in the hard env, gradients against finite differences,
and `search=relaxed` through the training loop (Adam ascends, exact resume, one-line config errors).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from train_support import train_cfg

from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec
from autotts.controllers.policy import PolicyShape, initial_weights, unflatten
from autotts.discovery.module import generation_generator
from autotts.discovery.objective import ObjectiveConfig, _per_store, fitness_of
from autotts.discovery.relaxed import (RelaxedConfig, RelaxedObjective, expected_outcome, never_stop_runs,
                                       stochastic_stop_controller)
from autotts.discovery.relaxed_search import GradientSearcher, stop_head_mask
from autotts.discovery.settings import settings_from
from autotts.discovery.train import fit
from autotts.env.episodes import concat_episodes
from autotts.env.rollout import rollout
from autotts.errors import AutottsError
from autotts.store import load_store

STORES = ("synthetic:questions=4,branches=24,seed=7", "synthetic:questions=3,branches=20,seed=8")
SMOKE = ["+experiment=smoke", "trainer.progress_bar=false", "logger=none", "search=relaxed"]


def _stop_weights(shape: PolicyShape, seed: int = 1, stop_bias: float = -3.5) -> torch.Tensor:
    """Random small weights whose stop head fires with a moderate, state-dependent probability."""
    flat = initial_weights(shape, seed=seed, scale=0.4)
    w = unflatten(flat, shape)
    w["b_ep"][:4] = torch.tensor([stop_bias, 1.0, 0.5, -0.5])  # and open a branch or more each round
    w["g_ep"][:2] = torch.tensor([-0.8, 0.4])  # more β, later stops
    w["w_done"].copy_(torch.tensor([0.3, -0.2, 0.1]))  # vote masses off exact ties (zero weights tie by count,
    w["w_live"].copy_(torch.tensor([0.5, -0.3]))          # and any perturbation breaks those ties: a kink)
    return flat


@pytest.fixture(scope="module")
def stores():
    return [load_store(spec) for spec in STORES]


@pytest.mark.parametrize("sharpness, stop_bias", [(1.0, -3.5), (3.0, -0.2)])  # a stop chance of ~5-10% a round
def test_relaxed_value_matches_monte_carlo_of_the_hard_env(stores, sharpness, stop_bias) -> None:
    """Expected accuracy, tokens and (linear) fitness = the mean of many stochastic-stop hard runs, within 3 SE.

    At sharpness 1 the hard runs sample the stop as the env's sample mode does (p ~ Beta, then Bernoulli(p)).
    """
    shape, reps = PolicyShape(), 200
    cfg = ObjectiveConfig(episodes_per_store=8, betas=2, monotone_weight=0.0)
    objective = RelaxedObjective(stores, cfg, shape, relaxed=RelaxedConfig(sharpness=sharpness, tail=0.0))
    batch = objective.sample(generation_generator(3, 0))
    weights = _stop_weights(shape, stop_bias=stop_bias)
    with torch.no_grad():
        relaxed, _ = objective(weights[None], batch)
        acc, rel = objective.expected(weights, batch)

    nb, e = len(batch.betas), len(batch.episodes)
    episodes = concat_episodes([batch.episodes] * (nb * reps))
    beta = batch.betas.repeat_interleave(e).repeat(reps)
    torch.manual_seed(0)  # Beta sampling uses the global generator (as the hard env's sample mode does)
    ctrl = stochastic_stop_controller(weights, shape, sharpness=sharpness, generator=torch.Generator().manual_seed(1))
    result = rollout(objective.union, episodes, ctrl, context={"beta": beta})
    store = objective.owner[batch.episodes.question]
    mc_acc = _per_store(result.correct.double().view(reps, nb, e), store, len(stores))   # [reps, nb, S]
    mc_rel = _per_store(result.tokens.double().view(reps, nb, e), store, len(stores)) / objective.sc64
    mc_fit, _ = fitness_of(cfg, mc_acc, mc_rel, batch.betas)

    def within(value: torch.Tensor, samples: torch.Tensor) -> None:
        se = samples.std(0) / reps ** 0.5
        assert bool((se > 0).all()), "the stop must be random for this check to mean anything"
        assert bool(((value - samples.mean(0)).abs() <= 3 * se).all()), (value, samples.mean(0), se)

    within(acc, mc_acc)
    within(rel, mc_rel)
    within(relaxed[0], mc_fit)
    hard_det, _ = objective.hard(weights[None], batch)  # the deterministic policy differs: the check is not vacuous
    assert abs(float(hard_det[0]) - float(mc_fit.mean())) > 3 * float(mc_fit.std() / reps ** 0.5)


def test_gradient_matches_finite_differences_in_float64(stores) -> None:
    """Along fixed never-stop runs (autograd.gradcheck), and for the whole objective with its runs redone."""
    shape = PolicyShape(hidden=2)
    weights = _stop_weights(shape).double()
    cfg = ObjectiveConfig(episodes_per_store=4, betas=2)
    objective = RelaxedObjective(stores, cfg, shape, relaxed=RelaxedConfig(sharpness=1.0, tail=0.0))
    batch = objective.sample(generation_generator(5, 0))
    nb = len(batch.betas)
    runs = never_stop_runs(objective.union, concat_episodes([batch.episodes] * nb),
                           batch.betas.repeat_interleave(len(batch.episodes)), weights, shape)
    assert int(runs.rounds.min()) >= 2 and runs.valid.shape[1] > 4

    def along_runs(w: torch.Tensor) -> torch.Tensor:
        correct, tokens = expected_outcome(w, runs, shape)
        return torch.stack([correct.sum(), tokens.sum() / 1e4])

    assert torch.autograd.gradcheck(along_runs, (weights.clone().requires_grad_(True),), eps=1e-6, atol=1e-6)

    x = weights.clone().requires_grad_(True)
    fitness, _ = objective(x[None], batch)
    fitness.sum().backward()
    assert x.grad is not None and float(x.grad.norm()) > 1e-4
    direction = torch.randn(shape.size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        up, _ = objective((weights + h * direction)[None], batch)
        down, _ = objective((weights - h * direction)[None], batch)
    numeric = float(up[0] - down[0]) / (2 * h)
    assert numeric == pytest.approx(float(x.grad @ direction), rel=1e-4, abs=1e-8)


def test_adam_on_the_stop_head_raises_the_relaxed_fitness_and_moves_nothing_else(stores) -> None:
    shape = PolicyShape()
    # without the β-width cap: at β=0 it leaves the stop head too little to gain on 16 episodes
    guards = tuple(g for g in DEFAULT_GUARDS if g.name != "width_by_beta")
    objective = RelaxedObjective(stores, ObjectiveConfig(episodes_per_store=8, betas=2), shape, ActionSpec(), guards)
    batch = objective.sample(generation_generator(7, 0))
    start, mask = _stop_weights(shape), stop_head_mask(shape)
    assert int(mask.sum()) == 2 * (shape.hidden + 2)  # two logits: hidden-layer weights, bias, β term
    searcher = GradientSearcher(RelaxedConfig(lr=0.1, steps=8), start, mask)
    searcher.problem._objective_func.bind(objective, batch)
    with torch.no_grad():
        before = float(objective(start[None], batch)[0])
    searcher.step()
    after = searcher.status["center"]
    with torch.no_grad():
        assert float(objective(after[None], batch)[0]) > before + 0.01
    moved = after != start
    assert bool(moved.any()) and not bool((moved & ~mask).any())


@pytest.fixture(scope="module")
def relaxed_run(tmp_path_factory):
    cfg = train_cfg(*SMOKE)
    return cfg, fit(cfg, tmp_path_factory.mktemp("relaxed"))


def test_relaxed_search_trains_validates_and_exports_through_the_lightning_loop(relaxed_run) -> None:
    cfg, result = relaxed_run
    assert result.generations == 4 and [v["generation"] for v in result.validations] == [0, 2, 4]
    assert (result.export_dir / "controller.pt").is_file()
    assert [h["generation"] for h in result.history] == [0, 1, 2, 3]
    assert all(len(h["fitness"]) == 1 and "rounds" in h for h in result.history)
    checkpoint = torch.load(result.checkpoint, weights_only=False)["autotts"]
    assert checkpoint["algorithm"] == "relaxed"


def test_relaxed_search_resumes_exactly(relaxed_run, tmp_path) -> None:
    cfg, full = relaxed_run
    first = fit(dict(cfg, trainer=dict(cfg["trainer"], generations=2)), tmp_path / "first")
    resumed = fit(dict(cfg, ckpt_path=str(first.checkpoint)), tmp_path / "resumed")
    assert [h["fitness"] for h in resumed.history] == [h["fitness"] for h in full.history]
    a = torch.load(resumed.checkpoint, weights_only=False)["autotts"]
    b = torch.load(full.checkpoint, weights_only=False)["autotts"]
    assert torch.equal(a["best"], b["best"]) and a["validations"][-1]["score"] == b["validations"][-1]["score"]


@pytest.mark.parametrize("override, expected", [
    ("search.relaxed.params=heads", "search.relaxed.params='heads': expected all or stop"),
    ("search.relaxed.lr=-1", "search.relaxed.lr=-1.0: expected > 0"),
    ("+search.relaxed.momentum=0.9", "search.relaxed.momentum: unknown setting"),
])
def test_bad_relaxed_settings_are_one_line_errors(override, expected) -> None:
    with pytest.raises(AutottsError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        settings_from(train_cfg(*SMOKE, override))


def test_relaxed_config_is_a_dataclass_of_the_documented_keys() -> None:
    keys = {f.name for f in dataclasses.fields(RelaxedConfig)}
    cfg = train_cfg(*SMOKE)
    assert set(cfg["search"]["relaxed"]) == keys


def test_init_starts_es_from_a_relaxed_runs_best_weights(relaxed_run, tmp_path) -> None:
    """The hybrid recipe: `init=<relaxed checkpoint>` makes the relaxed optimum ES's starting centre."""
    cfg, relaxed = relaxed_run
    es_cfg = train_cfg("+experiment=smoke", "trainer.progress_bar=false", "logger=none", "trainer.generations=1",
                       "trainer.validate_every=1", f"init={relaxed.checkpoint}")
    result = fit(es_cfg, tmp_path)
    assert result.validations[0]["generation"] == 0 and result.validations[0]["score"] == relaxed.best_score
    assert all(v["elapsed"] > 0 for v in result.validations)
    with pytest.raises(AutottsError, match="init=train.py: not a checkpoint"):
        fit(dict(es_cfg, init="train.py"), tmp_path / "bad")
