"""The knob rule (tokens rise with β, accuracy never falls by more than 0.5 points) at its boundaries,
its soft form in the fitness, and the validated generation it lets training export.
"""

from __future__ import annotations

import pytest
import torch
from train_support import train_cfg

from autotts.discovery import module as module_mod
from autotts.discovery.knob import knob_rule, split_of
from autotts.discovery.module import DiscoveryModule
from autotts.discovery.objective import ObjectiveConfig, fitness_of, knob_penalty
from autotts.discovery.settings import settings_from
from autotts.discovery.validation import Sweep, ValidationResult
from autotts.store.synthetic import shifted_specs

BETAS = [i / 10 for i in range(11)]
TOKENS = [1000.0 * (i + 1) for i in range(11)]


def _rule(*accuracies: list[float], tokens=TOKENS, splits=None) -> dict:
    stores = {f"s{i}": {"tokens": tokens, "accuracy": acc} for i, acc in enumerate(accuracies)}
    return knob_rule(BETAS, stores, splits)


def test_a_rising_curve_holds_and_a_flat_token_step_does_not() -> None:
    rising = [50.0 + i for i in range(11)]
    assert _rule(rising)["holds"]
    flat = TOKENS[:5] + [TOKENS[4]] + TOKENS[6:]
    verdict = _rule(rising, tokens=flat)
    assert not verdict["holds"] and not verdict["stores"]["s0"]["tokens_rise"]
    assert verdict["failures"] == ["s0: tokens do not rise at β=0.5"]


@pytest.mark.parametrize("loss, holds", [(0.5, True), (0.51, False)])
def test_a_beta_step_of_the_split_mean_may_lose_half_a_point(loss: float, holds: bool) -> None:
    # the dip at β = 0.6 is recovered by β = 1, so only the step part of the rule can fail
    acc = [50, 51, 52, 53, 54, 55, 55 - loss, 56, 57, 58, 59]
    verdict = _rule(acc)
    assert verdict["holds"] is holds
    assert verdict["splits"]["all"]["worst_step"] == pytest.approx(loss)
    assert verdict["splits"]["all"]["worst_step_at"] == 0.6


@pytest.mark.parametrize("gap, holds", [(0.5, True), (0.51, False)])
def test_beta_one_must_be_within_half_a_point_of_the_stores_best(gap: float, holds: bool) -> None:
    # a slow decline after β = 0.5: every step loses < 0.5 points, the top loses `gap`
    acc = [50, 51, 52, 53, 54, 60] + [60 - gap * k / 5 for k in range(1, 6)]
    verdict = _rule(acc)
    assert verdict["splits"]["all"]["holds"]
    assert verdict["stores"]["s0"]["top_gap"] == pytest.approx(gap) and verdict["stores"]["s0"]["best_beta"] == 0.5
    assert verdict["holds"] is holds


def test_splits_are_averaged_apart_and_a_store_cannot_hide_in_the_mean() -> None:
    up = [50.0 + i for i in range(11)]
    down_at_end = up[:10] + [up[9] - 1.0]                 # loses 1 point at the last step
    mixed = _rule(up, down_at_end, splits={"s0": "aime24", "s1": "aime24"})
    assert mixed["splits"]["aime24"]["holds"]             # the mean still rises...
    assert not mixed["stores"]["s1"]["holds"]             # ...but that store's β = 1 is 1 point below its best
    apart = _rule(up, down_at_end, splits={"s0": "aime24", "s1": "aime25"})
    assert apart["splits"]["aime24"]["holds"] and not apart["splits"]["aime25"]["holds"]
    assert set(apart["splits"]) == {"aime24", "aime25"}
    assert split_of("Qwen3-8B/aime25") == "aime25" and split_of("shifted:Qwen3-8B") == "shifted"
    with pytest.raises(ValueError, match="ascending"):
        knob_rule([1.0, 0.0], {"s": {"tokens": [1, 2], "accuracy": [1, 1]}})


def test_the_fitness_penalises_accuracy_lost_as_beta_grows_beyond_the_tolerance() -> None:
    acc = torch.tensor([[[0.50], [0.60], [0.58]]], dtype=torch.float64)   # [P=1, nb=3, S=1]: 2 points lost at the top
    rel = torch.tensor([[[0.1], [0.2], [0.3]]], dtype=torch.float64)
    betas = torch.tensor([0.0, 0.5, 1.0])
    assert float(knob_penalty(acc, 0.005)[0]) == pytest.approx(2 * 0.015)  # the step and the top gap, 1.5 pts each
    plain, _ = fitness_of(ObjectiveConfig(), acc, rel, betas)
    soft, _ = fitness_of(ObjectiveConfig(knob_weight=2.0), acc, rel, betas)
    assert float(plain - soft) == pytest.approx(2.0 * 0.03)
    rising = acc.clone()
    rising[0, 2, 0] = 0.603                                               # within tolerance: no penalty
    assert float(knob_penalty(rising, 0.005)[0]) == 0.0


class _Scripted:
    """A validator that returns scripted (score, knob holds) per call."""

    def __init__(self, script: list[tuple[float, bool]]):
        self.script = list(script)

    def __call__(self, weights: torch.Tensor) -> ValidationResult:
        score, holds = self.script.pop(0)
        sweep = Sweep("s", (0.0, 1.0), (50.0, 50.0), (1.0, 2.0))
        return ValidationResult(score, 0.0, (sweep,), {"holds": holds, "failures": [] if holds else ["broken"]})


def test_a_generation_that_breaks_the_rule_is_exported_only_while_none_keeps_it(monkeypatch) -> None:
    settings = settings_from(train_cfg("+experiment=smoke", "logger=none"))
    module = DiscoveryModule(settings, [], [], torch.zeros(settings.shape.size))
    module.objective, module.searcher = object(), object()
    module.validator = _Scripted([(0.3, False), (0.2, True), (0.9, False), (0.25, True)])
    monkeypatch.setattr(module_mod, "center_of",
                        lambda searcher: torch.full((settings.shape.size,), 1.0 * module.generation))
    picked = []
    for generation in range(4):
        module.generation = generation
        entry = module.validate()
        picked.append(module.best_generation)
        assert entry["knob"] == (generation % 2 == 1)
    assert picked == [0, 1, 1, 3]            # the 0.9 that breaks the rule never displaces a rule-keeping one
    assert module.best_score == 0.25 and module.best_knob and float(module.best[0]) == 3.0


def test_store_views_swap_the_splits_leave_a_model_out_and_append_extra_validation_stores() -> None:
    swapped = settings_from(train_cfg("+experiment=math", "store.search_split=aime25", "store.valid_split=aime24"))
    assert swapped.search_stores == ("Qwen3-0.6B/aime25", "Qwen3-1.7B/aime25", "Qwen3-4B/aime25", "Qwen3-8B/aime25")
    assert swapped.validation_stores[:4] == tuple(s.replace("aime25", "aime24") for s in swapped.search_stores)
    assert swapped.validation_stores[4:] == tuple(shifted_specs())  # the math preset's validation_extra
    lomo = settings_from(train_cfg("+experiment=math", "store.hold_out=Qwen3-4B",
                                   "store.validation_extra=['synthetic:questions=4,seed=3']"))
    assert lomo.search_stores == ("Qwen3-0.6B/aime24", "Qwen3-1.7B/aime24", "Qwen3-8B/aime24")
    assert lomo.validation_stores == ("Qwen3-0.6B/aime25", "Qwen3-1.7B/aime25", "Qwen3-8B/aime25",
                                      "synthetic:questions=4,seed=3")   # nothing of Qwen3-4B chooses the export
    strict = settings_from(train_cfg("+experiment=math", "store.hold_out=Qwen3-4B",
                                     "store.search_extra=['shifted:Qwen3-4B,seed=1','shifted:Qwen3-8B,seed=1']"))
    assert "shifted:Qwen3-4B" not in strict.validation_stores and len(strict.validation_stores) == 6
    assert strict.search_stores[-1] == "shifted:Qwen3-8B,seed=1" and len(strict.search_stores) == 4
    root = "/data/autotts"   # stores named by path: a held-out model's files go too, by their model folder
    paths = settings_from(train_cfg("+experiment=smoke", "+store.hold_out=Qwen3-4B",
                                    f"store.search=['{root}/Qwen3-4B/aime24.json.gz','{root}/Qwen3-8B/aime24.json.gz']",
                                    f"store.validation=['{root}/Qwen3-4B/aime25.json.gz','Qwen3-8B/aime25']"))
    assert paths.search_stores == (f"{root}/Qwen3-8B/aime24.json.gz",)
    assert paths.validation_stores == ("Qwen3-8B/aime25",)
    extra = settings_from(train_cfg("+experiment=math", "store.search_extra=['shifted:Qwen3-8B,seed=1']"))
    assert extra.search_stores[-1] == "shifted:Qwen3-8B,seed=1" and len(extra.search_stores) == 5


def _finalist_module(monkeypatch, holds_at_more_seeds: set[int]):
    """Four scripted validations; the re-check at `monotone.seeds` holds for the generations given."""
    from autotts.discovery import monotone as monotone_mod
    settings = settings_from(train_cfg("+experiment=smoke", "logger=none", "monotone.finalists=3"))
    module = DiscoveryModule(settings, [], [], torch.zeros(settings.shape.size))
    module.objective, module.searcher = object(), object()
    module.validator = _Scripted([(0.3, False), (0.2, True), (0.9, False), (0.5, False)])
    module.validator.stores, module.validator.splits = [], []
    monkeypatch.setattr(module_mod, "center_of",
                        lambda searcher: torch.full((settings.shape.size,), 1.0 * module.generation))
    for generation in range(4):
        module.generation = generation
        module.validate()
    checked = []

    def check(weights, *args, **kwargs):
        checked.append(int(weights[0]))
        return {"stores": {}, "knob": {"holds": int(weights[0]) in holds_at_more_seeds}}
    monkeypatch.setattr(monotone_mod, "monotone_check", check)
    return module, checked


def test_finalists_are_rechecked_in_order_of_score_and_the_first_that_keeps_the_rule_is_exported(monkeypatch):
    from autotts.discovery.train import _monotone
    module, checked = _finalist_module(monkeypatch, holds_at_more_seeds={3, 1})
    assert module.best_generation == 1                     # the validation rule's choice (the only one it kept)
    result = _monotone(module)
    assert checked == [2, 3]                               # 0.9 first (broken at more seeds), then 0.5 (holds)
    assert module.best_generation == 3 and module.best_score == 0.5 and float(module.best[0]) == 3.0
    assert not module.best_knob                            # the manifest's validation verdict is generation 3's
    assert [f["generation"] for f in result["finalists"]] == [2, 3] and result["knob"]["holds"]


def test_when_no_finalist_keeps_the_rule_the_validation_rules_best_is_exported(monkeypatch):
    from autotts.discovery.train import _monotone
    module, checked = _finalist_module(monkeypatch, holds_at_more_seeds=set())
    result = _monotone(module)
    assert checked == [2, 3, 1] and module.best_generation == 1 and not result["knob"]["holds"]
    assert module.best_knob                                # generation 1 kept the rule at validation
    assert [f["knob"] for f in result["finalists"]] == [False, False, False]


def test_when_no_finalist_keeps_the_rule_the_first_beta_range_cut_that_keeps_it_is_exported(monkeypatch):
    from autotts.controllers.policy import unflatten
    from autotts.discovery import monotone as monotone_mod
    from autotts.discovery.train import _monotone
    module, checked = _finalist_module(monkeypatch, holds_at_more_seeds=set())
    module.settings = settings_from(train_cfg("+experiment=smoke", "logger=none", "monotone.finalists=3",
                                              "monotone.tops=[0.9,0.8,0.7]"))
    tops = []

    def check(weights, *args, **kwargs):  # the β-term rows carry generation x top; the rest the generation
        top = float(unflatten(weights, module.settings.shape)["g_ep"][0]) / float(weights[0])
        tops.append(round(top, 6))
        return {"stores": {}, "knob": {"holds": abs(top - 0.8) < 1e-6}}
    monkeypatch.setattr(monotone_mod, "monotone_check", check)
    result = _monotone(module)
    assert tops == [1.0, 1.0, 1.0, 0.9, 0.8]               # finalists 2, 3, 1 uncut; then generation 1 cut
    assert result["beta_top"] == 0.8 and result["knob"]["holds"] and module.best_generation == 1
    assert result["tops"] == [{"top": 0.9, "knob": False}, {"top": 0.8, "knob": True}]
    assert [f["knob"] for f in result["finalists"]] == [False, False, False]  # the uncut verdicts
    assert float(unflatten(module.best, module.settings.shape)["g_br"][0]) == pytest.approx(0.8)


def test_a_finalist_that_keeps_the_rule_is_exported_uncut(monkeypatch):
    from autotts.discovery.train import _monotone
    module, checked = _finalist_module(monkeypatch, holds_at_more_seeds={3})
    module.settings = settings_from(train_cfg("+experiment=smoke", "logger=none", "monotone.finalists=3",
                                              "monotone.tops=[0.8]"))
    result = _monotone(module)
    assert checked == [2, 3] and result["beta_top"] == 1.0 and result["tops"] == []


def test_scaled_weights_act_at_beta_times_top_exactly() -> None:
    from autotts.controllers.policy import PolicyShape, heads, scale_beta, unflatten
    shape = PolicyShape()
    gen = torch.Generator().manual_seed(0)
    flat = torch.randn(shape.size, generator=gen, dtype=torch.float64)
    pool_x = torch.randn(5, shape.n_pool, generator=gen, dtype=torch.float64)
    branch_x = torch.randn(5, 7, shape.n_branch, generator=gen, dtype=torch.float64)
    beta = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0], dtype=torch.float64)
    cut = scale_beta(flat, shape, 0.7)
    for got, want in zip(heads(unflatten(cut, shape), pool_x, branch_x, beta),
                         heads(unflatten(flat, shape), pool_x, branch_x, 0.7 * beta)):
        torch.testing.assert_close(got, want)
    assert not torch.equal(heads(unflatten(cut, shape), pool_x, branch_x, beta)[0],
                           heads(unflatten(flat, shape), pool_x, branch_x, beta)[0])
    assert torch.equal(flat, flat.clone()) and not torch.equal(cut, flat)   # the input is left as it was


@pytest.mark.parametrize("tops", ["[1.0]", "[0]", "[fast]"])
def test_a_beta_top_outside_zero_one_is_a_one_line_error(tops: str) -> None:
    from autotts.errors import AutottsError
    with pytest.raises(AutottsError, match=r"monotone.tops=.*expected values in \(0, 1\)"):
        settings_from(train_cfg("+experiment=smoke", f"monotone.tops={tops}"))


def test_the_export_check_applies_monotone_tolerance(monkeypatch):
    """A stricter tolerance at the export's check refuses a top gap the judged 0.5 lets through."""
    from autotts.discovery.train import _monotone
    from autotts.discovery.validation import sweeps_knob
    acc = tuple(50.0 + i for i in range(10)) + (58.7,)          # β=1 is 0.3 points below β=0.9
    sweep = Sweep("s", tuple(BETAS), acc, tuple(TOKENS))
    assert sweeps_knob(BETAS, [sweep])["holds"] and not sweeps_knob(BETAS, [sweep], tolerance=0.25)["holds"]
    module, _ = _finalist_module(monkeypatch, holds_at_more_seeds=set())
    module.settings = settings_from(train_cfg("+experiment=smoke", "logger=none", "monotone.tolerance=0.25"))
    seen = []
    from autotts.discovery import monotone as monotone_mod
    monkeypatch.setattr(monotone_mod, "monotone_check",
                        lambda *args, **kwargs: seen.append(args[-1]) or {"stores": {}, "knob": {"holds": True}})
    _monotone(module)
    assert seen and all(t == 0.25 for t in seen)
    from autotts.errors import AutottsError
    with pytest.raises(AutottsError, match=r"monotone.tolerance=-1.0: expected a value in \[0, 100\]"):
        settings_from(train_cfg("+experiment=smoke", "monotone.tolerance=-1"))
