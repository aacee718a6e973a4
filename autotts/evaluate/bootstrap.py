"""Bootstrap confidence intervals that resample questions, keeping each question's seeds together.

Shuffle seeds of one question are strongly correlated (same problem, same
branches), so the unit of sampling is the question: a resample draws Q
questions with replacement and weights each by how often it was drawn. All
settings evaluated on a store share the same draws (a paired bootstrap), so
differences between methods get intervals too.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from autotts.env.episodes import Episodes

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


def question_means(values: Tensor, episodes: Episodes) -> np.ndarray:
    """[Q'] mean of `values` [E] over each question's episodes, for the questions present, in index order."""
    q = episodes.question.to(values.device)
    uniq, inverse = torch.unique(q, return_inverse=True)
    total = torch.zeros(len(uniq), dtype=torch.float64, device=q.device).index_add_(0, inverse, values.double())
    count = torch.bincount(inverse, minlength=len(uniq)).double()
    return (total / count).cpu().numpy()


def resample_weights(num_questions: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """[R, Q] weights (draw counts / Q) of `resamples` bootstrap draws of Q questions with replacement."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(num_questions, np.full(num_questions, 1.0 / num_questions), size=resamples)
    return counts / num_questions


def resampled_means(per_question: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[R, ...] means of `per_question` [..., Q] under each resample's weights [R, Q]."""
    return np.moveaxis(per_question @ weights.T, -1, 0)


def interval(samples: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN samples (undefined in that resample).

    Order statistics (no interpolation) keep ±inf samples valid: "never reached" stays inf.
    """
    tail = 100.0 * (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN bounds
        lo = np.nanpercentile(samples, tail, axis=0, method="lower")
        hi = np.nanpercentile(samples, 100.0 - tail, axis=0, method="higher")
    return lo, hi


__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_RESAMPLES", "interval", "question_means", "resample_weights",
           "resampled_means"]
