"""One store's sweep results turned into curves with confidence intervals and frontier comparisons.

This is the in-memory form both `autotts report` and the trainer's W&B logging
use: `summarise(results)` -> `StoreSummary`, whose `*_rows()` are plain dicts
(CSV lines / W&B table rows) and which `plots.frontier_figure` draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from autotts.errors import AutottsError
from autotts.evaluate.bootstrap import (DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, interval, resample_weights,
                                        resampled_means)
from autotts.evaluate.frontier import matched_gain, matched_gain_samples, tokens_to_reach, tokens_to_reach_samples
from autotts.evaluate.paired import Difference, compare
from autotts.evaluate.sweep import ANCHOR, SettingResult, is_baseline, method_label, setting_label


@dataclass(frozen=True)
class Band:
    """Point estimates with a confidence interval [lo, hi], one entry per knob setting."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass(frozen=True)
class Curve:
    """One method's sweep on one store; `relative` is tokens / SC@64 tokens (None without the anchor)."""

    method: str
    knobs: list[float | None]
    accuracy: Band
    tokens: Band
    relative: Band | None
    wall_s: list[float]
    seq_tokens: list[float] = field(default_factory=list)  # mean sequential tokens per setting (critical path)

    @property
    def label(self) -> str:
        return method_label(self.method)


@dataclass(frozen=True)
class Comparison:
    """A statistic of `method` (against `baseline`, if any) with its confidence interval."""

    method: str
    baseline: str | None
    value: float
    lo: float
    hi: float
    points: int = 0


@dataclass(frozen=True)
class StoreSummary:
    store: str
    model: str
    dataset: str
    curves: list[Curve]
    anchor: tuple[float, float] | None  # SC@64 (accuracy %, tokens)
    matched: list[Comparison] = field(default_factory=list)  # accuracy gain at the baseline's token counts
    reach: list[Comparison] = field(default_factory=list)  # tokens to reach SC@64 accuracy, relative to its tokens
    paired: dict[str, list[Difference]] = field(default_factory=dict)  # controller -> ours − CMC / SC@64, paired
    questions: int = 0
    episodes: int = 0
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    bootstrap_seed: int = 0

    def curve(self, method: str) -> Curve:
        for c in self.curves:
            if c.method == method:
                return c
        raise KeyError(method)

    def table_rows(self) -> list[dict[str, Any]]:
        """One row per setting: accuracy, tokens and tokens relative to SC@64, each with its interval."""
        rows = []
        for c in self.curves:
            for i, knob in enumerate(c.knobs):
                row = {"store": self.store, "method": c.method, "setting": setting_label(c.method, knob), "knob": knob,
                       **_triple("accuracy", c.accuracy, i), **_triple("tokens", c.tokens, i),
                       "seq_tokens": c.seq_tokens[i]}
                if c.relative is not None:
                    row.update(_triple("tokens_vs_sc64", c.relative, i))
                rows.append(dict(row, wall_s=round(c.wall_s[i], 3)))
        return rows

    def matched_rows(self) -> list[dict[str, Any]]:
        return [{"store": self.store, "method": m.method, "baseline": m.baseline, "accuracy_gain": m.value,
                 "gain_lo": m.lo, "gain_hi": m.hi, "points": m.points} for m in self.matched]

    def paired_rows(self) -> list[dict[str, Any]]:
        return [{"store": self.store, "method": m, **d.row()} for m, diffs in self.paired.items() for d in diffs]

    def reach_rows(self) -> list[dict[str, Any]]:
        if self.anchor is None:
            return []
        acc, tok = self.anchor
        return [{"store": self.store, "method": r.method, "target_accuracy": acc, "tokens": r.value * tok,
                 "tokens_lo": r.lo * tok, "tokens_hi": r.hi * tok, "tokens_vs_sc64": r.value,
                 "vs_sc64_lo": r.lo, "vs_sc64_hi": r.hi} for r in self.reach]


def as_columns(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(column names, data) of dict rows, e.g. for `wandb.Table(columns=..., data=...)`; missing keys -> None."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return columns, [[r.get(c) for c in columns] for r in rows]


def _triple(name: str, band: Band, i: int) -> dict[str, float]:
    return {name: float(band.value[i]), f"{name}_lo": float(band.lo[i]), f"{name}_hi": float(band.hi[i])}


def summarise(results: Sequence[SettingResult], store: str = "", model: str = "", dataset: str = "",
              resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
              seed: int = 0) -> StoreSummary:
    """Curves, intervals and comparisons from one store's results (all settings share the bootstrap draws)."""
    if not results:
        raise AutottsError(f"{store or 'store'}: no results to summarise")
    if len({len(r.question_accuracy) for r in results}) != 1:
        raise AutottsError(f"{store or 'store'}: results cover different question sets; "
                           "evaluate them on the same episodes")
    weights = resample_weights(len(results[0].question_accuracy), resamples, seed)
    acc_s = resampled_means(np.stack([r.question_accuracy for r in results]), weights)  # [R, S]
    tok_s = resampled_means(np.stack([r.question_tokens for r in results]), weights)
    groups = _groups(results)
    anchor = next((i for i, r in enumerate(results) if (r.method, r.knob) == ANCHOR), None)
    curves = [_curve(results, idx, acc_s, tok_s, anchor, confidence) for idx in groups.values()]
    return StoreSummary(
        store=store, model=model, dataset=dataset, curves=curves,
        anchor=None if anchor is None else (results[anchor].accuracy, results[anchor].tokens),
        matched=_matched(results, groups, acc_s, tok_s, confidence),
        reach=[] if anchor is None else _reach(results, groups, acc_s, tok_s, anchor, confidence),
        paired=_paired(results, groups, resamples, confidence, seed),
        questions=len(results[0].question_accuracy), episodes=results[0].episodes,
        resamples=resamples, confidence=confidence, bootstrap_seed=seed)


def _groups(results: Sequence[SettingResult]) -> dict[str, list[int]]:
    """Method -> indices of its settings, in first-appearance order."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(results):
        groups.setdefault(r.method, []).append(i)
    return groups


def _curve(results: Sequence[SettingResult], idx: list[int], acc_s: np.ndarray, tok_s: np.ndarray,
           anchor: int | None, confidence: float) -> Curve:
    point = lambda attr: np.array([getattr(results[i], attr) for i in idx])  # noqa: E731
    band = lambda value, samples: Band(value, *interval(samples, confidence))  # noqa: E731
    relative = None
    if anchor is not None:
        relative = band(point("tokens") / results[anchor].tokens, tok_s[:, idx] / tok_s[:, [anchor]])
    return Curve(method=results[idx[0]].method, knobs=[results[i].knob for i in idx],
                 accuracy=band(point("accuracy"), acc_s[:, idx]), tokens=band(point("tokens"), tok_s[:, idx]),
                 relative=relative, wall_s=[results[i].wall_s for i in idx],
                 seq_tokens=[results[i].seq_tokens for i in idx])


def _matched(results: Sequence[SettingResult], groups: dict[str, list[int]], acc_s: np.ndarray, tok_s: np.ndarray,
             confidence: float) -> list[Comparison]:
    """Every method against every baseline method: mean accuracy gain at the baseline's token counts."""
    out = []
    point = lambda attr, idx: np.array([getattr(results[i], attr) for i in idx])  # noqa: E731
    for method, mi in groups.items():
        for base, bi in groups.items():
            if base == method or not is_baseline(base):
                continue
            gain, n = matched_gain(point("tokens", mi), point("accuracy", mi),
                                   point("tokens", bi), point("accuracy", bi))
            samples = matched_gain_samples(tok_s[:, mi], acc_s[:, mi], tok_s[:, bi], acc_s[:, bi])
            lo, hi = interval(samples, confidence)
            out.append(Comparison(method, base, gain, float(lo), float(hi), n))
    return out


def _paired(results: Sequence[SettingResult], groups: dict[str, list[int]], resamples: int, confidence: float,
            seed: int) -> dict[str, list[Difference]]:
    """Each controller (non-baseline method) against CMC and SC@64, when the sweep has them."""
    if "cmc" not in groups and ANCHOR not in [(r.method, r.knob) for r in results]:
        return {}
    return {m: compare([results], m, "cmc", resamples, confidence, seed) for m in groups if not is_baseline(m)}


def _reach(results: Sequence[SettingResult], groups: dict[str, list[int]], acc_s: np.ndarray, tok_s: np.ndarray,
           anchor: int, confidence: float) -> list[Comparison]:
    """Tokens each method needs to reach SC@64's accuracy, as a multiple of SC@64's tokens (inf: never)."""
    out = []
    target, anchor_tokens = results[anchor].accuracy, results[anchor].tokens
    for method, idx in groups.items():
        tokens = np.array([results[i].tokens for i in idx])
        accuracy = np.array([results[i].accuracy for i in idx])
        value = tokens_to_reach(tokens, accuracy, target) / anchor_tokens
        samples = tokens_to_reach_samples(tok_s[:, idx], acc_s[:, idx], acc_s[:, anchor]) / tok_s[:, anchor]
        lo, hi = interval(samples, confidence)
        out.append(Comparison(method, None, value, float(lo), float(hi)))
    return out


__all__ = ["Band", "Comparison", "Curve", "StoreSummary", "as_columns", "summarise"]
