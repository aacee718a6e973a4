"""`objective.reference`: a point scores at matched tokens against a teacher's frontier (one interpolation rule)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_support import train_cfg

from autotts.discovery.objective import ObjectiveConfig, fitness_of, sc64_tokens
from autotts.discovery.reference_frontier import GRID, reference_frontier
from autotts.discovery.settings import settings_from
from autotts.evaluate.frontier import accuracy_at
from autotts.store.synthetic import synthetic_store


def _frontier():
    stores = [synthetic_store(questions=6, branches=48, seed=s) for s in (1, 2)]
    sc64 = torch.tensor([sc64_tokens(s, seeds=4) for s in stores], dtype=torch.float64)
    return reference_frontier(stores, "cmc", 48, sc64, seeds=4)


def test_the_references_own_sweep_scores_zero_and_interpolation_is_the_report_s() -> None:
    f = _frontier()
    acc, rel = f.accuracy.T[None], f.tokens.T[None]                     # [1, 11, S]: the reference itself
    score = f.score(acc, rel, torch.tensor(GRID), anchor=0.05, band=0.0)
    assert torch.allclose(score, torch.zeros_like(score), atol=1e-7)  # F passes through its points
    assert bool((f.tokens[:, -1] > f.tokens[:, 0]).all())                # β buys tokens: a real sweep
    for s in range(f.tokens.shape[0]):                                   # inside its range: autotts.evaluate.frontier
        t = np.linspace(float(f.tokens[s].min()), float(f.tokens[s].max()), 17)
        ours = f.accuracy_at(torch.tensor(t)[:, None].expand(17, f.tokens.shape[0]).contiguous())[:, s]
        np.testing.assert_allclose(ours.numpy(), accuracy_at(f.tokens[s].numpy(), f.accuracy[s].numpy(), t), atol=1e-9)


def test_matched_tokens_reward_accuracy_and_charge_straying_from_the_betas_token_level() -> None:
    f = _frontier()
    betas = torch.tensor([0.0, 0.5, 1.0])
    base_tok = f.tokens_of(betas)[None]                                  # [1, 3, S]: the reference's own levels
    base_acc = f.accuracy_at(base_tok)
    cfg = ObjectiveConfig(reference="cmc", anchor=0.05, band=0.2)
    same, _ = fitness_of(cfg, base_acc, base_tok, betas, f)
    better, _ = fitness_of(cfg, base_acc + 0.02, base_tok, betas, f)
    stray, _ = fitness_of(cfg, base_acc, base_tok * 3.0, betas, f)      # 3x the tokens, no more accuracy
    assert abs(float(same)) < 1e-6 and abs(float(better) - 0.02) < 1e-6
    matched = float((base_acc - f.accuracy_at(base_tok * 3.0)).mean())  # the reference's own gain (if any) at 3x
    assert abs(float(stray) - (matched - 0.05 * (np.log(3.0) - 0.2))) < 1e-6
    inside, _ = fitness_of(cfg, base_acc, base_tok * 1.2, betas, f)       # within the band: no charge
    assert abs(float(inside) - float((base_acc - f.accuracy_at(base_tok * 1.2)).mean())) < 1e-6


def test_an_anchor_teacher_sets_betas_token_level_and_leaves_the_frontier_alone() -> None:
    """`anchor_reference`: the accuracy to beat is one teacher's, the token level of each β another's."""
    stores = [synthetic_store(questions=6, branches=48, seed=s) for s in (1, 2)]
    sc64 = torch.tensor([sc64_tokens(s, seeds=4) for s in stores], dtype=torch.float64)
    cmc, probe = (reference_frontier(stores, name, 48, sc64, seeds=4) for name in ("cmc", "parallel_probe"))
    mixed = reference_frontier(stores, "cmc", 48, sc64, seeds=4, anchor="parallel_probe")
    assert torch.equal(mixed.tokens, cmc.tokens) and torch.equal(mixed.accuracy, cmc.accuracy)
    betas = torch.tensor([0.0, 0.35, 1.0])
    torch.testing.assert_close(mixed.tokens_of(betas), probe.tokens_of(betas))
    assert not torch.allclose(mixed.tokens_of(betas), cmc.tokens_of(betas))   # the two schedules differ
    rel = probe.tokens_of(betas)[None]                                         # on the anchor: no charge
    acc = cmc.accuracy_at(rel)
    assert torch.allclose(mixed.score(acc, rel, betas, anchor=0.05, band=0.0), torch.zeros_like(acc), atol=1e-7)


def test_an_anchor_reference_needs_a_reference_and_a_known_teacher():
    from autotts.errors import AutottsError
    ok = settings_from(train_cfg("+experiment=math", "objective.reference=cmc",
                                 "objective.anchor_reference=parallel_probe"))
    assert ok.objective.anchor_reference == "parallel_probe"
    for bad in (["objective.anchor_reference=sc"], ["objective.reference=", "objective.anchor_reference=cmc"]):
        with pytest.raises(AutottsError, match=r"objective.anchor_reference=.*with objective.reference set"):
            settings_from(train_cfg("+experiment=math", *bad))
