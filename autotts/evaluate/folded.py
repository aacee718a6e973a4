"""Sweeps in one rollout: every knob of a baseline, or every β of a controller, folded into the episodes.

The episodes are tiled once per setting and each row gets its setting as a
per-episode tensor (a baseline's knob, or the `beta` context of a learned
controller), as the ES folds its population into episodes; the rollout is then
split back into one block per setting, each equal episode by episode to its own
rollout (tests/test_sweep_rollout.py).

Whether folding pays depends on where the time goes. When per-op overhead
dominates (a GPU, or few episodes per setting on CPU) one rollout of K·E rows
costs little more than one of E rows. On CPU with thousands of episodes per
setting the sparse env is memory-bound instead, and a folded batch is as wide
as the widest setting (SC@1 rows carry SC@64's slots), so there settings are
folded only up to `CPU_FOLD_ROWS` rows per rollout (`scripts/bench_env.py`
prints both ways as a ratio). The rollouts of a plan may also run in forked worker
processes (`workers`, `autotts.evaluate.parallel`), which does scale with cores.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch

from autotts.controllers.baselines import BASELINES, make_baseline
from autotts.env.episodes import Episodes, concat_episodes
from autotts.env.rollout import Rollout
from autotts.evaluate.parallel import chunks, ordered_map
from autotts.evaluate.runner import evaluate
from autotts.store.replay_store import ReplayStore

# Rows per folded rollout on CPU. Measured on Qwen3-8B/aime25 (2-core VM, one thread), seconds for the 11 CMC βs
# at 1/2/4/all per rollout: 300 episodes 1.27/-/-/0.47; 900: 1.28/0.94/0.76/0.86; 1,800: 1.69/1.46/1.33/1.74;
# 3,000: 2.3/2.1/(3: 2.1)/4.6 -- folding pays up to ~8k rows, then the wider batch costs more than it saves.
CPU_FOLD_ROWS = 8192


def fold_size(settings: int, episodes: int, device: torch.device | str, fold: int | None = None) -> int:
    """How many settings share one rollout: all on a GPU, up to `CPU_FOLD_ROWS` rows on CPU; `fold` overrides."""
    if fold is not None:
        return max(1, min(int(fold), settings))
    if torch.device(device).type != "cpu":
        return max(1, settings)
    return max(1, min(settings, CPU_FOLD_ROWS // max(1, episodes)))


def folded_controller(name: str, values: Sequence[float], episodes: int, loaded: Any = None
                      ) -> tuple[Any, dict | None]:
    """(controller, rollout context) that runs setting values[i] on rows i·E .. (i+1)·E - 1.

    Baselines take the values as their per-episode knob (CMC's is β); a learned
    controller (`loaded`, an exported controller) takes them as per-episode β.
    """
    per_row = torch.tensor([float(v) for v in values], dtype=torch.float64).repeat_interleave(episodes)
    if name in BASELINES:
        return make_baseline(name, per_row if len(values) > 1 else float(values[0])), None
    return loaded, {"beta": per_row.float()}


Method = tuple[str, Sequence[float], Any]  # (name, setting values, loaded exported controller or None)


def plan_rollouts(store: ReplayStore, episodes: Episodes, plan: Sequence[Method], fold: int | None = None,
                  workers: int = 1) -> Iterator[tuple[str, float, Rollout, float]]:
    """(method, value, rollout, wall seconds) per setting of every method of `plan`, in plan order.

    Each method's settings run `fold_size` at a time in one rollout; a folded
    rollout's wall time is shared evenly among its settings. `workers` > 1 runs
    the rollouts in that many forked processes.
    """
    e = len(episodes)
    tasks = [(name, chunk, loaded) for name, values, loaded in plan
             for chunk in chunks([float(v) for v in values], fold_size(len(values), e, store.device, fold))]

    def run(task: Method) -> list[tuple[str, float, Rollout, float]]:
        name, chunk, loaded = task
        ctrl, context = folded_controller(name, chunk, e, loaded)
        tiled = episodes if len(chunk) == 1 else concat_episodes([episodes] * len(chunk))
        result, wall = evaluate(store, tiled, ctrl, context=context)
        return [(name, v, part, wall / len(chunk)) for v, part in zip(chunk, result.split(len(chunk)))]

    for settings in ordered_map(run, tasks, workers):
        yield from settings


def sweep_rollouts(store: ReplayStore, episodes: Episodes, name: str, values: Sequence[float], loaded: Any = None,
                   fold: int | None = None, workers: int = 1) -> list[tuple[float, Rollout, float]]:
    """(value, rollout, wall seconds) per setting of one method (`plan_rollouts` with one method)."""
    return [(v, r, w) for _, v, r, w in plan_rollouts(store, episodes, [(name, values, loaded)], fold, workers)]


__all__ = ["CPU_FOLD_ROWS", "fold_size", "folded_controller", "plan_rollouts", "sweep_rollouts"]
