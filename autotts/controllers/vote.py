"""Ordered majority vote and Beta-majority confidence, batched.

The vote ranks answers by count and breaks ties by first appearance in an
ordered list (spec §0.1); here the list order is given by a per-slot `key`
(completion key, slot index, ...), so one function serves every controller.
It groups equal answers by sorting each row, so its cost is O(E·B log B)
whatever the vocabulary size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotts.env.fastops import equal, is_sync_free

_BIG = 1 << 62
_COUNT_SHIFT = 1 << 40  # counts dominate keys (keys < 2^40)


def _groups(answer: Tensor, include: Tensor, key: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Sort each row's included answers; returns (run id, run answer, first key per run, valid, sort order)."""
    e, b = answer.shape
    sentinel = torch.iinfo(torch.long).max
    vals = torch.where(include, answer.long(), sentinel)
    sorted_vals, idx = vals.sort(dim=1)
    sorted_key = torch.where(include, key, _BIG).gather(1, idx)
    starts = torch.ones_like(include)
    starts[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]
    run = starts.long().cumsum(1) - 1
    valid = sorted_vals != sentinel
    first = torch.full((e, b), _BIG, dtype=torch.long, device=answer.device)
    first.scatter_reduce_(1, run, torch.where(valid, sorted_key, _BIG), reduce="amin")
    run_answer = torch.full((e, b), -1, dtype=torch.long, device=answer.device).scatter_(1, run, sorted_vals)
    return run, run_answer, first, valid, idx


def ordered_vote(answer: Tensor, include: Tensor, key: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Winner, top1, top2 of the answers in `include`, ties to the smallest `key`.

    answer, include, key: [E,B]. Returns winner [E] (-1 if nothing included),
    top1 [E] (its count) and top2 [E] (count of the runner-up; equals top1 on a tie).
    """
    run, run_answer, first, valid, _ = _groups(answer, include, key)
    counts = torch.zeros_like(run).scatter_add_(1, run, valid.long())
    score = torch.where(counts > 0, counts * _COUNT_SHIFT - first, -_BIG)
    best = score.argmax(dim=1, keepdim=True)
    top1 = counts.gather(1, best).squeeze(1)
    top2 = counts.scatter(1, best, 0).max(dim=1).values
    winner = torch.where(top1 > 0, run_answer.gather(1, best).squeeze(1), -1)
    return winner, top1, top2


def slot_vote_table(answer: Tensor, include: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`ordered_vote` with ties to the earliest slot (key = slot index), without a sort.

    answer: [E,B] ids (excluded slots may hold -1); include: [E,B] bool.
    Sync-free: the sort form (`ordered_vote` keyed by slot), whose shapes need no host read.
    """
    if is_sync_free():
        return ordered_vote(answer, include, _slot_keys(answer))
    count, winner, top1 = _slot_counts(answer, include)
    top2 = (count * ~equal(answer, winner[:, None])).amax(1).long() if answer.numel() else top1
    return winner, top1, top2


def slot_winner(answer: Tensor, include: Tensor) -> Tensor:
    """The winner of `slot_vote_table` alone (saves the runner-up's count)."""
    if is_sync_free():
        return ordered_vote(answer, include, _slot_keys(answer))[0]
    return _slot_counts(answer, include)[1]


def _slot_keys(answer: Tensor) -> Tensor:
    """[E,B] slot index of each entry: the tie-break key of the slot vote."""
    return torch.arange(answer.shape[1], device=answer.device).expand(answer.shape)


def _slot_counts(answer: Tensor, include: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-slot count of its answer among included slots [E,B] (0 if excluded), winner [E] and top1 [E].

    Each slot looks up its answer's count in a per-episode table (one scatter-add,
    one gather); the winner is the slot with the largest ``count * B + (B - 1 - slot)``,
    i.e. the earliest slot of the most frequent answer. A row sort costs 5-20 ms
    on [3000,64] on our CPUs, this ~1-2 ms; but sizing the table reads its end on
    the host, so sync-free callers take the sort.
    """
    e, b = answer.shape
    dev = answer.device
    if answer.numel() == 0:
        empty = torch.zeros(e, dtype=torch.long, device=dev)
        return torch.zeros((e, b), dtype=torch.int32, device=dev), empty - 1, empty
    # Row e owns cells [end_e - width_e, end_e): one per id up to its largest, shifted so that -1 has one.
    # Sizing rows by their own largest id keeps the table (zeroed every call) ~4x smaller than E x vocab.
    width = answer.amax(1).long() + 2
    end = width.cumsum(0)
    cell = torch.add(answer, (end - width + 1)[:, None]).view(-1)
    small = torch.int8 if b < 128 else torch.int16  # counts <= B
    table = torch.zeros(int(end[-1]), dtype=small, device=dev)
    table.scatter_add_(0, cell, include.reshape(-1).to(small))
    count = table.index_select(0, cell).view(e, b).to(torch.int32) * include
    slot = torch.arange(b - 1, -1, -1, dtype=torch.int32, device=dev)
    best = (count * b + slot).amax(1).long()  # excluded slots score < b, below any included one
    top1 = best // b
    first = b - 1 - best % b
    winner = torch.where(top1 > 0, answer.gather(1, first[:, None]).squeeze(1).long(), -1)
    return count, winner, top1


def weighted_vote(answer: Tensor, include: Tensor, key: Tensor, weight: Tensor) -> Tensor:
    """Winner [E] by summed `weight` per answer (ties to the smallest `key`); -1 if nothing included."""
    run, run_answer, first, valid, idx = _groups(answer, include, key)
    w = torch.where(valid, weight.gather(1, idx), 0).to(torch.float64)
    mass = torch.zeros(run.shape, dtype=torch.float64, device=run.device).scatter_add_(1, run, w)
    present = torch.zeros_like(run).scatter_add_(1, run, valid.long()) > 0
    top = torch.where(present, mass, -1.0).max(dim=1, keepdim=True).values
    tied = present & (mass >= top)
    best = torch.where(tied, first, _BIG).argmin(dim=1, keepdim=True)
    return torch.where(present.any(1), run_answer.gather(1, best).squeeze(1), -1)


_CONF_TABLES: dict[str, Tensor] = {}


def confidence_table(size: int, device: torch.device | str = "cpu") -> Tensor:
    """[n, n] float64 table (n > size) of C(top1, top2) = 1 - I_0.5(top1+1, top2+1), 0 when top1 = 0.

    Computed with SciPy's betainc, bit-identical to the reference's
    ``1 - scipy.stats.beta.cdf(0.5, ...)`` (spec §0.2), so threshold tests agree exactly.
    """
    key = str(device)
    table = _CONF_TABLES.get(key)
    if table is None or table.shape[0] <= size:
        from scipy.special import betainc  # imported here: ~0.2 s of a cold start that SC/ESC/PP never need
        n = max(size, 128) + 1
        t1, t2 = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64),
                                indexing="ij")
        table = torch.from_numpy(1.0 - betainc(t1.numpy() + 1, t2.numpy() + 1, 0.5))
        table[0, :] = 0.0
        table = table.to(device)
        _CONF_TABLES[key] = table
    return table


def beta_confidence(top1: Tensor, top2: Tensor, slots: int) -> Tensor:
    """[E] float64 posterior probability that the leader's share exceeds 1/2 (spec §0.2).

    Counts never exceed `slots`, which sizes the lookup table without a host sync.
    """
    return confidence_table(slots, top1.device)[top1, top2]
