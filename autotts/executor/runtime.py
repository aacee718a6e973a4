"""The online runtime: a controller drives a live model, round by round, through `LiveEnv`.

Each round the controller sees the same `Observation` the replay env would
build, decides one `Action` per question, and the live env executes it as
batched backend calls. Traces come from the same recorder as replay traces
(`autotts.evaluate.trace.TraceRecorder`), so the two can be compared entry
for entry. Time is split into controller (features, policy, rules), env
bookkeeping and backend, to report the controller's overhead as a share of
model time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from autotts.env.state import EnvState
from autotts.evaluate.trace import TraceRecorder
from autotts.executor.live_env import LiveEnv


@dataclass
class Timing:
    controller_s: float = 0.0
    env_s: float = 0.0      # snapshot + replay step, excluding generation
    backend_s: float = 0.0  # generation and probes
    rounds: int = 0


@dataclass
class QuestionResult:
    """What `autotts run` reports per question."""

    question: int
    answer: str | None
    tokens: int
    seq_tokens: int  # the critical path: per round the most one branch generated, summed (`Observation.seq_cost`)
    rounds: int
    branch_tokens: dict[int, int]  # store branch index -> tokens, in opening order
    trace: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"answer": self.answer, "tokens": self.tokens, "seq_tokens": self.seq_tokens, "rounds": self.rounds,
                "branch_tokens": {str(j): t for j, t in self.branch_tokens.items()}, "trace": self.trace}


@dataclass
class OnlineResult:
    questions: list[QuestionResult]
    timing: Timing


class OnlineRun:
    """A live env's episodes under a controller, advanced one round at a time.

    The controller call is left to the caller (`apply` takes its action and
    memory), so a server can decide the episodes of many runs in one batched
    `act` and step each run on its own; `run_online` is the one-run loop.
    """

    def __init__(self, controller: Any, env: LiveEnv, beta: float = 0.5):
        self.env, self.state = env, env.reset()
        e = self.state.obs.num_episodes
        self.memory = controller.init(self.state.obs, {"beta": torch.full((e,), float(beta))})
        self.reasons = controller.reasons
        self.rows = torch.arange(e)
        self.recorder = TraceRecorder(env.store_view(), env.episodes, range(e))
        self.recorder.on_state(self.state, self.rows)
        self.timing = Timing()

    @property
    def done(self) -> bool:
        return bool(self.state.obs.done.all())

    def apply(self, action: Any, memory: Any, controller_s: float = 0.0) -> None:
        """Execute one round's `action` (with the controller's new `memory`) on the live model."""
        t1 = time.perf_counter()
        self.recorder.on_action(self.state, action, self.reasons, self.rows)
        busy = self.env.reader.busy_s
        self.state, self.memory = self.env.step(self.state, action), memory
        backend = self.env.reader.busy_s - busy
        self.timing.controller_s += controller_s
        self.timing.backend_s += backend
        self.timing.env_s += time.perf_counter() - t1 - backend
        self.timing.rounds += 1
        self.recorder.on_state(self.state, self.rows)

    def results(self) -> list[QuestionResult]:
        """Per-question results once every episode answered (tokens generated checked against tokens charged)."""
        self.env.check_costs(self.state.obs)
        return _results(self.env, self.state, self.recorder.records)


def run_online(controller: Any, env: LiveEnv, beta: float = 0.5, max_rounds: int = 10_000) -> OnlineResult:
    """Run `controller` on every question of `env` until all have answered."""
    run = OnlineRun(controller, env, beta)
    for _ in range(max_rounds):
        t0 = time.perf_counter()
        action, memory = controller.act(run.state.obs, run.memory)
        run.apply(action, memory, time.perf_counter() - t0)
        if run.done:
            break
    else:
        raise RuntimeError(f"controller did not stop within {max_rounds} rounds")
    return OnlineResult(run.results(), run.timing)


def _without_gold(record: dict) -> dict:
    """A trace record minus its gold answer (the live env never sees the gold; `run` reports it apart)."""
    return {k: v for k, v in record.items() if k != "gold"}


def _results(env: LiveEnv, state: EnvState, records: list[dict]) -> list[QuestionResult]:
    obs = state.obs
    out = []
    for e in range(obs.num_episodes):
        opened = range(int(obs.n_open[e]))
        out.append(QuestionResult(
            question=e, answer=env.answer(e, int(obs.result[e])), tokens=int(obs.total_cost[e]),
            seq_tokens=int(obs.seq_cost[e]), rounds=int(obs.round[e]),
            branch_tokens={env.order[s]: int(obs.cost[e, s]) for s in opened},
            trace=[_without_gold(r) for r in records if r["episode"] == e]))
    return out
