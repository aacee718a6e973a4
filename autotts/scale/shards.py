"""Split a population into contiguous shards, and merge the shards' fitness and metrics back.

A member's fitness depends only on its weights and the generation's batch, so
scoring rows lo:hi on their own gives the rows the whole population would get:
the merged result is the one-process result.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch
from torch import Tensor

Scores = tuple[Tensor, dict[str, Tensor]]  # fitness [P], per-member metrics {name: [P]}


class PopulationObjective(Protocol):
    """What scale-out shards: an objective scoring population rows independently (discovery's `Objective`).

    Scale is a service of discovery, so it names the shape it needs instead of importing the class.
    """

    stores: list
    device: torch.device

    def sample(self, generator: torch.Generator) -> Any: ...

    def __call__(self, weights: Tensor, batch: Any) -> Scores: ...


class ObjectiveBuilder(Protocol):
    """A picklable way to rebuild the objective in another process (discovery's `ObjectiveRecipe`)."""

    device: str   # "cuda": the worker's GPU when it has one
    threads: int  # torch intra-op threads of the worker

    def build(self) -> PopulationObjective: ...


def shard_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous [lo, hi) ranges covering 0..n; sizes differ by at most one, the larger first."""
    base, extra = divmod(n, parts)
    bounds, lo = [], 0
    for i in range(parts):
        hi = lo + base + (i < extra)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def merge(parts: Sequence[Scores]) -> Scores:
    """Concatenate shard scores in order (every shard reports the same metric names)."""
    fitness = torch.cat([f.cpu() for f, _ in parts])
    names = list(parts[0][1])
    return fitness, {k: torch.cat([m[k].cpu() for _, m in parts]) for k in names}


def pack(scores: Scores, names: Sequence[str], rows: int) -> Tensor:
    """[rows, 1 + metrics] float64 table of a shard (zero rows below its members): one collective carries all."""
    fitness, metrics = scores
    table = torch.stack([fitness.double()] + [metrics[k].double().to(fitness.device) for k in names], dim=1)
    return torch.nn.functional.pad(table, (0, 0, 0, rows - table.shape[0]))


def unpack(tables: Tensor, bounds: Sequence[tuple[int, int]], names: Sequence[str]) -> Scores:
    """Scores of the whole population from gathered tables [shards, rows, 1 + metrics]."""
    table = torch.cat([tables[i, : hi - lo] for i, (lo, hi) in enumerate(bounds)]).cpu()
    return table[:, 0].float(), {k: table[:, 1 + i] for i, k in enumerate(names)}
