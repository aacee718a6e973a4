"""Paired differences of a method against CMC and SC@64 at matched tokens, per store and over stores.

The bootstrap (`autotts.evaluate.bootstrap`) resamples questions and applies the
same draw to every method's per-question results on that store (each question
keeps its seeds, and the seeds are the same shuffles for all methods), so the
difference of two methods gets an interval free of shared question difficulty.
Over several stores (the four-model mean), each store's questions are resampled
independently and the curves are averaged over stores within each replicate.

Matched tokens use `frontier.accuracy_at` on each replicate's own curve: the
difference at CMC(β)'s token level is a function of the replicate's figures at
the two β's of ours that bracket it. Row 0 of the replicate arrays is the point
estimate (every question once), so figures and intervals share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from autotts.errors import AutottsError
from autotts.evaluate.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, interval, resample_weights
from autotts.evaluate.frontier import accuracy_at_rows
from autotts.evaluate.sweep import ANCHOR, SettingResult, setting_label

SC64_SHARE = 0.25  # ours at a quarter of SC@64's tokens against SC@64's accuracy

Key = tuple[str, float | None]  # (method, knob) of a setting


@dataclass(frozen=True)
class Difference:
    """ours − baseline (accuracy points) at one comparison, with its paired interval."""

    label: str  # what is compared, e.g. "at CMC β=0.5's tokens"
    tokens: float  # the token level compared at (ours' own tokens for a same-knob comparison)
    ours: float  # ours' accuracy there (NaN outside ours' token range)
    base: float  # the baseline's accuracy
    value: float
    lo: float
    hi: float
    baseline: str = ""  # the baseline setting, e.g. "CMC β=0.5"

    def row(self) -> dict[str, float | str]:
        return {"comparison": self.label, "baseline": self.baseline, "tokens": self.tokens, "ours_accuracy": self.ours,
                "baseline_accuracy": self.base, "difference": self.value, "lo": self.lo, "hi": self.hi}


def replicate_curves(stores: Sequence[Sequence[SettingResult]], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
                     ) -> tuple[list[Key], np.ndarray, np.ndarray]:
    """(setting keys, accuracy [1+R, S], tokens [1+R, S]) averaged over `stores`; row 0 is the point estimate.

    Store i's questions are drawn with `resample_weights(Q_i, resamples, seed + i)`, so a single store gets
    exactly the draws `summary.summarise(..., seed=seed)` uses.
    """
    if not stores:
        raise AutottsError("paired comparison: no stores")
    keys = [(r.method, r.knob) for r in stores[0]]
    acc = np.zeros((1 + resamples, len(keys)))
    tok = np.zeros_like(acc)
    for i, results in enumerate(stores):
        by_key = {(r.method, r.knob): r for r in results}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise AutottsError(f"paired comparison: store {i} lacks the setting {setting_label(*missing[0])}")
        q = len(by_key[keys[0]].question_accuracy)
        weights = np.vstack([np.full((1, q), 1.0 / q), resample_weights(q, resamples, seed + i)])
        acc += weights @ np.stack([by_key[k].question_accuracy for k in keys], axis=1)
        tok += weights @ np.stack([by_key[k].question_tokens for k in keys], axis=1)
    return keys, acc / len(stores), tok / len(stores)


def paired_differences(keys: Sequence[Key], acc: np.ndarray, tok: np.ndarray, method: str, baseline: str = "cmc",
                       confidence: float = DEFAULT_CONFIDENCE) -> list[Difference]:
    """`method` against every `baseline` setting at its tokens, at the same knob, and against SC@64.

    Comparisons whose baseline settings are absent are left out; a token level below ours' cheapest gives NaN.
    """
    ours = [i for i, k in enumerate(keys) if k[0] == method]
    if not ours:
        raise AutottsError(f"paired comparison: no settings of '{method}'")
    curve_tok, curve_acc = tok[:, ours], acc[:, ours]
    own = {keys[i][1]: i for i in ours}
    out = []
    for j, (name, knob) in enumerate(keys):
        if name != baseline:
            continue
        label = setting_label(name, knob)
        at = accuracy_at_rows(curve_tok, curve_acc, tok[:, [j]])[:, 0]
        out.append(_difference(f"at {label}'s tokens", label, tok[0, j], at, acc[:, j], confidence))
        if knob in own:
            i = own[knob]
            out.append(_difference(f"same knob ({knob:g}), tokens {tok[0, i] / tok[0, j]:.2f}× {label}'s", label,
                                   tok[0, i], acc[:, i], acc[:, j], confidence))
    if ANCHOR in keys:
        j = keys.index(ANCHOR)
        at = accuracy_at_rows(curve_tok, curve_acc, SC64_SHARE * tok[:, [j]])[:, 0]
        sc = setting_label(*ANCHOR)
        out.append(_difference(f"at {SC64_SHARE:.0%} of {sc}'s tokens", sc, SC64_SHARE * tok[0, j], at, acc[:, j],
                               confidence))
    return out


def _difference(label: str, baseline: str, tokens: float, ours: np.ndarray, base: np.ndarray,
                confidence: float) -> Difference:
    diff = ours - base
    lo, hi = interval(diff[1:], confidence)
    return Difference(label, float(tokens), float(ours[0]), float(base[0]), float(diff[0]), float(lo), float(hi),
                      baseline)


def compare(stores: Sequence[Sequence[SettingResult]], method: str, baseline: str = "cmc",
            resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0
            ) -> list[Difference]:
    """`paired_differences` of `method` on the mean over `stores` (one store: that store alone)."""
    keys, acc, tok = replicate_curves(stores, resamples, seed)
    return paired_differences(keys, acc, tok, method, baseline, confidence)


__all__ = ["Difference", "SC64_SHARE", "compare", "paired_differences", "replicate_curves"]
