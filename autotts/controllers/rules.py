"""The rule engine: ordered, named, vectorised rules that decide each round, and the guards that wrap them.

A controller is a *rule program*: a memory update (what it remembers between
rounds), then an ordered list of named rules. Each rule decides some fields
(stop / open / per-branch prune or advance) for the episodes where it fires;
the first rule to decide a field wins, so order is priority. Guards run last
and may override anything. Every decided field carries the id of the rule
that decided it, so traces say *why* each action happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch
from torch import Tensor

from autotts.controllers.vote import slot_vote_table
from autotts.env.fastops import any_true
from autotts.env.state import ACTIVE, FINISHED, PRUNED, Action, Observation


class Controller(Protocol):
    """What the env runner, the evaluator and the online runtime call."""

    slots: int
    reasons: tuple[str, ...]

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> Any:
        """Per-episode memory (a pytree of [E, ...] tensors) for a fresh batch."""

    def act(self, obs: Observation, memory: Any) -> tuple[Action, Any]:
        """One macro-action per episode, and the new memory."""


class Decision:
    """One round's action under construction; each field remembers the rule that set it.

    Open and per-branch fields stay None until a rule sets them, so the env
    skips the work (see `Action`). Per-branch fields are int32/bool and `branch_by`
    is int8 (rule ids are small, see `RuleEngine`): on CPU an [E,B] op costs
    about the bytes it moves.
    """

    def __init__(self, obs: Observation):
        e, dev = obs.num_episodes, obs.status.device
        self._shape, self._dev = (e, obs.slots), dev
        self.stop = torch.zeros(e, dtype=torch.bool, device=dev)
        self.answer = torch.full((e,), -1, dtype=torch.long, device=dev)
        self.stop_by = torch.full((e,), -1, dtype=torch.long, device=dev)
        self.open: Tensor | None = None
        self.full_read: Tensor | None = None
        self.open_by: Tensor | None = None
        self.prune: Tensor | None = None
        self.advance: Tensor | None = None
        self.branch_by: Tensor | None = None
        self.priority: Tensor | None = None
        self._decided: Tensor | None = None  # [E,B] branches some rule decided (branch_by >= 0)
        self.rule = -1  # id of the rule now running (set by the engine)

    def set_stop(self, mask: Tensor, answer: Tensor, override: bool = False) -> None:
        """Answer now in episodes `mask` (unless an earlier rule decided, or `override`)."""
        m = mask if override else mask & ~self.stop  # stop is set exactly where stop_by is
        self.stop = self.stop | m
        self.answer = torch.where(m, answer, self.answer)
        self.stop_by = torch.where(m, self.rule, self.stop_by)

    def cancel_stop(self, mask: Tensor) -> None:
        """Withdraw the stop of episodes `mask` (a guard's veto)."""
        self.stop = self.stop & ~mask
        self.answer = torch.where(mask, -1, self.answer)
        self.stop_by = torch.where(mask, -1, self.stop_by)

    def set_open(self, mask: Tensor, count: Tensor | int, full_read: bool | Tensor = False,
                 override: bool = False) -> None:
        if self.open is None:
            if not any_true(mask):  # nothing opens anywhere yet: `open` stays None and the env skips opening
                return
            e = self._shape[0]
            self.open = torch.zeros(e, dtype=torch.long, device=self._dev)
            self.full_read = torch.zeros(e, dtype=torch.bool, device=self._dev)
            self.open_by = torch.full((e,), -1, dtype=torch.long, device=self._dev)
        m = mask if override else mask & (self.open_by < 0)
        self.open = torch.where(m, count, self.open)
        self.full_read = torch.where(m, full_read, self.full_read)
        self.open_by = torch.where(m, self.rule, self.open_by)

    def set_branch(self, mask: Tensor, advance: Tensor | int = 0, prune: bool | Tensor = False,
                   override: bool = False) -> None:
        """Per-branch decision [E,B]: advance k intervals (0 = hold) or prune."""
        if self._decided is None or not any_true(self._decided):  # nothing decided yet: nothing to merge with
            self.advance, self.prune = _masked(advance, mask), None
            self.branch_by = mask.view(torch.int8) * (self.rule + 1) - 1
            self._decided = mask
        elif override:
            # where(mask, new, old) as old + mask * (new - old): torch.where is several times slower on [E,B] on CPU.
            self.advance = self.advance + mask * (advance - self.advance)
            self.branch_by = self.branch_by + mask.view(torch.int8) * (self.rule - self.branch_by)
            self._decided = self._decided | mask
        else:
            # Undecided branches hold advance 0 and reason -1, so a later rule only adds to them.
            mask = mask & ~self._decided
            if isinstance(advance, Tensor) or advance:
                self.advance = self.advance + _masked(advance, mask)
            self.branch_by = self.branch_by + mask.view(torch.int8) * (self.rule + 1)
            self._decided = self._decided | mask
        if isinstance(prune, Tensor) or prune:
            new = mask & prune if isinstance(prune, Tensor) else mask
            self.prune = new if self.prune is None else new | (self.prune & ~mask)
        elif override and self.prune is not None:
            self.prune = self.prune & ~mask  # (undecided branches are never pruned)

    def to_action(self) -> Action:
        why = {"stop": self.stop_by}
        if self.open_by is not None:
            why["open"] = self.open_by
        if self.branch_by is not None:
            why["branch"] = self.branch_by
        return Action(stop=self.stop, answer=self.answer, prune=self.prune, advance=self.advance,
                      open=self.open, full_read=self.full_read, priority=self.priority, why=why)


def _masked(value: Tensor | int, mask: Tensor) -> Tensor:
    """``torch.where(mask, value, 0)`` as an int32 (or wider) product: cheaper than where on [E,B] on CPU."""
    if isinstance(value, Tensor):
        return (value if value.dtype in (torch.int32, torch.int64) else value.to(torch.int32)) * mask
    return mask.to(torch.int32).mul_(value) if value else torch.zeros(mask.shape, dtype=torch.int32, device=mask.device)


RuleFn = Callable[[Observation, Any, dict, Decision], None]


@dataclass(frozen=True)
class Rule:
    """A named decision rule: ``fn(obs, memory, derived, decision)`` writes into `decision`."""

    name: str
    fn: RuleFn


class RuleProgram:
    """Base class of controllers written as rules. Subclasses set `slots` and `rules`."""

    slots: int = 64
    rules: Sequence[Rule] = ()

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> Any:
        return {}

    def update(self, obs: Observation, memory: Any) -> tuple[Any, dict]:
        """Memory update before the rules run; returns (memory, derived quantities for the rules)."""
        return memory, {}

    def commit(self, obs: Observation, memory: Any, derived: dict, decision: Decision) -> Any:
        """Memory update after the rules decided (e.g. phase changes)."""
        return memory

    def aggregate(self, obs: Observation, memory: Any, derived: dict, rows: Tensor) -> Tensor:
        """[E] answers if forced to stop now (guards); only `rows` [E] bool need be right.

        Default: majority of completed answers, else of the current answers of live branches.
        """
        return default_answer(obs)


class RuleEngine:
    """Wraps a rule program (or a policy exposed as rules) with guards; implements `Controller`.

    `open_before_stop` always runs last, after the given guards, whatever the controller:
    no configuration can make a controller answer before it has read anything.
    """

    def __init__(self, program: RuleProgram, guards: Sequence[Rule] = ()):
        self.program = program
        self.guards = tuple(guards) + (open_before_stop(),)
        self.slots = program.slots
        self.reasons = tuple(r.name for r in program.rules) + tuple(f"guard:{g.name}" for g in self.guards)
        if len(self.reasons) > 127:
            raise ValueError(f"{len(self.reasons)} rules and guards: at most 127 (reason codes are int8)")

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> Any:
        return self.program.init(obs, context)

    def act(self, obs: Observation, memory: Any) -> tuple[Action, Any]:
        memory, derived = self.program.update(obs, memory)
        decision = Decision(obs)
        for i, rule in enumerate(self.program.rules):
            decision.rule = i
            rule.fn(obs, memory, derived, decision)
        derived["aggregate"] = lambda rows: self.program.aggregate(obs, memory, derived, rows)
        for j, guard in enumerate(self.guards):
            decision.rule = len(self.program.rules) + j
            guard.fn(obs, memory, derived, decision)
        memory = self.program.commit(obs, memory, derived, decision)
        return decision.to_action(), memory


# ---- shared observation helpers -------------------------------------------------------------

def completed_vote(obs: Observation) -> tuple[Tensor, Tensor, Tensor]:
    """Majority of finished branches' final answers, ties to the earliest completion (kept by the env)."""
    return obs.pool_winner, obs.pool_top1, obs.pool_top2


def slot_vote(obs: Observation, include: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Majority of the current answers of `include`d slots, ties to the earliest opened slot."""
    return slot_vote_table(obs.answer, include)


def default_answer(obs: Observation) -> Tensor:
    """Completed-branch majority; if nothing completed, majority of non-pruned current answers."""
    done_winner, _, _ = completed_vote(obs)
    alive = (obs.status == ACTIVE) & (obs.answer >= 0)
    live_winner, _, _ = slot_vote(obs, alive)
    return torch.where(done_winner >= 0, done_winner, live_winner)


# ---- guards -------------------------------------------------------------------------------

def force_stop(d: Decision, mask: Tensor, derived: dict) -> None:
    """Stop episodes in `mask` (that are not stopping already) with the program's aggregate answer."""
    mask = mask & ~d.stop
    if any_true(mask):  # (sync-free: always; the aggregate and set_stop are masked)
        d.set_stop(mask, derived["aggregate"](mask), override=True)


def budget_cap(tokens: int) -> Rule:
    """Stop once an episode has spent `tokens`; answer with the program's aggregate."""
    def fn(obs: Observation, memory: Any, derived: dict, d: Decision) -> None:
        force_stop(d, obs.total_cost >= tokens, derived)
    return Rule(f"budget_cap({tokens})", fn)


def keep_active(k: int, read: int = 0) -> Rule:
    """Cancel prunes that would leave fewer than `k` active branches; a kept branch reads `read` intervals.

    With read = 0 a kept branch is held: a policy whose prune head fires on every
    branch then idles round after round until `max_rounds` (docs/discovery_diagnosis.md, item 10).
    """
    def fn(obs: Observation, memory: Any, derived: dict, d: Decision) -> None:
        if d.prune is None:
            return
        active = obs.status == ACTIVE
        kept = (active & ~d.prune).sum(1)
        short = (kept < k) & (active.sum(1) > kept)
        undo = short[:, None] & d.prune
        d.set_branch(undo, advance=d.advance.clamp(min=read) if read else d.advance, prune=False, override=True)
    return Rule(f"keep_active({k})" if not read else f"keep_active({k},read={read})", fn)


def max_branches(m: int) -> Rule:
    """Never open more than `m` branches in an episode."""
    def fn(obs: Observation, memory: Any, derived: dict, d: Decision) -> None:
        if d.open is None:
            return
        room = (m - obs.n_open).clamp(min=0)
        over = d.open > room
        d.set_open(over, room, d.full_read, override=True)
    return Rule(f"max_branches({m})", fn)


def width_by_beta(lo: int, hi: int) -> Rule:
    """Never open more than round(lo + (hi - lo)·β) branches: β buys width (needs 'beta' in memory)."""
    def fn(obs: Observation, memory: Any, derived: dict, d: Decision) -> None:
        if d.open is None:
            return
        cap = torch.round(lo + (hi - lo) * memory["beta"]).long()
        room = (cap - obs.n_open).clamp(min=0)
        over = d.open > room
        d.set_open(over, room, d.full_read, override=True)
    return Rule(f"width_by_beta({lo},{hi})", fn)


def stop_when_idle() -> Rule:
    """Stop when nothing is active and nothing will be opened (no action could change the answer)."""
    def fn(obs: Observation, memory: Any, derived: dict, d: Decision) -> None:
        opens = d.open if d.open is not None else torch.zeros_like(obs.n_open)
        idle = ~(obs.status == ACTIVE).any(1) & ((opens == 0) | (obs.n_open >= obs.n_avail))
        force_stop(d, idle, derived)
    return Rule("stop_when_idle", fn)


def max_rounds(r: int) -> Rule:
    """Stop at round `r` whatever the program wants (a safety net against endless holds)."""
    def fn(obs: Observation, memory: Any, derived: dict, d: Decision) -> None:
        force_stop(d, obs.round >= r, derived)
    return Rule(f"max_rounds({r})", fn)


def stop_allowed(obs: Observation) -> Tensor:
    """[E] episodes that may stop: some branch is open, or there is none to open."""
    return (obs.n_open > 0) | (obs.n_avail <= 0)


def open_before_stop() -> Rule:
    """Veto a stop before any branch is open, and open one as a full read instead (so the answer is a real one).

    Every rule engine ends with this guard: an answer with no branch read would be no answer at all.
    """
    def fn(obs: Observation, memory: Any, derived: dict, d: Decision) -> None:
        early = d.stop & ~stop_allowed(obs)
        if not any_true(early):
            return
        d.cancel_stop(early)
        opens = d.open if d.open is not None else torch.zeros_like(obs.n_open)
        none = early & (opens <= 0)
        d.set_open(none, 1, full_read=True, override=True)
    return Rule("open_before_stop", fn)


MAX_GUARD_PARAM = 10**12  # token budgets and counts; far beyond any store (see autotts.store.autotts_json)


def guard_problem(name: object, params: object) -> str | None:
    """Why a guard entry ({name, params}, from a config or a manifest) cannot be built, or None."""
    import inspect

    if name not in GUARDS:
        return f"unknown guard {name!r} (this build has {', '.join(GUARDS)})"
    if not isinstance(params, dict):
        return f"params {params!r}: expected a mapping"
    signature = inspect.signature(GUARDS[name]).parameters
    expected = list(signature)
    required = [p for p in expected if signature[p].default is inspect.Parameter.empty]
    if not set(required) <= set(params) <= set(expected):
        return f"params {sorted(params)}, expected {expected}" + (
            f" ({', '.join(p for p in expected if p not in required)} optional)" if required != expected else "")
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GUARD_PARAM:
            return f"param {key}={value!r}: expected an integer in 0..10^12"
    return None


GUARDS: dict[str, Callable[..., Rule]] = {
    "budget_cap": budget_cap, "keep_active": keep_active, "max_branches": max_branches,
    "width_by_beta": width_by_beta,
    "stop_when_idle": stop_when_idle, "max_rounds": max_rounds,
}

__all__ = ["ACTIVE", "FINISHED", "PRUNED", "Controller", "Decision", "GUARDS", "Rule", "RuleEngine", "RuleProgram",
           "completed_vote", "default_answer", "guard_problem", "open_before_stop", "slot_vote", "stop_allowed"]
