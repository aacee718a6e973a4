"""Paired differences at matched tokens: identical methods cancel, one question moves them by 1/Q, stores pool."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from autotts.errors import AutottsError
from autotts.evaluate.paired import compare, replicate_curves
from autotts.evaluate.report import Pooled, ReportSettings, pool_stores
from autotts.evaluate.report_markdown import pooled_section
from autotts.evaluate.summary import summarise
from autotts.evaluate.sweep import SettingResult, StoreResults

Q = 30
CMC_TOKENS = {0.0: 2e4, 0.5: 6e4, 1.0: 1e5}


def result(method: str, knob: float | None, acc: np.ndarray, tok: np.ndarray) -> SettingResult:
    return SettingResult(method, knob, float(acc.mean()), float(tok.mean()), 100 * len(acc), 0.0, acc, tok)


def cmc_sweep(rng: np.random.Generator | None = None) -> list[SettingResult]:
    """CMC at three β (per-question accuracy in [0, 100], tokens around CMC_TOKENS) and SC@64."""
    rng = rng or np.random.default_rng(11)
    out = [result("cmc", b, 100.0 * rng.random(Q), t * rng.uniform(0.5, 1.5, Q)) for b, t in CMC_TOKENS.items()]
    return out + [result("sc", 64.0, 100.0 * rng.random(Q), 1e6 * rng.uniform(0.5, 1.5, Q))]


def as_ours(results: list[SettingResult]) -> list[SettingResult]:
    return [replace(r, method="ours") for r in results if r.method == "cmc"]


def by_label(diffs) -> dict:
    return {d.label: d for d in diffs}


def test_identical_methods_give_a_zero_width_interval_at_zero():
    base = cmc_sweep()
    diffs = compare([base + as_ours(base)], "ours", resamples=300)
    assert len(diffs) == 2 * len(CMC_TOKENS) + 1
    for d in diffs:
        if "SC@64" in d.label:
            continue
        assert math.isclose(d.value, 0.0, abs_tol=1e-9) and math.isclose(d.lo, 0.0, abs_tol=1e-9)
        assert math.isclose(d.hi, 0.0, abs_tol=1e-9)


def _flip(results: list[SettingResult], questions: list[int], to: float) -> list[SettingResult]:
    out = []
    for r in as_ours(results):
        acc = r.question_accuracy.copy()
        acc[questions] = to
        out.append(replace(r, question_accuracy=acc, accuracy=float(acc.mean())))
    return out


def test_one_question_moves_the_difference_by_one_over_q_and_the_interval_keeps_zero():
    base = [replace(r, question_accuracy=np.where(np.arange(Q) == 0, 0.0, r.question_accuracy)) for r in cmc_sweep()]
    diffs = by_label(compare([base + _flip(base, [0], 100.0)], "ours", resamples=1000))
    same = diffs["same knob (0.5), tokens 1.00× CMC β=0.5's"]
    assert math.isclose(same.value, 100.0 / Q)
    assert same.lo == 0.0 and same.hi > 0.0  # a third of the resamples miss question 0
    at = diffs["at CMC β=0.5's tokens"]
    assert math.isclose(at.value, 100.0 / Q) and at.lo == 0.0


def test_many_questions_in_one_direction_exclude_zero_and_opposite_moves_do_not():
    base = [replace(r, question_accuracy=np.where(np.arange(Q) < 12, 0.0, r.question_accuracy)) for r in cmc_sweep()]
    up = by_label(compare([base + _flip(base, list(range(10)), 100.0)], "ours", resamples=1000))
    d = up["at CMC β=1's tokens"]
    assert math.isclose(d.value, 1000.0 / Q) and d.lo > 0.0
    q = np.arange(Q)
    base = [replace(r, question_accuracy=np.where(q < 6, 0.0, np.where(q < 12, 100.0, r.question_accuracy)))
            for r in cmc_sweep()]
    swapped = [replace(r, question_accuracy=np.where(q < 6, 100.0, np.where(q < 12, 0.0, r.question_accuracy)))
               for r in as_ours(base)]
    d = by_label(compare([base + swapped], "ours", resamples=1000))["at CMC β=1's tokens"]
    assert math.isclose(d.value, 0.0, abs_tol=1e-9) and d.lo < 0.0 < d.hi


def test_matched_tokens_interpolate_the_bracketing_betas_of_each_replicate():
    base = cmc_sweep()
    ours = [result("ours", 0.0, np.full(Q, 10.0), np.full(Q, 1e4)),
            result("ours", 0.5, np.full(Q, 40.0), np.full(Q, 5e4)),
            result("ours", 1.0, np.full(Q, 60.0), np.full(Q, 1e5))]
    keys, acc, tok = replicate_curves([base + ours], resamples=200)
    diffs = by_label(compare([base + ours], "ours", resamples=200))
    j = keys.index(("cmc", 0.5))
    t = tok[:, j]  # CMC(0.5)'s tokens in each replicate: between ours β=0.5 and β=1 or below β=0.5
    expect = np.where(t >= 5e4, 40.0 + 20.0 * (t - 5e4) / 5e4, 10.0 + 30.0 * (t - 1e4) / 4e4) - acc[:, j]
    d = diffs["at CMC β=0.5's tokens"]
    assert math.isclose(d.value, expect[0])
    lo, hi = np.percentile(expect[1:], 2.5, method="lower"), np.percentile(expect[1:], 97.5, method="higher")
    assert math.isclose(d.lo, lo) and math.isclose(d.hi, hi)
    # the β=0 point lies outside the bracket [β=0.5, β=1] of the point estimate: moving it changes nothing there
    assert 5e4 <= tok[0, j] <= 1e5
    moved = [result("ours", 0.0, np.full(Q, 0.0), np.full(Q, 1.5e4))] + ours[1:]
    again = by_label(compare([base + moved], "ours", resamples=200))["at CMC β=0.5's tokens"]
    assert math.isclose(again.value, d.value)


def test_below_ours_cheapest_is_undefined_and_above_ours_dearest_is_its_accuracy():
    base = cmc_sweep()
    ours = [result("ours", 0.5, np.full(Q, 50.0), np.full(Q, 3e4)),
            result("ours", 1.0, np.full(Q, 60.0), np.full(Q, 8e4))]
    diffs = by_label(compare([base + ours], "ours", resamples=50))
    assert math.isnan(diffs["at CMC β=0's tokens"].value)  # CMC(0) costs ~2e4: no setting of ours fits
    top = diffs["at CMC β=1's tokens"]  # ~1e5: ours' dearest setting (8e4 tokens) is what that budget buys
    assert math.isclose(top.ours, 60.0) and math.isclose(top.value, 60.0 - top.base)
    assert not math.isnan(diffs["at CMC β=0.5's tokens"].value)


def test_one_store_uses_the_summary_draws_and_stores_pool_by_their_mean():
    a, b = cmc_sweep(np.random.default_rng(1)), cmc_sweep(np.random.default_rng(2))
    plus = lambda rs, x: [replace(r, question_accuracy=r.question_accuracy + x) for r in as_ours(rs)]  # noqa: E731
    sa, sb = a + plus(a, 2.0), b + plus(b, 0.0)
    alone = compare([sa], "ours", resamples=100)
    assert alone[:-1] == summarise(sa, resamples=100).paired["ours"][:-1]  # the last (SC@64) is NaN: out of range
    pooled = by_label(compare([sa, sb], "ours", resamples=300))["same knob (1), tokens 1.00× CMC β=1's"]
    assert math.isclose(pooled.value, 1.0) and math.isclose(pooled.lo, 1.0) and math.isclose(pooled.hi, 1.0)
    with pytest.raises(AutottsError, match="lacks the setting CMC β=1"):
        compare([sa, [r for r in sb if r.knob != 1.0]], "ours")


def test_report_pools_a_datasets_stores_and_writes_the_section():
    a, b = cmc_sweep(np.random.default_rng(3)), cmc_sweep(np.random.default_rng(4))
    stores = [StoreResults(f"m{i}/d", f"m{i}", "d", s + as_ours(s)) for i, s in enumerate((a, b))]
    stores.append(StoreResults("m0/other", "m0", "other", a + as_ours(a)))  # alone in its dataset: not pooled
    pooled = pool_stores(stores, ReportSettings(resamples=100))
    assert [(p.dataset, p.stores) for p in pooled] == [("d", ["m0/d", "m1/d"])]
    assert isinstance(pooled[0], Pooled) and len(pooled[0].rows()) == 2 * len(CMC_TOKENS) + 1
    text = pooled_section(pooled[0].dataset, pooled[0].stores, pooled[0].paired, 0.95)
    assert ("## Mean over 2 stores / d" in text and "| at CMC β=0.5's tokens |" in text
            and "+0.00 [+0.00, +0.00]" in text)
