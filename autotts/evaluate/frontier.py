"""Comparing accuracy–token curves: accuracy at matched tokens, and tokens needed to reach a target.

A curve is a method's points (mean tokens per question, accuracy %) over its
knob sweep. Between points we interpolate linearly in log tokens, the axis the
plots use; we never extrapolate beyond a curve's cheapest or dearest point.
"""

from __future__ import annotations

import numpy as np


def _sorted_log(tokens: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(tokens, kind="stable")
    return np.log(np.maximum(np.asarray(tokens, dtype=float)[order], 1.0)), np.asarray(accuracy, dtype=float)[order]


def accuracy_at(tokens: np.ndarray, accuracy: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The curve's accuracy at token budgets `at` (NaN outside the curve's token range)."""
    lt, acc = _sorted_log(tokens, accuracy)
    x = np.log(np.maximum(np.asarray(at, dtype=float), 1.0))
    out = np.interp(x, lt, acc)
    out[(x < lt[0] - 1e-12) | (x > lt[-1] + 1e-12)] = np.nan
    return out


def tokens_to_reach(tokens: np.ndarray, accuracy: np.ndarray, target: float) -> float:
    """Fewest tokens at which the curve, walked in token order, first reaches `target` accuracy (inf: never)."""
    lt, acc = _sorted_log(tokens, accuracy)
    hits = np.nonzero(acc >= target - 1e-9)[0]
    if len(hits) == 0:
        return float("inf")
    i = int(hits[0])
    if i == 0 or acc[i] <= target:  # a point of the curve reaches it exactly: its own token count
        return float(np.sort(np.asarray(tokens, dtype=float))[i])
    frac = (target - acc[i - 1]) / (acc[i] - acc[i - 1])
    return float(np.exp(lt[i - 1] + frac * (lt[i] - lt[i - 1])))


def matched_gain(tokens: np.ndarray, accuracy: np.ndarray, base_tokens: np.ndarray,
                 base_accuracy: np.ndarray) -> tuple[float, int]:
    """Mean accuracy gain (points) of a curve over a baseline at the baseline's own token counts.

    Only baseline points inside the curve's token range count; returns (NaN, 0) when none does.
    """
    ours = accuracy_at(tokens, accuracy, base_tokens)
    inside = ~np.isnan(ours)
    if not inside.any():
        return float("nan"), 0
    return float(np.mean(ours[inside] - np.asarray(base_accuracy, dtype=float)[inside])), int(inside.sum())


def matched_gain_samples(tokens: np.ndarray, accuracy: np.ndarray, base_tokens: np.ndarray,
                         base_accuracy: np.ndarray) -> np.ndarray:
    """`matched_gain` for each row of [R, S] resampled curves: [R]."""
    return np.array([matched_gain(t, a, bt, ba)[0] for t, a, bt, ba in zip(tokens, accuracy, base_tokens, base_accuracy)])


def tokens_to_reach_samples(tokens: np.ndarray, accuracy: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`tokens_to_reach` for each row of [R, S] resampled curves and its own target [R]: [R]."""
    return np.array([tokens_to_reach(t, a, g) for t, a, g in zip(tokens, accuracy, target)])


__all__ = ["accuracy_at", "matched_gain", "matched_gain_samples", "tokens_to_reach", "tokens_to_reach_samples"]
