"""A picklable recipe for the search objective: store specs and configs, not stores.

The ES `Evaluator` never pickles its objective (the stores are large and
rebuilt from config). A worker in another process or on another node gets
this recipe instead, loads the stores once, and checks each against the
driver's fingerprint -- so a different file under the same name, or another
data root, fails in one line instead of scoring on other data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from autotts.controllers.learned import ActionSpec, GuardSpec
from autotts.controllers.policy import PolicyShape
from autotts.discovery.objective import Objective, ObjectiveConfig
from autotts.errors import AutottsError
from autotts.store.replay_store import ReplayStore


@dataclass(frozen=True)
class ObjectiveRecipe:
    stores: tuple[str, ...]          # load_store specs (file paths made absolute)
    fingerprints: tuple[str, ...]    # what the driver loaded under each spec
    objective: ObjectiveConfig
    shape: PolicyShape
    spec: ActionSpec
    guards: tuple[GuardSpec, ...]
    device: str = "cpu"              # "cuda": the worker's GPU when it has one
    threads: int = 1                 # torch intra-op threads of the worker
    step_mode: str = "auto"          # env step (auto: dense on the worker's GPU, sparse on CPU)

    @classmethod
    def of(cls, settings: Any, stores: Sequence[ReplayStore], device: torch.device | str) -> "ObjectiveRecipe":
        """The recipe of a run's search objective (`settings`: `autotts.discovery.settings.Settings`)."""
        return cls(tuple(_absolute(s) for s in settings.search_stores), tuple(s.fingerprint for s in stores),
                   settings.objective, settings.shape, settings.spec, tuple(settings.guards),
                   torch.device(device).type, settings.threads, settings.step_mode)

    def load_stores(self) -> list[ReplayStore]:
        """The stores, each checked against the driver's fingerprint."""
        from autotts.store import load_store

        stores = [load_store(spec) for spec in self.stores]
        for spec, store, expected in zip(self.stores, stores, self.fingerprints):
            if store.fingerprint != expected:
                raise AutottsError(f"store {spec!r}: worker loaded fingerprint {store.fingerprint}, the driver "
                                   f"{expected} (same name, different data: check the worker's files/AUTOTTS_DATA)")
        return stores

    def build(self) -> Objective:
        """The objective on this worker's device (CUDA only where asked for and present)."""
        device = "cuda" if self.device == "cuda" and torch.cuda.is_available() else "cpu"
        return Objective(self.load_stores(), self.objective, self.shape, self.spec, self.guards,
                         self.step_mode).to(device)


def _absolute(spec: str) -> str:
    """A spec naming an existing file becomes absolute (workers may start elsewhere); names stay names."""
    path = Path(spec)
    return str(path.resolve()) if path.is_file() else spec
