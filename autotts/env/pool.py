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
POOL_FIELDS = ("pool_winner", "pool_top1", "pool_top2", "pool_size")  # the vote summary in `Observation`


def empty_pool(episodes: int, answers: int, device: torch.device | str) -> PoolTable:
    """Tallies for `answers` possible final-answer ids per episode."""
    return PoolTable(count=torch.zeros((episodes, answers), dtype=torch.long, device=device),
                     first=torch.full((episodes, answers), UNSEEN, dtype=torch.long, device=device))


def add_completions(pool: PoolTable, summary: dict[str, Tensor], rows: Tensor, answers: Tensor,
                    keys: Tensor) -> None:
    """Fold completions (episode row, final answer id, completion key) into `pool` and `summary`, in place.

    `summary` holds pool_winner/pool_top1/pool_top2/pool_size [E]. Only the touched
    episodes' entries change; the result does not depend on the order of the lists.
    """
    if rows.numel() == 0:
        return
    if rows.numel() == 1 or bool((rows[1:] > rows[:-1]).all()):
        _add_one(pool, summary, rows, answers, keys)  # at most one completion per episode, rows ascending
    else:
        _add_many(pool, summary, rows, answers, keys)


def _add_many(pool: PoolTable, summary: dict[str, Tensor], rows: Tensor, a: Tensor, k: Tensor) -> None:
    """Several completions per episode at once (any order): tallies first, then each touched episode's vote.

    Counts only grow, so the new leader is the old leader or one of the answers that just
    completed, and the runner-up's count is the old one or that of such a candidate.
    Answers rank by ``count * 2^42 - first key`` (keys < 2^41 and distinct per answer).
    """
    width = pool.count.shape[1]
    count, first = pool.count.view(-1), pool.first.view(-1)
    a = a.long()
    cell = rows * width + a
    count.index_add_(0, cell, torch.ones_like(cell))
    first.scatter_reduce_(0, cell, k, reduce="amin")
    winner, top1, top2 = (summary[n] for n in ("pool_winner", "pool_top1", "pool_top2"))
    c_new = count.index_select(0, cell)
    score_new = c_new * (1 << 42) - first.index_select(0, cell)
    # The old leaders of the touched episodes, as candidates too (score -1: no leader yet).
    touched = flat_nonzero(torch.zeros_like(winner, dtype=torch.bool).index_fill_(0, rows, True))
    w = winner.index_select(0, touched)
    w_cell = touched * width + w.clamp(min=0)
    c_w = count.index_select(0, w_cell) * (w >= 0)
    score_w = torch.where(w >= 0, c_w * (1 << 42) - first.index_select(0, w_cell), -1)
    best = torch.full_like(winner, -1).index_copy_(0, touched, score_w).scatter_reduce_(0, rows, score_new, "amax")
    won = flat_nonzero(score_new == best.index_select(0, rows))  # completions whose answer leads now
    winner.index_copy_(0, rows.index_select(0, won), a.index_select(0, won))
    new_w = winner.index_select(0, touched)
    top1.index_copy_(0, touched, count.index_select(0, touched * width + new_w))
    top2.scatter_reduce_(0, rows, c_new * (a != winner.index_select(0, rows)), "amax")
    top2.index_copy_(0, touched, torch.maximum(top2.index_select(0, touched), c_w * (w != new_w)))
    summary["pool_size"].index_add_(0, rows, torch.ones_like(rows))


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


def fold_dense(pool: PoolTable, summary: dict[str, Tensor], completed: Tensor, answer: Tensor, key: Tensor
               ) -> tuple[PoolTable, dict[str, Tensor]]:
    """`add_completions` over a whole [E,B] mask at once, with no host sync (the dense step's form).

    completed [E,B] marks the branches that finished this round, answer [E,B] their
    final ids, key [E,B] their completion keys. The tallies take every completion in
    one scatter; the vote of each episode that completed something is then re-read
    from its whole tally row (count first, earliest key second), which is what the
    incremental form keeps. Pure: returns new tensors.
    """
    if pool.count.shape[1] == 0:  # no final answers in the store: nothing can complete
        return pool, {k: summary[k] for k in POOL_FIELDS}
    a = torch.where(completed, answer, 0).long()
    count = pool.count.scatter_add(1, a, completed.long())
    first = pool.first.scatter_reduce(1, a, torch.where(completed, key, UNSEEN), reduce="amin")
    score = torch.where(count > 0, count * (1 << 42) - first, -1)
    best = score.argmax(1, keepdim=True)
    top1 = count.gather(1, best).squeeze(1)
    top2 = count.scatter(1, best, 0).amax(1)
    winner = torch.where(top1 > 0, best.squeeze(1), -1)
    touched = completed.any(1)
    new = {"pool_winner": torch.where(touched, winner, summary["pool_winner"]),
           "pool_top1": torch.where(touched, top1, summary["pool_top1"]),
           "pool_top2": torch.where(touched, top2, summary["pool_top2"]),
           "pool_size": summary["pool_size"] + completed.sum(1)}
    return PoolTable(count, first), new
