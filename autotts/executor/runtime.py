"""The online runtime: a controller drives a live model, round by round, through `LiveEnv`.

Each round the controller sees the same `Observation` the replay env would
build, decides one `Action` per question, and the live env executes it as
batched backend calls. Time is split into controller (features, policy,
rules), env bookkeeping and backend, so the controller's overhead can be
reported as a share of model time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from autotts.executor.live_env import LiveEnv
from autotts.executor.trace import EpisodeTrace, TraceRecorder


@dataclass
class Timing:
    controller_s: float = 0.0
    env_s: float = 0.0      # snapshot + replay step, excluding generation
    backend_s: float = 0.0  # generation and probes
    rounds: int = 0

    @property
    def overhead_share(self) -> float:
        """Controller + env time as a share of backend time."""
        return (self.controller_s + self.env_s) / self.backend_s if self.backend_s > 0 else float("nan")


@dataclass
class OnlineResult:
    episodes: list[EpisodeTrace]
    timing: Timing = field(default_factory=Timing)


def run_online(controller: Any, env: LiveEnv, context: dict | None = None, max_rounds: int = 10_000) -> OnlineResult:
    """Run `controller` on every question of `env` until all have answered."""
    state = env.reset()
    memory = controller.init(state.obs, context)
    recorder = TraceRecorder(state.obs.num_episodes, tuple(getattr(controller, "reasons", ())), env.answer)
    rows = torch.arange(state.obs.num_episodes)
    timing = Timing()
    for _ in range(max_rounds):
        t0 = time.perf_counter()
        action, memory = controller.act(state.obs, memory)
        t1 = time.perf_counter()
        busy = env.reader.busy_s
        new = env.step(state, action)
        backend = env.reader.busy_s - busy
        timing.controller_s += t1 - t0
        timing.backend_s += backend
        timing.env_s += time.perf_counter() - t1 - backend
        timing.rounds += 1
        recorder(state, action, new, rows)
        state = new
        if bool(state.obs.done.all()):
            break
    else:
        raise RuntimeError(f"controller did not stop within {max_rounds} rounds")
    env.check_costs(state.obs)
    return OnlineResult(recorder.episodes, timing)

