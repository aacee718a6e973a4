"""Bootstrap intervals over questions: cases with a known answer."""

from __future__ import annotations

import math

import numpy as np
import torch

from autotts.env.episodes import Episodes
from autotts.evaluate.bootstrap import interval, question_means, resample_weights, resampled_means


def _episodes(questions: list[int], seeds: list[int]) -> Episodes:
    q = torch.tensor(questions)
    return Episodes(q, torch.zeros(len(q), 1, dtype=torch.long), torch.ones(len(q), dtype=torch.long),
                    torch.tensor(seeds))


def test_question_means_average_each_questions_seeds():
    eps = _episodes([0, 1, 0, 1, 2, 2], [0, 0, 1, 1, 0, 1])
    means = question_means(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0]), eps)
    assert means.tolist() == [0.5, 0.0, 1.0]


def test_weights_are_draw_frequencies_and_reproducible():
    w = resample_weights(30, resamples=200, seed=7)
    assert w.shape == (200, 30)
    assert np.allclose(w.sum(1), 1.0)
    assert np.allclose(w * 30, np.round(w * 30))  # integer draw counts
    assert np.array_equal(w, resample_weights(30, resamples=200, seed=7))
    assert not np.array_equal(w, resample_weights(30, resamples=200, seed=8))


def test_all_correct_gives_zero_width_interval():
    per_q = np.full(25, 100.0)
    lo, hi = interval(resampled_means(per_q, resample_weights(25, 500)))
    assert lo == hi == 100.0


def test_bernoulli_half_matches_analytic_standard_error():
    """Half the questions right: the bootstrap SE of the mean is sqrt(p(1-p)/Q) (plug-in variance)."""
    q = 400
    per_q = np.array([1.0, 0.0] * (q // 2))
    samples = resampled_means(per_q, resample_weights(q, resamples=20000, seed=0))
    se = math.sqrt(0.25 / q)
    assert abs(samples.std() - se) / se < 0.03
    lo, hi = interval(samples, 0.95)
    assert abs((hi - lo) / 2 - 1.96 * se) / (1.96 * se) < 0.06
    assert lo < 0.5 < hi


def test_seeds_of_a_question_stay_together():
    """Seeds that agree within a question carry no extra information: the SE is that of Q draws, not Q*S."""
    q, seeds = 50, 10
    right = np.arange(q) % 2 == 0
    questions = [i for _ in range(seeds) for i in range(q)]
    eps = _episodes(questions, [s for s in range(seeds) for _ in range(q)])
    correct = torch.tensor([float(right[i]) for i in questions])
    samples = resampled_means(question_means(correct, eps), resample_weights(q, resamples=20000, seed=1))
    assert abs(samples.std() - math.sqrt(0.25 / q)) / math.sqrt(0.25 / q) < 0.03


def test_paired_resamples_cancel_shared_question_difficulty():
    """Two methods differing by a constant on every question: their difference has a zero-width interval."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 100, 30)
    samples = resampled_means(np.stack([base, base + 2.0]), resample_weights(30, 300))
    assert samples.shape == (300, 2)
    lo, hi = interval(samples[:, 1] - samples[:, 0])
    assert np.isclose(lo, 2.0) and np.isclose(hi, 2.0)
    wide_lo, wide_hi = interval(samples[:, 0])
    assert wide_hi - wide_lo > 10


def test_interval_keeps_infinite_and_skips_nan_samples():
    samples = np.array([1.0] * 50 + [np.inf] * 50 + [np.nan] * 10)
    lo, hi = interval(samples, 0.9)
    assert lo == 1.0 and hi == np.inf
