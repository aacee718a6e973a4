"""The Lightning module of discovery: one ES generation per training step, validation every k generations.

Lightning drives the loop (devices, progress bar, checkpoints, loggers); the
module owns the ES state. Generation g's episodes and β values come from a
generator seeded by (seed, g), and the searcher (distribution, optimiser state,
RNG) is pickled into every checkpoint with the generation counter, the best
validated weights and the validation history -- so a run resumed from a
checkpoint makes exactly the generations an uninterrupted run makes.

An "epoch" is the stretch of generations between two validations: the training
dataloader holds the indices of those generations (rebuilt each epoch from the
generation counter), and the validation loop runs once at its end.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from autotts.discovery.knob import split_of
from autotts.discovery.search import (center_of, evaluator_of, load_searcher, make_searcher, restart_length,
                                     restart_seed, save_searcher, stdev_of)
from autotts.discovery.settings import Settings
from autotts.discovery.validation import ValidationResult, Validator
from autotts.discovery.checkpoints import STATE_KEY
from autotts.errors import AutottsError
from autotts.discovery.scale_out import SearchObjective, search_objective
from autotts.store.replay_store import ReplayStore


def generation_generator(seed: int, generation: int) -> torch.Generator:
    """The generator of generation `generation`'s common random numbers (episodes, β values)."""
    state = np.random.SeedSequence([int(seed), int(generation)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


class _Recording:
    """Objective wrapper that keeps the fitness and metrics of the population it last scored."""

    def __init__(self, objective: SearchObjective):
        self.objective = objective
        self.fitness: Tensor | None = None
        self.metrics: dict[str, Tensor] = {}

    def __call__(self, weights: Tensor, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        fitness, self.metrics = self.objective(weights, batch)
        self.fitness = fitness.detach().cpu()
        return fitness, self.metrics


class DiscoveryModule(pl.LightningModule):
    """ES over `BetaPolicy` weights; `best` holds the best validated weights so far."""

    def __init__(self, settings: Settings, search_stores: list[ReplayStore], validation_stores: list[ReplayStore],
                 center: Tensor, start_of: Callable[[int], Tensor] | None = None):
        super().__init__()
        self.automatic_optimization = False
        self.settings, self.center0 = settings, center.detach().float().cpu()
        self.start_of = start_of            # restart k's starting weights (search.restarts > 1), made when due
        self.search_stores, self.validation_stores = search_stores, validation_stores
        self.searcher: Any = None
        self.objective: SearchObjective | None = None  # in-process, over Ray actors, or over DDP ranks
        self.validator: Validator | None = None
        self.generation = 0
        self.best: Tensor | None = None
        self.best_score = -math.inf
        self.best_generation = -1
        self.best_knob = False              # whether the best validated weights keep the knob rule
        self.finalists: list[dict] = []     # the highest-scoring validated generations (monotone.finalists)
        self.history: list[dict] = []       # per generation: fitness of every member, metric means
        self.validations: list[dict] = []   # per validation: generation, score, β-sweep rows
        self.deadline: float | None = None  # time.monotonic() by which generations must stop (budget)
        self.gen_seconds = 0.0
        self.val_seconds = 0.0
        self.started = time.monotonic()    # validation entries record the seconds since (anytime curves)

    # ---- setup ---------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self.ensure_ready()

    def ensure_ready(self) -> None:
        """Objective, validator and (unless restored from a checkpoint) searcher, on the module's device."""
        s, device = self.settings, self.device
        if self.objective is None:
            self.objective = search_objective(s, self.search_stores, device, self)
        if self.validator is None:
            self.validator = Validator(self.validation_stores, s.validation, s.objective, s.shape, s.spec, s.guards,
                                       device, [split_of(spec) for spec in s.validation_stores],
                                       s.step_mode)
        if self.searcher is None:
            self.searcher = make_searcher(s.search, self.center0, s.seed, device, head_level=s.shape.head_level(),
                                          shape=s.shape)

    def configure_optimizers(self) -> None:
        return None  # ES updates its own distribution; nothing for a torch optimiser to do

    def train_dataloader(self) -> DataLoader:
        """The generation indices up to the next validation point."""
        g, k = self.generation, self.settings.trainer.validate_every
        end = min((g // k + 1) * k, self.settings.trainer.generations)
        return DataLoader(list(range(g, max(end, g + 1))), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader([0], batch_size=None)

    def on_train_start(self) -> None:
        if self.generation == 0:
            self.validate()  # the starting point (e.g. the imitation warm start) is a candidate too
        if self.generation >= self.settings.trainer.generations:
            self.trainer.should_stop = True  # resumed from a finished run: straight to validation and export

    # ---- one generation ---------------------------------------------------------------------------
    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        if self.generation >= self.settings.trainer.generations:
            self.trainer.should_stop = True
            return
        if int(batch) != self.generation:
            raise RuntimeError(f"dataloader gave generation {int(batch)}, module is at {self.generation}")
        self._maybe_restart()
        start = time.monotonic()
        fitness, metrics = self._generation()
        self.gen_seconds = time.monotonic() - start
        self._log_generation(self.generation, fitness, metrics)
        self.generation += 1

    def restart(self, generation: int | None = None) -> int:
        """The restart segment `generation` (default: the current one) lies in; 0 without restarts."""
        t = self.settings.trainer
        length = restart_length(self.settings.search.restarts, t.generations, t.validate_every)
        return (self.generation if generation is None else generation) // length

    def _maybe_restart(self) -> None:
        """At a segment's first generation, a fresh searcher around restart k's own start (its own seed).

        The previous segment's last centre was validated at this generation count, so it stays a candidate:
        the export picks among the validated generations of every segment by the same rule.
        """
        k, s = self.restart(), self.settings
        if k == 0 or self.restart(self.generation - 1) == k:
            return
        center = self.start_of(k) if self.start_of is not None else self.center0
        self.searcher = make_searcher(s.search, center, restart_seed(s.seed, k), self.device,
                                      head_level=s.shape.head_level(), shape=s.shape)

    def _generation(self) -> tuple[Tensor, dict[str, Tensor]]:
        """One ES step on generation g's common random numbers; the population's fitness and metrics."""
        assert self.objective is not None
        batch_id = self.generation // max(1, self.settings.objective.hold)  # `hold` generations share a batch
        data = self.objective.sample(generation_generator(self.settings.seed, batch_id))
        recording = _Recording(self.objective)
        evaluator_of(self.searcher).bind(recording, data)
        self.searcher.step()
        assert recording.fitness is not None
        return recording.fitness, recording.metrics

    def _log_generation(self, g: int, fitness: Tensor, population: dict[str, Tensor]) -> None:
        best = int(fitness.argmax())
        metrics = {"train/fitness_mean": float(fitness.mean()), "train/fitness_max": float(fitness.max()),
                   "train/stdev": stdev_of(self.searcher), "train/center_norm": float(center_of(self.searcher).norm()),
                   "train/seconds": self.gen_seconds}
        for key, values in population.items():
            metrics[f"train/{key}"] = float(values.mean())
            metrics[f"train/best_{key}"] = float(values[best])
        self.history.append({"generation": g, "fitness": fitness.tolist(),
                             **{k.removeprefix("train/"): v for k, v in metrics.items()}})
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=g)
        self.log_dict({"fit": metrics["train/fitness_mean"], "acc": metrics["train/accuracy"],
                       "tok": metrics["train/tokens_rel"]}, prog_bar=True, logger=False, on_step=True, batch_size=1)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Stop in time to validate and export within the wall-clock budget."""
        if self.deadline is None:
            return
        stop = time.monotonic() + self.gen_seconds + self.final_seconds() > self.deadline
        if self.trainer.world_size > 1:
            stop = self.trainer.strategy.broadcast(stop, 0)  # DDP ranks must stop at the same generation
        if stop:
            self.trainer.should_stop = True

    def teardown(self, stage: str) -> None:
        """Release what the objective holds outside this process (Ray actors); it restarts if used again."""
        close = getattr(self.objective, "close", None)
        if close is not None:
            close()

    def final_seconds(self) -> float:
        """What must fit after the next generation: two validations, the finalists' and tops' re-checks, and
        the teacher switch's two sweeps (CMC's, the policy's at its inner β) if it is on."""
        s = self.settings
        checks = s.monotone.finalists + len(s.monotone.tops) + 2 * s.monotone.teacher_switch
        monotone = checks * (s.monotone.betas * s.monotone.seeds) / \
            (len(s.validation.betas) * s.validation.seeds)
        return max(60.0 * s.trainer.reserve_minutes, 1.2 * self.val_seconds * (2.0 + monotone))

    # ---- validation -------------------------------------------------------------------------------
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        entry = self.validate()
        self.log("val/score", entry["score"], prog_bar=True, logger=False, batch_size=1)

    def on_validation_epoch_end(self) -> None:
        if self.generation >= self.settings.trainer.generations:
            self.trainer.should_stop = True

    def validate(self) -> dict:
        """Validate the search centre (once per generation count); keep it if it is the best so far.

        Best = keeps the knob rule, then the highest score: a generation that breaks the rule is kept
        only while no validated one keeps it. Before the first generation the centre is the starting
        point (GA has no centre until it has a best).
        """
        if self.validations and self.validations[-1]["generation"] == self.generation:
            return self.validations[-1]
        self.ensure_ready()
        assert self.validator is not None
        start = time.monotonic()
        weights = self.center0 if self.generation == 0 else center_of(self.searcher).detach().cpu()  # GA: no centre
        result = self.validator(weights)
        self.val_seconds = time.monotonic() - start
        knob = result.knob_holds
        improved = (knob, result.score) > (self.best_knob, self.best_score)
        if improved:
            self.best, self.best_score, self.best_generation = weights, result.score, self.generation
            self.best_knob = knob
        entry = {"generation": self.generation, "restart": self.restart(max(0, self.generation - 1)),
                 "score": result.score, "monotone_drop": result.monotone_drop,
                 "knob": knob, "knob_failures": list((result.knob or {}).get("failures", [])), "best": improved,
                 "elapsed": time.monotonic() - self.started, "curve": result.curve(), "rows": result.rows()}
        self.validations.append(entry)
        self._keep_finalist(weights, result.score, knob)
        self._log_validation(result)
        return entry

    def _keep_finalist(self, weights: Tensor, score: float, knob: bool) -> None:
        """Keep the `monotone.finalists` highest-scoring validated weights (re-checked at the end)."""
        self.finalists.append({"generation": self.generation, "score": score, "knob": knob, "weights": weights})
        self.finalists.sort(key=lambda f: -f["score"])
        del self.finalists[self.settings.monotone.finalists:]

    def _log_validation(self, result: ValidationResult) -> None:
        if self.logger is None:
            return
        metrics = {"val/score": result.score, "val/monotone_drop": result.monotone_drop,
                   "val/knob": float(result.knob_holds),
                   "val/best_score": self.best_score, "val/seconds": self.val_seconds}
        for point in result.curve():
            metrics[f"val/accuracy@beta={point['beta']:g}"] = point["accuracy"]
            metrics[f"val/tokens@beta={point['beta']:g}"] = point["tokens"]
        self.logger.log_metrics(metrics, step=self.generation)
        log_table = getattr(self.logger, "log_table", None)
        if log_table is not None:
            rows = result.rows()
            log_table(key="val/beta_sweep", columns=list(rows[0]), data=[list(r.values()) for r in rows],
                      step=self.generation)

    # ---- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"generation": self.generation, "searcher": save_searcher(self.searcher),
                "algorithm": self.settings.search.algorithm, "policy_size": self.settings.shape.size,
                "best": self.best, "best_score": self.best_score, "best_generation": self.best_generation,
                "best_knob": self.best_knob, "history": self.history, "validations": self.validations,
                "finalists": self.finalists, "seconds": time.monotonic() - self.started}

    def load_state(self, state: dict) -> None:
        s = self.settings
        if state.get("algorithm") != s.search.algorithm or state.get("policy_size") != s.shape.size:
            raise AutottsError(f"checkpoint: made with search.algorithm={state.get('algorithm')} and "
                               f"{state.get('policy_size')} policy weights; this config has {s.search.algorithm} "
                               f"and {s.shape.size}")
        self.searcher = load_searcher(state["searcher"])
        self.generation = int(state["generation"])
        self.best, self.best_score = state["best"], float(state["best_score"])
        self.best_generation = int(state["best_generation"])
        self.best_knob = bool(state.get("best_knob", False))
        self.history, self.validations = list(state["history"]), list(state["validations"])
        self.finalists = list(state.get("finalists", []))
        self.started -= float(state.get("seconds", 0.0))  # a resumed run's clock counts the time before it too

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[STATE_KEY] = self.state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if STATE_KEY not in checkpoint:
            raise AutottsError("checkpoint: not an autotts discovery checkpoint (no ES state)")
        self.load_state(checkpoint[STATE_KEY])
