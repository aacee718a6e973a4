"""Curve comparisons: interpolation in log tokens, tokens to reach a target, matched-token gains."""

from __future__ import annotations

import math

import numpy as np

from autotts.evaluate.frontier import accuracy_at, matched_gain, matched_gain_samples, tokens_to_reach

TOK = np.array([1000.0, 10000.0, 100000.0])
ACC = np.array([10.0, 20.0, 40.0])


def test_accuracy_at_is_linear_in_log_tokens_and_undefined_outside():
    got = accuracy_at(TOK, ACC, np.array([1000.0, math.sqrt(1000.0 * 10000.0), 10000.0, 50000.0, 500.0, 2e5]))
    assert np.allclose(got[:3], [10.0, 15.0, 20.0])
    assert np.isclose(got[3], 20.0 + 20.0 * math.log10(5.0))
    assert np.isnan(got[4]) and np.isnan(got[5])


def test_accuracy_at_sorts_points_by_tokens():
    assert np.allclose(accuracy_at(TOK[::-1], ACC[::-1], np.array([10000.0])), [20.0])


def test_tokens_to_reach_interpolates_the_first_crossing():
    assert math.isclose(tokens_to_reach(TOK, ACC, 15.0), math.sqrt(1000.0 * 10000.0))
    assert tokens_to_reach(TOK, ACC, 5.0) == 1000.0  # reached by the cheapest point: no extrapolation
    assert tokens_to_reach(TOK, ACC, 40.0) == 100000.0
    assert tokens_to_reach(TOK, ACC, 41.0) == math.inf


def test_tokens_to_reach_takes_the_first_crossing_of_a_non_monotone_curve():
    assert tokens_to_reach(np.array([1e3, 1e4, 1e5]), np.array([10.0, 30.0, 20.0]), 25.0) < 1e4


def test_matched_gain_uses_only_baseline_points_inside_the_range():
    gain, n = matched_gain(TOK, ACC + 3.0, np.array([500.0, 1000.0, 10000.0, 1e6]), np.array([0.0, 10.0, 20.0, 99.0]))
    assert (gain, n) == (3.0, 2)
    gain, n = matched_gain(TOK, ACC, np.array([10.0]), np.array([5.0]))
    assert math.isnan(gain) and n == 0


def test_matched_gain_samples_row_by_row():
    tok = np.stack([TOK, TOK])
    got = matched_gain_samples(tok, np.stack([ACC + 1.0, ACC - 2.0]), tok, np.stack([ACC, ACC]))
    assert np.allclose(got, [1.0, -2.0])
