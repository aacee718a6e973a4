"""Incremental ordered-majority vote over completed branches (the "pool").

Every controller that votes on finished branches (SC/ASC/ESC in read order,
CMC in completion order, the learned policy's pool features) asks for the same
statistic, and recomputing it from [E,B] every round is the dominant cost. The
env instead keeps per-episode tallies (count and first completion key of each
final answer) and updates the vote only for the episodes that completed
something this round. `autotts.controllers.vote.ordered_vote` is the
from-scratch definition it must agree with (tests/test_fast_paths.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotts.env.fastops import flat_nonzero
from autotts.env.state import PoolTable

UNSEEN = 1 << 62


def empty_pool(episodes: int, answers: int, device: torch.device | str) -> PoolTable:
    """Tallies for `answers` possible final-answer ids per episode."""
    return PoolTable(count=torch.zeros((episodes, answers), dtype=torch.long, device=device),
                     first=torch.full((episodes, answers), UNSEEN, dtype=torch.long, device=device))


def add_completions(pool: PoolTable, summary: dict[str, Tensor], rows: Tensor, answers: Tensor,
                    keys: Tensor) -> None:
    """Fold completions (episode row, final answer id, completion key) into `pool` and `summary`, in place.

    `summary` holds pool_winner/pool_top1/pool_top2/pool_size [E]. With at most one
    completion per episode the leader changes locally (`_add_one`); otherwise the
    tallies take all completions at once and the touched episodes are re-voted
    from their tallies (`_revote`), which does not depend on the order they came in.
    """
    if rows.numel() == 0:
        return
    if rows.numel() == 1 or bool((rows[1:] > rows[:-1]).all()):
        _add_one(pool, summary, rows, answers, keys)  # at most one completion per episode, rows ascending
        return
    cell = rows * pool.count.shape[1] + answers
    pool.count.view(-1).index_add_(0, cell, torch.ones_like(cell))
    pool.first.view(-1).scatter_reduce_(0, cell, keys, reduce="amin")
    touched = torch.zeros(pool.count.shape[0], dtype=torch.bool, device=rows.device).index_fill_(0, rows, True)
    _revote(pool, summary, flat_nonzero(touched))


def _revote(pool: PoolTable, summary: dict[str, Tensor], rows: Tensor) -> None:
    """Recompute the summary of episodes `rows` from their tallies: most completions, ties to the earliest first key."""
    count, first = pool.count.index_select(0, rows), pool.first.index_select(0, rows)
    # Keys are < 2^41 and counts <= 2^20, so count * 2^42 - first orders by count, then by earliest key.
    best = (count * (1 << 42) - first).argmax(1, keepdim=True)
    top1 = count.gather(1, best)
    summary["pool_winner"].index_copy_(0, rows, torch.where(top1 > 0, best, -1).squeeze(1))
    summary["pool_top1"].index_copy_(0, rows, top1.squeeze(1))
    summary["pool_top2"].index_copy_(0, rows, count.scatter(1, best, 0).amax(1))
    summary["pool_size"].index_copy_(0, rows, count.sum(1))


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
    # With no leader yet (w = -1, t1 = 0) the new answer takes the lead whatever fw reads.
    fw = first.index_select(0, rows * width + w.clamp(min=0))
    same = a == w
    takes = ~same & ((c > t1) | ((c == t1) & (f < fw)))
    summary["pool_top2"].scatter_(0, rows, torch.where(same, t2, torch.where(takes, t1, torch.maximum(t2, c))))
    summary["pool_top1"].scatter_(0, rows, torch.maximum(t1, c))  # c = t1 + 1 if same, c >= t1 if it takes the lead
    summary["pool_winner"].scatter_(0, rows, torch.where(takes, a, w))
    summary["pool_size"].scatter_(0, rows, size + 1)
