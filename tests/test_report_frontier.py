"""Curve comparisons: interpolation in tokens (no envelope), tokens to reach a target, matched-token gains."""

from __future__ import annotations

import math

import numpy as np

from autotts.evaluate.frontier import (accuracy_at, accuracy_at_rows, matched_gain, matched_gain_samples,
                                      tokens_to_reach)

TOK = np.array([1000.0, 10000.0, 100000.0])
ACC = np.array([10.0, 20.0, 40.0])


def test_accuracy_at_is_linear_in_tokens_undefined_below_and_the_dearest_above():
    got = accuracy_at(TOK, ACC, np.array([1000.0, 5500.0, 10000.0, 55000.0, 500.0, 2e5]))
    assert np.allclose(got[:4], [10.0, 15.0, 20.0, 30.0])
    assert np.isnan(got[4]) and got[5] == 40.0  # no setting fits 500 tokens; 2e5 buys the dearest setting


def test_accuracy_at_is_the_mixture_of_the_bracketing_settings():
    """Running a on a share w of the questions and b on the rest lands exactly on the line."""
    w = 0.3
    mix_tokens, mix_acc = w * TOK[1] + (1 - w) * TOK[2], w * ACC[1] + (1 - w) * ACC[2]
    assert np.isclose(accuracy_at(TOK, ACC, np.array([mix_tokens]))[0], mix_acc)


def test_accuracy_at_keeps_a_falling_top_no_envelope():
    """A dearer setting that loses accuracy is not credited with a cheaper one's accuracy."""
    acc = np.array([10.0, 30.0, 20.0])
    assert np.isclose(accuracy_at(TOK, acc, np.array([100000.0]))[0], 20.0)
    assert np.isclose(accuracy_at(TOK, acc, np.array([55000.0]))[0], 25.0)


def test_accuracy_at_rows_interpolates_each_row_at_its_own_level():
    tok = np.stack([TOK, 2 * TOK])
    got = accuracy_at_rows(tok, np.stack([ACC, ACC]), np.array([[5500.0], [11000.0]]))
    assert np.allclose(got, [[15.0], [15.0]])


def test_accuracy_at_sorts_points_by_tokens():
    assert np.allclose(accuracy_at(TOK[::-1], ACC[::-1], np.array([10000.0])), [20.0])


def test_tokens_to_reach_interpolates_the_first_crossing():
    assert math.isclose(tokens_to_reach(TOK, ACC, 15.0), 5500.0)
    assert tokens_to_reach(TOK, ACC, 5.0) == 1000.0  # reached by the cheapest point: no extrapolation
    assert tokens_to_reach(TOK, ACC, 40.0) == 100000.0
    assert tokens_to_reach(TOK, ACC, 41.0) == math.inf


def test_tokens_to_reach_takes_the_first_crossing_of_a_non_monotone_curve():
    assert tokens_to_reach(np.array([1e3, 1e4, 1e5]), np.array([10.0, 30.0, 20.0]), 25.0) < 1e4


def test_matched_gain_skips_baseline_points_cheaper_than_the_curve():
    gain, n = matched_gain(TOK, ACC + 3.0, np.array([500.0, 1000.0, 10000.0, 1e6]), np.array([0.0, 10.0, 20.0, 99.0]))
    assert n == 3 and math.isclose(gain, (3.0 + 3.0 + (43.0 - 99.0)) / 3)  # 1e6: ours' dearest point, 43
    gain, n = matched_gain(TOK, ACC, np.array([10.0]), np.array([5.0]))
    assert math.isnan(gain) and n == 0


def test_matched_gain_samples_row_by_row():
    tok = np.stack([TOK, TOK])
    got = matched_gain_samples(tok, np.stack([ACC + 1.0, ACC - 2.0]), tok, np.stack([ACC, ACC]))
    assert np.allclose(got, [1.0, -2.0])
