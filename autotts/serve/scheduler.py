"""Requests in, one batched controller call per round across all live requests, results out (no HTTP here).

Each request is an episode: its own `LiveEnv` (one question) and `OnlineRun`
over one shared backend, whose bounded thread pool caps concurrent upstream
calls. Every round, the live requests of each controller are decided in ONE
`act` call on their stacked observations and memories (the env is batched
over episodes, so a request's decisions do not depend on its neighbours);
then each request's round is executed concurrently. A request submitted
during a round joins at the next; one that answered, failed, passed its
deadline or was cancelled (client gone) leaves before the next round, so no
more upstream tokens are spent for it.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from autotts.answers.extract import last_boxed
from autotts.env.state import ACTIVE, FINISHED, index_tree
from autotts.errors import AutottsError
from autotts.executor.backends.base import Backend, Branch
from autotts.executor.intervals import IntervalReader, Probe
from autotts.executor.live_env import LiveEnv, LiveQuestion
from autotts.executor.runtime import OnlineRun, QuestionResult


class QueueFull(AutottsError):
    """The waiting queue is at its bound (a server answers 429)."""


class DeadlineExceeded(AutottsError):
    """The request passed its deadline (a server answers 504)."""


class Cancelled(AutottsError):
    """The client went away; its branches were stopped."""


@dataclass(frozen=True)
class Episode:
    """One request as the scheduler sees it."""

    question: str           # seeds the branches (the user's text)
    prompt: str             # what the model reads (chat template or prompt template applied)
    controller: str         # key into the scheduler's controllers
    beta: float = 0.5
    seed: int = 0           # base seed of the branch seeds
    shuffle_seed: int = 0   # branch opening order
    max_tokens: int | None = None  # branch token cap (at most the server's)
    timeout_s: float = 600.0


@dataclass
class Answer:
    """A finished request: the run's result plus what the reply shows."""

    result: QuestionResult
    text: str               # the chosen branch's text, ending with the boxed answer
    branch: int | None      # store branch index whose answer was returned
    stop_by: str | None     # rule or head that stopped it
    trace_id: str
    controller: str
    beta: float


@dataclass
class Ticket:
    """A submitted request: its future, and `cancel()` for a client that disconnects."""

    id: str
    episode: Episode
    future: Future = field(default_factory=Future)
    deadline: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass(frozen=True)
class Settings:
    """What fixes a branch on the server side (the same options `autotts run` takes)."""

    n: int = 64
    delta: int = 500
    max_tokens: int = 32768
    probe: Probe = Probe()
    max_live: int = 64       # requests in rounds at once
    max_queue: int = 256     # requests waiting to join; beyond that submit raises QueueFull


@dataclass
class Stats:
    """Counters the metrics endpoint reads (updated under the scheduler's lock)."""

    rounds: int = 0
    controller_calls: int = 0
    proxy_s: float = 0.0      # round wall time not spent waiting for the upstream
    upstream_s: float = 0.0   # per round, the longest upstream time of any request, summed
    round_s: float = 0.0


class Scheduler:
    """See the module docstring. `controllers` maps a name to a factory ``beta -> Controller``."""

    def __init__(self, backend: Backend, controllers: dict[str, Callable[[float], Any]], settings: Settings,
                 on_finish: Callable[[Ticket, Answer | None, BaseException | None], None] | None = None):
        self.backend, self.controllers, self.settings = backend, controllers, settings
        self.on_finish = on_finish
        self.stats = Stats()
        self._queue: list[Ticket] = []
        self._live: list[_Live] = []
        self._opening = 0  # admitted (left the queue), not yet in `_live`: they hold live slots
        self._lock = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.max_live), thread_name_prefix="autotts-round")
        self._thread: threading.Thread | None = None
        self._stop = False
        self._cache: dict[tuple[str, float], Any] = {}

    # ---- requests in ----------------------------------------------------------------------

    def submit(self, episode: Episode) -> Ticket:
        """Queue `episode`; it joins at the next round. Raises `QueueFull` at the queue's bound."""
        if episode.controller not in self.controllers:
            raise AutottsError(f"controller {episode.controller!r}: not served here "
                               f"(expected one of {', '.join(sorted(self.controllers))})")
        ticket = Ticket(uuid.uuid4().hex, episode, deadline=time.monotonic() + episode.timeout_s)
        with self._lock:
            if self._stop:
                raise QueueFull("the server is shutting down")
            waiting = len(self._queue) - self._free_slots()
            if waiting >= self.settings.max_queue:
                raise QueueFull(f"{waiting} requests are waiting (the queue's bound); retry later")
            self._queue.append(ticket)
            self._lock.notify_all()
        return ticket

    def _free_slots(self) -> int:
        """Live slots nobody holds: a request queued while one is free takes it at the next round, so it does
        not count against the queue's bound (two requests that arrive together must not see a 429 at
        `max_live=1, max_queue=1` only because the loop has not woken yet)."""
        return max(0, self.settings.max_live - len(self._live) - self._opening)

    # ---- the loop -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="autotts-scheduler", daemon=True)
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests; with `drain`, answer those queued and live first."""
        with self._lock:
            self._stop = True
            if not drain:
                for t in self._queue:
                    self._fail(t, Cancelled("the server stopped before this request ran"))
                self._queue.clear()
                for live in self._live:
                    live.ticket.cancel()
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._live and not self._stop:
                    self._lock.wait()
                if self._stop and not self._queue and not self._live:
                    return
            try:
                self.round()
            except Exception as err:  # noqa: BLE001 (never leave requests hanging on a scheduler bug)
                for live in self._live:
                    self._fail(live.ticket, err)
                self._live = []

    def round(self) -> None:
        """Admit waiting requests, decide all live ones (one `act` per controller), run their round."""
        t0 = time.perf_counter()
        self._admit()
        self._retire()
        if not self._live:
            return
        decided = self._decide()
        busy = list(self._pool.map(_apply, decided))
        t2 = time.perf_counter()
        self._retire()
        upstream = max(busy, default=0.0)
        with self._lock:
            s = self.stats
            s.rounds += 1
            s.round_s += t2 - t0
            s.upstream_s += upstream
            s.proxy_s += (t2 - t0) - upstream

    def _admit(self) -> None:
        with self._lock:
            room = self._free_slots()
            joining, self._queue = self._queue[:room], self._queue[room:]
            self._opening = len(joining)
        for ticket in joining:
            try:
                self._live.append(self._open(ticket))
            except Exception as err:  # noqa: BLE001 (a bad request must not stop the loop)
                self._fail(ticket, err)
            finally:
                with self._lock:
                    self._opening -= 1

    def _open(self, ticket: Ticket) -> "_Live":
        ep, s = ticket.episode, self.settings
        controller = self._controller(ep.controller, ep.beta)
        cap = s.max_tokens if ep.max_tokens is None else min(int(ep.max_tokens), s.max_tokens)
        backend = _Guarded(self.backend, ticket)
        reader = IntervalReader(backend, s.delta, cap, s.probe)
        env = LiveEnv(reader, [LiveQuestion(ep.question, ep.prompt)], s.n, controller.slots, ep.shuffle_seed, ep.seed)
        return _Live(ticket, controller, OnlineRun(controller, env, ep.beta), backend)

    def _controller(self, name: str, beta: float) -> Any:
        key = (name, float(beta))
        if key not in self._cache:
            self._cache[key] = self.controllers[name](float(beta))
        return self._cache[key]

    def _decide(self) -> list[tuple["_Live", Any, Any, float]]:
        """One `act` per controller over the stacked observations and memories of its live requests."""
        out = []
        groups: dict[int, list[_Live]] = {}
        for live in self._live:
            groups.setdefault(id(live.controller), []).append(live)
        for group in groups.values():
            t0 = time.perf_counter()
            obs = cat_tree([g.run.state.obs for g in group])
            memory = cat_tree([g.run.memory for g in group])
            action, memory = group[0].controller.act(obs, memory)
            share = (time.perf_counter() - t0) / len(group)
            for i, g in enumerate(group):
                row = torch.tensor([i])
                out.append((g, index_tree(action, row), index_tree(memory, row), share))
            with self._lock:
                self.stats.controller_calls += 1
        return out

    def _retire(self) -> None:
        """Answer finished requests; drop failed, late and cancelled ones (their branches stop here)."""
        keep = []
        now = time.monotonic()
        for live in self._live:
            t = live.ticket
            if live.error is not None:
                self._fail(t, live.error)
            elif live.run.done:
                try:
                    self._succeed(live)
                except Exception as err:  # noqa: BLE001
                    self._fail(t, err)
            elif t.cancelled.is_set():
                self._fail(t, Cancelled("the client disconnected; its branches were stopped"))
            elif now > t.deadline:
                self._fail(t, DeadlineExceeded(f"no answer within the request's deadline of "
                                               f"{t.episode.timeout_s:g}s"))
            else:
                keep.append(live)
                continue
            live.env_release()
        self._live = keep

    def _succeed(self, live: "_Live") -> None:
        result = live.run.results()[0]
        env = live.run.env
        slot = chosen_slot(live.run.state.obs)
        branch = None if slot is None else env.order[slot]
        text = "" if branch is None else self.backend.text(env.tracks[0][branch].branch)
        stop_by = next((r.get("stop_by") for r in reversed(result.trace) if r.get("stop")), None)
        answer = Answer(result, answer_text(text, result.answer), branch, stop_by, live.ticket.id,
                        live.ticket.episode.controller, live.ticket.episode.beta)
        try:  # the trace and metrics first, so a client that asks for its trace right away finds it
            if self.on_finish:
                self.on_finish(live.ticket, answer, None)
        finally:
            if not live.ticket.future.done():
                live.ticket.future.set_result(answer)

    def _fail(self, ticket: Ticket, err: BaseException) -> None:
        try:
            if self.on_finish:
                self.on_finish(ticket, None, err)
        finally:
            if not ticket.future.done():
                ticket.future.set_exception(err)

    # ---- what metrics read ----------------------------------------------------------------

    def gauges(self) -> dict[str, int]:
        """Live and waiting requests, and branches still active among the live ones."""
        live = list(self._live)
        branches = sum(int((x.run.state.obs.status == ACTIVE).sum()) for x in live)
        return {"live_requests": len(live) + self._opening, "queued_requests": len(self._queue),
                "live_branches": branches}


@dataclass
class _Live:
    ticket: Ticket
    controller: Any
    run: OnlineRun
    backend: "_Guarded"
    error: BaseException | None = None

    def env_release(self) -> None:
        env = self.run.env
        env.reader.release([t for tracks in env.tracks for t in tracks.values()])


def _apply(item: tuple[_Live, Any, Any, float]) -> float:
    """Run one request's round; returns its upstream time (errors stay with the request)."""
    live, action, memory, controller_s = item
    busy = live.run.env.reader.busy_s
    try:
        live.run.apply(action, memory, controller_s)
    except Exception as err:  # noqa: BLE001 (one request's upstream failure fails that request only)
        live.error = err
    return live.run.env.reader.busy_s - busy


class _Guarded:
    """The shared backend, checked before every upstream call: a cancelled or late request makes no more."""

    def __init__(self, backend: Backend, ticket: Ticket):
        self.inner, self.ticket = backend, ticket
        self.name = backend.name

    def _check(self) -> None:
        t = self.ticket
        if t.cancelled.is_set():
            raise Cancelled("the client disconnected; its branches were stopped")
        if time.monotonic() > t.deadline:
            raise DeadlineExceeded(f"no answer within the request's deadline of {t.episode.timeout_s:g}s")

    def open(self, prompt: str, seeds: Sequence[int]) -> list[Branch]:
        self._check()
        return self.inner.open(prompt, seeds)

    def extend(self, branches: Sequence[Branch], budgets: Sequence[int]) -> None:
        self._check()
        self.inner.extend(branches, budgets)

    def probe(self, branches, cue, max_tokens, done=None) -> list[str]:
        self._check()
        return self.inner.probe(branches, cue, max_tokens, done)

    def text(self, branch: Branch) -> str:
        return self.inner.text(branch)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def release(self, branches: Sequence[Branch]) -> None:
        self.inner.release(branches)


def chosen_slot(obs: Any) -> int | None:
    """The slot whose answer was returned: the first finished with it, else one whose latest probe read it."""
    result = int(obs.result[0])
    if result < 0:
        return None
    same = obs.answer[0] == result
    finished = same & (obs.status[0] == FINISHED)
    if bool(finished.any()):
        keys = torch.where(finished, obs.finish_key[0], torch.iinfo(obs.finish_key.dtype).max)
        return int(keys.argmin())
    hits = same.nonzero().squeeze(1).tolist()
    return hits[0] if hits else None


def answer_text(text: str, answer: str | None) -> str:
    """The chosen branch's text, ending with the returned answer boxed (added unless the text already ends so)."""
    if answer is None:
        return text
    from autotts.answers.canonical import canonical

    boxed = last_boxed(text)
    if boxed is not None and canonical(boxed) == answer:
        return text
    return f"{text.rstrip()}\n\nFinal answer: \\boxed{{{answer}}}".lstrip()


def cat_tree(items: Sequence[Any]) -> Any:
    """Stack per-request pytrees (dataclass/dict/tuple of [E, ...] tensors) along episodes: `index_tree`'s inverse."""
    first = items[0]
    if isinstance(first, Tensor):
        if first.dim() == 0:
            return first
        return torch.cat(list(items), 0) if len(items) > 1 else first
    if isinstance(first, dict):
        return {k: cat_tree([x[k] for x in items]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(cat_tree(list(col)) for col in zip(*items))
    if hasattr(first, "__dataclass_fields__"):
        return replace(first, **{f.name: cat_tree([getattr(x, f.name) for x in items])
                                 for f in fields(first) if f.init})
    return first

