"""Scale-out end to end: the smoke search over 2 Ray actors and over 2 DDP ranks (gloo) equals the one-process run.

Same seed, same generations: every member's fitness in every generation, and
the best validated score, must be identical -- sharding may move work, never
change it. Sized for 2 CPU cores (Ray and gloo start-up dominate).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from train_support import ROOT, python, subprocess_env, train_cfg

from autotts.discovery.train import TrainResult, fit
from autotts.scale.ray_pool import RayObjective

RUN = ["+experiment=smoke", "trainer.progress_bar=false", "logger=none", "trainer.accelerator=cpu",
       "trainer.generations=3", "trainer.validate_every=3", "validation.seeds=1", "validation.betas=[0.5]",
       "monotone.seeds=1"]
GENERATIONS = 3


def fitness(history: list[dict]) -> list[list[float]]:
    return [h["fitness"] for h in history]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> TrainResult:
    result = fit(train_cfg(*RUN), tmp_path_factory.mktemp("one"))
    assert len(result.history) == GENERATIONS
    assert len({f for g in fitness(result.history) for f in g}) > 2  # members differ: a real search
    return result


def test_ray_actors_search_like_one_process(one_process, tmp_path, monkeypatch) -> None:
    import ray

    calls: list[int] = []
    score = RayObjective.__call__

    def counted(self: RayObjective, weights: torch.Tensor, batch: object) -> tuple:
        calls.append(len(self.actors))
        return score(self, weights, batch)

    monkeypatch.setattr(RayObjective, "__call__", counted)
    result = fit(train_cfg(*RUN, "search.num_actors=2"), tmp_path)
    assert calls == [2] * GENERATIONS  # every generation scored by the two actors
    assert fitness(result.history) == fitness(one_process.history)
    assert result.best_score == one_process.best_score and result.best_generation == one_process.best_generation
    assert not ray.is_initialized()  # the pool shut down the local cluster it started


def test_ddp_on_gloo_searches_like_one_process(one_process, tmp_path: Path) -> None:
    proc = subprocess.run([python(), "train.py", *RUN, "trainer.devices=2", f"hydra.run.dir={tmp_path}"], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "train_ddp_process_1.log").is_file()  # Lightning launched rank 1
    assert proc.stdout.count("generations in") == 1 and proc.stdout.strip().splitlines()[-1] == str(tmp_path / "export")
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["autotts"]
    assert fitness(state["history"]) == fitness(one_process.history)
    assert state["best_score"] == one_process.best_score
