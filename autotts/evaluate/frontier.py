"""Comparing accuracy–token curves: accuracy at a token level, and tokens needed to reach a target.

A curve is a method's points (mean tokens per question, accuracy %) over its
knob sweep. "Accuracy at a token level" has one definition, used by `autotts
report`, scripts/compare_cmc.py and their bootstrap intervals: the points sorted
by tokens and joined by straight lines *in tokens*, with no running maximum;
above the dearest point it is the dearest point's accuracy (a larger budget buys
nothing more: one runs the dearest setting, spending less), and below the
cheapest point it is undefined (no setting fits the budget). Never extrapolated.

- Linear in tokens, not log tokens: running setting a on a share w of the
  questions and setting b on the rest costs and scores exactly the chord's
  point (both figures are means over questions), so every point of the line is
  an operating point one can actually run. A line in log tokens lies above that
  chord wherever accuracy rises, crediting accuracy no setting delivers.
- No monotone envelope: a user who sets the knob to β gets β's accuracy. If
  accuracy falls as β rises, the running maximum would credit the dear settings
  with a cheaper one's accuracy and hide the defect (issue 11's collapsing top).

The plots draw curves on a log token axis for legibility only.
"""

from __future__ import annotations

import numpy as np


def _sorted(tokens: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(tokens, kind="stable")
    return np.asarray(tokens, dtype=float)[order], np.asarray(accuracy, dtype=float)[order]


def accuracy_at(tokens: np.ndarray, accuracy: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The curve's accuracy at token levels `at` (the dearest point's above it; NaN below the cheapest)."""
    tok, acc = _sorted(tokens, accuracy)
    x = np.asarray(at, dtype=float)
    out = np.interp(x, tok, acc)  # constant beyond the dearest point
    out[x < tok[0] * (1 - 1e-12)] = np.nan
    return out


def accuracy_at_rows(tokens: np.ndarray, accuracy: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`accuracy_at` for each row of [R, S] resampled curves at that row's token levels [R, P]: [R, P]."""
    return np.stack([accuracy_at(t, a, x) for t, a, x in zip(tokens, accuracy, np.atleast_2d(at))])


def tokens_to_reach(tokens: np.ndarray, accuracy: np.ndarray, target: float) -> float:
    """Fewest tokens at which the curve, walked in token order, first reaches `target` accuracy (inf: never)."""
    tok, acc = _sorted(tokens, accuracy)
    hits = np.nonzero(acc >= target - 1e-9)[0]
    if len(hits) == 0:
        return float("inf")
    i = int(hits[0])
    if i == 0 or acc[i] <= target:  # a point of the curve reaches it exactly: its own token count
        return float(tok[i])
    frac = (target - acc[i - 1]) / (acc[i] - acc[i - 1])
    return float(tok[i - 1] + frac * (tok[i] - tok[i - 1]))


def matched_gain(tokens: np.ndarray, accuracy: np.ndarray, base_tokens: np.ndarray,
                 base_accuracy: np.ndarray) -> tuple[float, int]:
    """Mean accuracy gain (points) of a curve over a baseline at the baseline's own token counts.

    Baseline points cheaper than the curve's cheapest point do not count; returns (NaN, 0) when none does.
    """
    ours = accuracy_at(tokens, accuracy, base_tokens)
    inside = ~np.isnan(ours)
    if not inside.any():
        return float("nan"), 0
    return float(np.mean(ours[inside] - np.asarray(base_accuracy, dtype=float)[inside])), int(inside.sum())


def matched_gain_samples(tokens: np.ndarray, accuracy: np.ndarray, base_tokens: np.ndarray,
                         base_accuracy: np.ndarray) -> np.ndarray:
    """`matched_gain` for each row of [R, S] resampled curves: [R]."""
    return np.array([matched_gain(t, a, bt, ba)[0]
                     for t, a, bt, ba in zip(tokens, accuracy, base_tokens, base_accuracy)])


def tokens_to_reach_samples(tokens: np.ndarray, accuracy: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`tokens_to_reach` for each row of [R, S] resampled curves and its own target [R]: [R]."""
    return np.array([tokens_to_reach(t, a, g) for t, a, g in zip(tokens, accuracy, target)])


__all__ = ["accuracy_at", "accuracy_at_rows", "matched_gain", "matched_gain_samples", "tokens_to_reach",
           "tokens_to_reach_samples"]
