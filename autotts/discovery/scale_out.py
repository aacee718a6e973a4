"""The search objective a run asks for: in this process, over Ray actors, or over DDP ranks.

All three are called the same way by the ES (``objective(weights, batch)`` and
``objective.sample(generator)``) and give the same scores for the same seed;
only where the rollouts run differs. Discovery picks; `autotts.scale` only shards
(it never imports discovery), so every import points down the layers.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch
from torch import Tensor

from autotts.discovery.objective import Batch
from autotts.discovery.relaxed_search import GRADIENT_ALGORITHMS, make_objective
from autotts.errors import AutottsError
from autotts.scale.ranks import rank_shards, strategy_for, world_of
from autotts.store.replay_store import ReplayStore


class SearchObjective(Protocol):
    """What the discovery module needs from an objective."""

    def sample(self, generator: torch.Generator) -> Batch: ...

    def __call__(self, weights: Tensor, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]: ...


def search_objective(settings: Any, stores: Sequence[ReplayStore], device: torch.device | str,
                     module: Any = None) -> SearchObjective:
    """The objective of `settings` (`autotts.discovery.settings.Settings`) on `device`.

    `module` is the LightningModule, when its trainer may span several DDP ranks.
    """
    s = settings
    local = make_objective(s, list(stores)).to(device)
    actors = s.search.num_actors
    _, world = world_of(module)
    if s.search.algorithm in GRADIENT_ALGORITHMS and (actors or world > 1):
        raise AutottsError(f"search.algorithm={s.search.algorithm} runs in one process: it takes no "
                           "search.num_actors and no DDP ranks")
    if actors and world > 1:
        raise AutottsError(f"search.num_actors={actors} with {world} DDP ranks: shard the population over "
                           "Ray actors or over devices, not both")
    if actors:
        from autotts.discovery.recipe import ObjectiveRecipe
        from autotts.scale.ray_pool import RayObjective

        return RayObjective(local, ObjectiveRecipe.of(s, stores, device), actors, s.search.ray_address)
    if world > 1:
        return rank_shards(local, module)
    return local


def check_scale(settings: Any) -> None:
    """One-line errors for the scale-out settings, before any store is loaded."""
    search, trainer = settings.search, settings.trainer
    if search.num_actors < 0:
        raise AutottsError(f"search.num_actors={search.num_actors}: expected >= 0 (0 = score in this process)")
    if search.ray_address is not None and not (isinstance(search.ray_address, str) and search.ray_address):
        raise AutottsError(f"search.ray_address={search.ray_address!r}: expected a Ray address "
                           "(\"auto\", \"host:port\", \"ray://host:port\") or null for a local cluster")
    strategy_for(trainer.strategy, trainer.accelerator, trainer.devices)  # raises on a strategy ES cannot use
