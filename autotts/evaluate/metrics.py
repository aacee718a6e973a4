"""Accuracy and token figures exactly as the reference harness reports them (spec §1.4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from autotts.env.episodes import Episodes
from autotts.env.rollout import Rollout


@dataclass(frozen=True)
class Figures:
    """accuracy: percent, mean over seeds of per-seed accuracy; tokens: mean tokens per question;
    seq_tokens: mean sequential tokens (critical path) per question, averaged the same way."""

    accuracy: float
    tokens: float
    episodes: int
    seq_tokens: float


def figures(result: Rollout, episodes: Episodes) -> Figures:
    """Mean over seeds of the per-seed means, in float64 (the reference's numpy mean)."""
    seeds = episodes.seed.to(result.correct.device)
    uniq, inverse = torch.unique(seeds, return_inverse=True)
    n = torch.zeros(len(uniq), dtype=torch.float64, device=seeds.device).index_add_(
        0, inverse, torch.ones_like(seeds, dtype=torch.float64))
    acc = torch.zeros_like(n).index_add_(0, inverse, result.correct.double()) / n
    tok = torch.zeros_like(n).index_add_(0, inverse, result.tokens.double()) / n
    seq = torch.zeros_like(n).index_add_(0, inverse, result.seq_tokens.double()) / n
    return Figures(accuracy=100.0 * float(acc.mean()), tokens=float(tok.mean()), episodes=len(episodes),
                   seq_tokens=float(seq.mean()))
