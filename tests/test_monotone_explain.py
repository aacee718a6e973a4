"""β monotonicity check, validation = the objective's fitness, and `autotts explain` rules with their fidelity."""

from __future__ import annotations

import json

import pytest
import torch
from train_support import SMALL_STORE, beta_switch_weights, export_weights

from autotts.cli import main as cli
from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, GuardSpec
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.discovery.monotone import monotone_check
from autotts.discovery.objective import Batch, Objective, ObjectiveConfig
from autotts.discovery.validation import ValidationConfig, Validator
from autotts.evaluate.runner import protocol_episodes
from autotts.store import load_store

GUARDS = DEFAULT_GUARDS[:-1] + (GuardSpec("max_rounds", {"r": 25}),)


@pytest.fixture(scope="module")
def store():
    return load_store(SMALL_STORE)


def test_monotone_check_tells_rising_from_falling_token_curves(store) -> None:
    rising = monotone_check(beta_switch_weights(stop_below=0.35), [store], guards=GUARDS, seeds=2)
    falling = monotone_check(beta_switch_weights(stop_above=0.35), [store], guards=GUARDS, seeds=2)
    assert rising["betas"] == [i / 10 for i in range(11)]
    up, down = rising["stores"][store.name], falling["stores"][store.name]
    # while β < 0.35 it stops as soon as the open_before_stop guard lets it: after round 0's two opens
    first_round = up["tokens"][0]
    assert first_round > 0 and up["tokens"][:4] == [first_round] * 4 and min(up["tokens"][4:]) > first_round
    assert rising["monotone"] and up["monotone"] and up["worst_drop"] == 0.0
    assert not falling["monotone"] and down["worst_drop"] == max(down["tokens"]) - first_round  # the fall at β = 0.4
    with pytest.raises(ValueError, match="at least 11"):
        monotone_check(beta_switch_weights(stop_below=0.35), [store], betas=5)


def test_validation_score_is_the_objective_fitness_on_validation_episodes(store) -> None:
    weights = initial_weights(PolicyShape(), seed=2, scale=0.5)
    cfg, betas = ObjectiveConfig(), (0.0, 0.5, 1.0)
    score = Validator([store], ValidationConfig(betas=betas, seeds=2), cfg, PolicyShape(), ActionSpec(), GUARDS)
    objective = Objective([store], cfg, PolicyShape(), ActionSpec(), GUARDS)
    fitness, _ = objective(weights[None], Batch(protocol_episodes(store, "reference", 2), torch.tensor(betas)))
    assert score(weights).score == pytest.approx(float(fitness[0]), abs=1e-6)


def _explain(capsys, export, *extra: str) -> str:
    assert cli(["explain", str(export), "--store", SMALL_STORE, "--seeds", "2", *extra]) == 0
    return capsys.readouterr().out


def test_explain_recovers_a_beta_rule_with_full_fidelity(tmp_path, capsys) -> None:
    export = export_weights(beta_switch_weights(stop_above=0.5), tmp_path / "export", guards=GUARDS)
    out = _explain(capsys, export, "--beta", "0,0.25,0.75,1")
    assert "stop: fidelity 100.0%" in out and "yes if beta > 0.5" in out
    assert "prune: fidelity 100.0%" in out and "otherwise no" in out


def test_explain_prints_fidelity_per_head_for_a_mixed_policy(tmp_path, capsys) -> None:
    export = export_weights(initial_weights(PolicyShape(), seed=3, scale=0.5), tmp_path / "export", guards=GUARDS)
    text = _explain(capsys, export)
    assert [line.split(":")[0] for line in text.splitlines() if ": fidelity " in line] == \
        ["stop", "open", "width", "prune", "advance", "fast"]
    doc = json.loads(_explain(capsys, export, "--json", "--depth", "2"))
    heads = {h["head"]: h for h in doc["heads"]}
    assert all(0.0 <= h["fidelity"] <= 1.0 and h["test_decisions"] > 0 for h in heads.values())
    assert sum(h["fidelity"] for h in heads.values()) / len(heads) > 0.7
    assert any(h["rules"] for h in heads.values())  # not every head is constant
    assert doc["betas"] == [0.0, 0.5, 1.0]  # the manifest's grid by default
