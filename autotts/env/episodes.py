"""Episode protocols: which question, and in which order its branches may be opened.

* reference: seeds 0..S-1; for each seed, every question's branch list is shuffled
  with CPython's ``random.Random(seed).shuffle`` (the published protocol, so
  figures reproduce to the token). Episodes are seed-major, question-minor.
* subsets: the paper's protocol; per (seed, question) a random subset of k of
  the N branches, in random order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from autotts.store.replay_store import ReplayStore


@dataclass(frozen=True)
class Episodes:
    """E episodes: question [E], branch order [E,M] (-1 padded), n_avail [E], seed [E]."""

    question: Tensor
    order: Tensor
    n_avail: Tensor
    seed: Tensor

    def __len__(self) -> int:
        return int(self.question.shape[0])

    def select(self, idx: Tensor) -> "Episodes":
        return Episodes(self.question[idx], self.order[idx], self.n_avail[idx], self.seed[idx])

    def to(self, device: torch.device | str) -> "Episodes":
        return Episodes(self.question.to(device), self.order.to(device), self.n_avail.to(device), self.seed.to(device))


@lru_cache(maxsize=4096)
def python_shuffle(n: int, seed: int) -> tuple[int, ...]:
    """The permutation CPython's ``random.Random(seed).shuffle`` applies to a list of n items."""
    perm = list(range(n))
    random.Random(seed).shuffle(perm)
    return tuple(perm)


def reference_episodes(store: ReplayStore, seeds: int = 100, questions: list[int] | None = None) -> Episodes:
    """The reference protocol: seeds 0..seeds-1 x questions, shuffled with Python's Random(seed)."""
    qs = list(range(store.num_questions)) if questions is None else questions
    n_branches = store.n_branches.tolist()
    width = max(n_branches[q] for q in qs)
    rows, qcol, scol = [], [], []
    for s in range(seeds):
        for q in qs:
            perm = python_shuffle(n_branches[q], s)
            rows.append(list(perm) + [-1] * (width - len(perm)))
            qcol.append(q)
            scol.append(s)
    return _episodes(qcol, rows, [n_branches[q] for q in qcol], scol)


def subset_episodes(store: ReplayStore, seeds: int = 64, k: int = 64, questions: list[int] | None = None,
                    base_seed: int = 0) -> Episodes:
    """The paper's protocol: per (seed, question), k of the N branches drawn without replacement."""
    qs = list(range(store.num_questions)) if questions is None else questions
    n_branches = store.n_branches.tolist()
    rows, qcol, scol, avail = [], [], [], []
    for s in range(seeds):
        rng = np.random.default_rng([base_seed, s])
        for q in qs:
            take = min(k, n_branches[q])
            rows.append(rng.permutation(n_branches[q])[:take].tolist() + [-1] * (k - take))
            qcol.append(q)
            scol.append(s)
            avail.append(take)
    return _episodes(qcol, rows, avail, scol)


def random_episodes(store: ReplayStore, count: int, generator: torch.Generator, max_branches: int | None = None,
                    stratified: bool = False) -> Episodes:
    """`count` episodes with random branch orders (training minibatches).

    Questions are uniform at random, or with `stratified` every question equally often
    (count rounded up to a multiple of the question count): which questions a batch
    holds is the largest source of noise between batches.
    """
    if stratified:
        reps = -(-count // store.num_questions)
        q = torch.arange(store.num_questions).repeat(reps)
    else:
        q = torch.randint(store.num_questions, (count,), generator=generator)
    count = q.shape[0]
    n = store.n_branches[q]
    width = store.max_branches if max_branches is None else min(max_branches, store.max_branches)
    keys = torch.rand((count, store.max_branches), generator=generator)
    keys = keys.masked_fill(torch.arange(store.max_branches)[None, :] >= n[:, None], 2.0)
    order = keys.argsort(dim=1)[:, :width]
    avail = n.clamp(max=width)
    order = order.masked_fill(torch.arange(width)[None, :] >= avail[:, None], -1)
    return Episodes(q, order, avail, torch.zeros(count, dtype=torch.long))


def concat_episodes(parts: list[Episodes]) -> Episodes:
    width = max(p.order.shape[1] for p in parts)
    pad = lambda o: torch.nn.functional.pad(o, (0, width - o.shape[1]), value=-1)  # noqa: E731
    return Episodes(torch.cat([p.question for p in parts]), torch.cat([pad(p.order) for p in parts]),
                    torch.cat([p.n_avail for p in parts]), torch.cat([p.seed for p in parts]))


def _episodes(q: list[int], rows: list[list[int]], avail: list[int], seeds: list[int]) -> Episodes:
    t = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return Episodes(t(q), t(rows), t(avail), t(seeds))
