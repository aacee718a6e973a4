"""The search objective scored by a pool of Ray actors, each holding the stores once.

Each actor builds its objective from a recipe (`ObjectiveBuilder`, discovery's `ObjectiveRecipe`) when the pool starts;
a generation then ships only the population shard (a few KB of weights) and
the batch (put in the object store once, shared by all actors). The driver
keeps a local objective for what needs no rollout (sampling the batch).

`address` joins an existing cluster (``ray.init(address=...)``: "auto", "host:port",
"ray://host:10001"); without one a local cluster sized to the pool is started,
and shut down again by `close`. On a cluster, every node must have autotts
installed and the stores at the same names (the recipe's fingerprints check it).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from autotts.errors import AutottsError
from autotts.scale.shards import ObjectiveBuilder, PopulationObjective, Scores, merge, shard_bounds


class ObjectiveWorker:
    """One Ray actor's state: the objective, built once (`setup`), then scoring shards (`evaluate`)."""

    def __init__(self, recipe: ObjectiveBuilder):
        self.recipe = recipe
        self.objective: PopulationObjective | None = None

    def setup(self) -> str:
        """Load the stores and build the objective; returns the device it runs on."""
        torch.set_num_threads(self.recipe.threads)
        self.objective = self.recipe.build()
        return str(self.objective.device)

    def evaluate(self, weights: Tensor, batch: Any) -> Scores:
        assert self.objective is not None, "setup() first"
        fitness, metrics = self.objective(weights.to(self.objective.device), batch)
        return fitness.cpu(), {k: v.cpu() for k, v in metrics.items()}


class RayObjective:
    """Callable like the objective (``(weights [P, D], batch) -> (fitness [P], metrics)``), scored over actors."""

    def __init__(self, local: PopulationObjective, recipe: ObjectiveBuilder, actors: int, address: str | None = None):
        if actors < 1:
            raise AutottsError(f"search.num_actors={actors}: expected >= 1 for a Ray pool")
        self.local, self.recipe, self.size, self.address = local, recipe, actors, address
        self.actors: list[Any] = []
        self.started_ray = False
        self.start()

    @property
    def stores(self) -> list:
        return self.local.stores

    def sample(self, generator: torch.Generator) -> Any:
        return self.local.sample(generator)

    def start(self) -> None:
        """Connect to (or start) Ray and build the objective on every actor; one-line errors."""
        ray = _ray()
        self.started_ray = connect(self.address, self.size)
        try:
            remote = ray.remote(num_cpus=1, num_gpus=self._gpus_per_actor(ray))(ObjectiveWorker)
            self.actors = [remote.remote(self.recipe) for _ in range(self.size)]
            _get([a.setup.remote() for a in self.actors])
        except BaseException:
            self.close()
            raise

    def _gpus_per_actor(self, ray: Any) -> float:
        """A fair share of the cluster's GPUs when the run is on CUDA (none otherwise, or on a CPU cluster)."""
        if self.recipe.device != "cuda":
            return 0
        return min(1.0, float(ray.cluster_resources().get("GPU", 0)) / self.size)

    def __call__(self, weights: Tensor, batch: Any) -> Scores:
        if not self.actors:
            self.start()  # closed at the end of a fit, used again (a resumed fit in the same process)
        ray = _ray()
        shipped = ray.put(batch)
        rows = weights.detach().as_subclass(torch.Tensor).cpu()  # plain: EvoTorch's are read-only
        bounds = [(lo, hi) for lo, hi in shard_bounds(rows.shape[0], self.size) if hi > lo]
        futures = [actor.evaluate.remote(rows[lo:hi], shipped) for actor, (lo, hi) in zip(self.actors, bounds)]
        return merge(_get(futures))

    def close(self) -> None:
        """Stop the actors, and the Ray session if this pool started it."""
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.started_ray and ray.is_initialized():
            ray.shutdown()
        self.started_ray = False


def connect(address: str | None, actors: int) -> bool:
    """Join `address`, or start a local cluster with a CPU per actor; False if Ray was already up."""
    ray = _ray()
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}  # actor logs would interleave our stdout
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=actors, include_dashboard=False, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = f"search.ray_address={address}" if address else "a local Ray cluster"
        raise AutottsError(f"{where}: could not start/join Ray ({str(err).splitlines()[0]})") from None
    return True


def _get(refs: list) -> list:
    """`ray.get`, re-raising a worker's `AutottsError` as itself (one line, not a remote traceback)."""
    ray = _ray()
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, AutottsError):
            raise AutottsError(str(cause)) from None
        raise


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AutottsError("search.num_actors > 0 needs Ray: pip install 'autotts[scale]'") from None
    return ray
