"""Incremental ordered-majority vote over completed branches (the "pool").

Every controller that votes on finished branches (SC/ASC/ESC in read order,
CMC in completion order, the learned policy's pool features) asks for the same
statistic, and recomputing it from [E,B] every round is the dominant cost. The
env instead folds in each completion as it happens, in completion-key order, so
a round costs O(completions). `autotts.controllers.vote.ordered_vote` is the
from-scratch definition it must agree with (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotts.env.state import PoolTable

UNSEEN = 1 << 62


def empty_pool(episodes: int, answers: int, device: torch.device | str) -> PoolTable:
    """Tallies for `answers` possible final-answer ids per episode."""
    return PoolTable(count=torch.zeros((episodes, answers), dtype=torch.long, device=device),
                     first=torch.full((episodes, answers), UNSEEN, dtype=torch.long, device=device))


def add_completions(pool: PoolTable, summary: dict[str, Tensor], rows: Tensor, answers: Tensor,
                    keys: Tensor) -> None:
    """Fold completions (episode row, final answer id, completion key) into `pool` and `summary`, in place.

    `summary` holds pool_winner/pool_top1/pool_top2/pool_size [E]. Completions of one
    episode are applied in key order; different episodes are applied together.
    """
    if rows.numel() == 0:
        return
    if rows.numel() == 1 or bool((rows[1:] > rows[:-1]).all()):
        _add_one(pool, summary, rows, answers, keys)  # at most one completion per episode, rows ascending
        return
    order = torch.argsort(rows * (1 << 41) + keys)
    rows, answers, keys = rows[order], answers[order], keys[order]
    pos = torch.arange(rows.numel(), device=rows.device)
    starts = torch.ones_like(rows, dtype=torch.bool)
    starts[1:] = rows[1:] != rows[:-1]
    rank = pos - torch.cummax(torch.where(starts, pos, 0), 0).values
    # Regroup rank-major so the completions of each rank form one contiguous slice.
    order = torch.argsort(rank * (1 << 41) + rows)
    rows, answers, keys = rows[order], answers[order], keys[order]
    bounds = [0] + torch.bincount(rank).cumsum(0).tolist()
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        _add_one(pool, summary, rows[lo:hi], answers[lo:hi], keys[lo:hi])


def _add_one(pool: PoolTable, summary: dict[str, Tensor], rows: Tensor, a: Tensor, k: Tensor) -> None:
    """One completion per listed episode: counts only grow by one, so the leader changes locally."""
    width = pool.count.shape[1]
    cell = rows * width + a
    count, first = pool.count.view(-1), pool.first.view(-1)
    c = count.index_select(0, cell) + 1
    count.scatter_(0, cell, c)
    f = torch.minimum(first.index_select(0, cell), k)
    first.scatter_(0, cell, f)
    w, t1, t2, size = (summary[n].index_select(0, rows) for n in ("pool_winner", "pool_top1", "pool_top2", "pool_size"))
    fw = torch.where(w >= 0, first.index_select(0, rows * width + w.clamp(min=0)), UNSEEN)
    same = a == w
    takes = ~same & ((c > t1) | ((c == t1) & (f < fw)))
    summary["pool_top2"].scatter_(0, rows, torch.where(same, t2, torch.where(takes, t1, torch.maximum(t2, c))))
    summary["pool_top1"].scatter_(0, rows, torch.where(same | takes, c, t1))
    summary["pool_winner"].scatter_(0, rows, torch.where(takes, a, w))
    summary["pool_size"].scatter_(0, rows, size + 1)
