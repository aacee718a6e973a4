"""The search objective across DDP ranks (Lightning, one process per device): shard, score, all-gather.

Every rank runs the same module and searcher (same seed, same updates), so it
needs the whole population's fitness each generation: it scores its own
contiguous shard and all-gathers the others' in one collective. Rank 0's
population is broadcast first, so the ranks score one population even if
floating-point noise ever set their searchers apart; rank 0 checkpoints and exports.

ES has no gradients to average, so the strategy is DDP without the
DistributedDataParallel wrapper (which also refuses a module with no parameters).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor

from autotts.errors import AutottsError
from autotts.scale.shards import PopulationObjective, Scores, pack, shard_bounds, unpack


class ESDDPStrategy(DDPStrategy):
    """DDP process group, devices and collectives; no model wrapper (ranks meet in `all_gather`)."""

    def configure_ddp(self) -> None:
        return None


class RankShards:
    """Callable like the objective: scores this rank's shard of the population, returns everyone's scores."""

    def __init__(self, objective: PopulationObjective, rank: int, world: int, gather: Callable[[Tensor], Tensor],
                 broadcast: Callable[[Tensor], Tensor]):
        self.objective, self.rank, self.world = objective, rank, world
        self.gather, self.broadcast = gather, broadcast

    @property
    def stores(self) -> list:
        return self.objective.stores

    def sample(self, generator: torch.Generator) -> Any:
        return self.objective.sample(generator)

    def __call__(self, weights: Tensor, batch: Any) -> Scores:
        if weights.shape[0] < self.world:
            raise AutottsError(f"search.popsize={weights.shape[0]}: expected >= {self.world} (one member per rank)")
        weights = self.broadcast(weights.detach().as_subclass(torch.Tensor))  # plain: EvoTorch's are read-only
        bounds = shard_bounds(weights.shape[0], self.world)
        lo, hi = bounds[self.rank]
        fitness, metrics = self.objective(weights[lo:hi], batch)
        names = list(metrics)  # same code on every rank: same order
        table = pack((fitness.to(weights.device), metrics), names, bounds[0][1] - bounds[0][0])
        return unpack(self.gather(table), bounds, names)


def world_of(module: Any) -> tuple[int, int]:
    """(rank, world size) of a LightningModule's trainer; (0, 1) outside a trainer."""
    trainer = getattr(module, "_trainer", None)
    return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)


def rank_shards(objective: PopulationObjective, module: Any) -> RankShards:
    """`objective` sharded over the ranks of `module`'s trainer (its process group: gloo on CPU, NCCL on GPUs)."""
    rank, world = world_of(module)
    return RankShards(objective, rank, world, gather=_all_gather, broadcast=_from_rank_zero)


def _all_gather(table: Tensor) -> Tensor:
    """[world, *table.shape]: every rank's `table` (same shape on all ranks)."""
    import torch.distributed as dist

    parts = [torch.empty_like(table) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, table.contiguous())
    return torch.stack(parts)


def _from_rank_zero(t: Tensor) -> Tensor:
    """Rank 0's `t` on every rank."""
    import torch.distributed as dist

    out = t.detach().clone().contiguous()
    dist.broadcast(out, src=0)
    return out


def strategy_for(strategy: str, accelerator: str, devices: Any) -> Any:
    """Lightning's strategy argument: `ESDDPStrategy` wherever a run spans several processes."""
    if strategy in ("ddp", "es_ddp") or (strategy == "auto" and _device_count(accelerator, devices) > 1):
        return ESDDPStrategy()
    if strategy.startswith(("ddp", "fsdp", "deepspeed")):
        raise AutottsError(f"trainer.strategy={strategy}: expected auto, ddp or a single-device strategy "
                           "(ES runs one process per device and keeps its state in the module)")
    return strategy


def _device_count(accelerator: str, devices: Any) -> int:
    """How many devices Lightning will use (as its `devices` argument counts them)."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str) and devices not in ("auto", "-1"):
        return len([d for d in devices.split(",") if d.strip()]) if "," in devices else int(devices)
    if isinstance(devices, int) and devices > 0:
        return devices
    gpus = torch.cuda.device_count() if accelerator in ("auto", "gpu", "cuda") else 0
    return max(gpus, 1)


def leave_process_group() -> None:
    """Destroy the DDP process group once the ranks are done together (else exit waits on gloo/NCCL teardown)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
