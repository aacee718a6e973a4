"""A plain per-episode replay environment: the readable oracle the batched env is tested against.

It follows specs/baselines.md §1 literally -- one incremental reader per branch
(§1.2), probe-opens and full reads of the next branch in the episode's order
(§1.3), every charge written to a ledger -- using plain lists, ints and the
answer *strings* of the AutoTTS records, so a reviewer can check it against the
spec line by line and it shares no encoding with the tensor store. A
macro-action is applied in the same order as `autotts.env.batched.step`: stop,
prune, advance (in priority order), open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from autotts.env.state import ACTIVE, FINISHED, PRUNED, UNOPENED, Action
from autotts.store.replay_store import ReplayStore, to_records


@dataclass(frozen=True)
class ReferenceQuestion:
    """One question of an AutoTTS record: Δ and its branches as (probe list, branch tokens, final answer)."""

    delta: int
    gold: str
    branches: list[tuple[list[str], int, str]]

    @staticmethod
    def from_record(record: dict) -> "ReferenceQuestion":
        branches = [(list(p), int(tokens), fin) for p, tokens, fin in record["each_branch"]]
        return ReferenceQuestion(int(record["probe_freq"]), record["gold_answer"], branches)


def reference_questions(store: ReplayStore) -> list[ReferenceQuestion]:
    """The store's questions as plain records (prefer `from_record` on the file's own records)."""
    return [ReferenceQuestion.from_record(r) for r in to_records(store)]


@dataclass
class BranchReader:
    """Spec §1.2: a read pointer `k` and the tokens `charged` for revealed probes."""

    probes: list[str]
    length: int
    final: str
    delta: int
    k: int = 0
    charged: int = 0

    def explore(self) -> tuple[str, int, bool]:
        """Reveal the next probe for Δ tokens, or finish: the final answer for what is left of the branch."""
        if self.k < len(self.probes):
            answer = self.probes[self.k]
            self.k += 1
            self.charged += self.delta
            return answer, self.delta, False
        return self.final, max(0, self.length - self.charged), True


@dataclass
class Slot:
    """An opened branch as a controller sees it (plus its reader)."""

    reader: BranchReader
    opened_round: int
    status: int = ACTIVE
    answer: str | None = None
    streak: int = 0
    cost: int = 0


@dataclass(frozen=True)
class RefAction:
    """One per-episode macro-action (the row of a batched `Action`).

    advance: slot -> intervals to read (FINISH = to the end); priority: slots in
    the order their advances run (slots missing from it run after, in slot order).
    """

    stop: bool = False
    answer: str | None = None
    prune: frozenset[int] = frozenset()
    advance: Mapping[int, int] = field(default_factory=dict)
    priority: tuple[int, ...] | None = None
    open: int = 0
    full_read: bool = False


class ReferenceEpisode:
    """One episode: the branches of `question` may only be opened in `order` (branch indices)."""

    def __init__(self, question: ReferenceQuestion, order: list[int]):
        self.question = question
        self.order = list(order)
        self.slots: list[Slot] = []
        self.ledger: list[tuple[int, int]] = []  # (slot, tokens) for every charge, in time order
        self.total_cost = 0
        self.seq_cost = 0                        # per round, the largest charge to one slot; summed
        self.completions: list[int] = []         # slots in the order they finished
        self.round = 0
        self.done = False
        self.result: str | None = None

    # ----------------------------------------------------------------- acting
    def step(self, action: RefAction) -> None:
        """Apply one macro-action: stop, then prune, then advance in priority order, then open."""
        if self.done:
            return
        if action.stop:
            self.done, self.result = True, action.answer
            return
        start = len(self.ledger)
        for s in sorted(action.prune):
            if s < len(self.slots) and self.slots[s].status == ACTIVE:
                self.slots[s].status = PRUNED
        for s in self._advance_order(action):
            self._advance(s, action.advance[s])
        for _ in range(action.open):
            self._open(action.full_read)
        self.round += 1
        self.seq_cost += self._round_peak(start)

    def _round_peak(self, start: int) -> int:
        """The most tokens one slot was charged by ledger entries `start:` (this round's charges)."""
        per_slot: dict[int, int] = {}
        for s, tokens in self.ledger[start:]:
            per_slot[s] = per_slot.get(s, 0) + tokens
        return max(per_slot.values(), default=0)

    def _advance_order(self, action: RefAction) -> list[int]:
        first = [s for s in (action.priority or ()) if s in action.advance]
        return first + sorted(set(action.advance) - set(first))

    def _advance(self, s: int, intervals: int) -> None:
        """Run up to `intervals` explore steps on an active slot; the step that finishes it is the last."""
        if s >= len(self.slots) or self.slots[s].status != ACTIVE:
            return
        for _ in range(max(0, intervals)):
            if self._explore(s):
                return

    def _open(self, full_read: bool) -> None:
        """Open the next branch of the order (nothing happens, nothing is charged, once they run out)."""
        if len(self.slots) == len(self.order):
            return
        probes, length, final = self.question.branches[self.order[len(self.slots)]]
        self.slots.append(Slot(BranchReader(probes, length, final, self.question.delta), self.round))
        s = len(self.slots) - 1
        if full_read:  # get_new_branch_final_answer: the whole branch, reader untouched
            self._charge(s, length)
            self._reveal(s, final)
            self._finish(s)
        else:          # probe_new: one explore step
            self._explore(s)

    def _explore(self, s: int) -> bool:
        answer, cost, finished = self.slots[s].reader.explore()
        self._charge(s, cost)
        self._reveal(s, answer)
        if finished:
            self._finish(s)
        return finished

    def _charge(self, s: int, tokens: int) -> None:
        self.slots[s].cost += tokens
        self.total_cost += tokens
        self.ledger.append((s, tokens))

    def _reveal(self, s: int, answer: str) -> None:
        slot = self.slots[s]
        slot.streak = slot.streak + 1 if answer == slot.answer else 1
        slot.answer = answer

    def _finish(self, s: int) -> None:
        self.slots[s].status = FINISHED
        self.completions.append(s)

    # ------------------------------------------------------------------ views
    @property
    def n_open(self) -> int:
        return len(self.slots)

    @property
    def n_avail(self) -> int:
        return len(self.order)

    def status(self, width: int) -> list[int]:
        return self._column(width, lambda sl: sl.status, UNOPENED)

    def depth(self, width: int) -> list[int]:
        """Probes revealed (0 for full reads: they never move the reader)."""
        return self._column(width, lambda sl: sl.reader.k, 0)

    def answer(self, width: int) -> list[str | None]:
        return self._column(width, lambda sl: sl.answer, None)

    def streak(self, width: int) -> list[int]:
        return self._column(width, lambda sl: sl.streak, 0)

    def cost(self, width: int) -> list[int]:
        return self._column(width, lambda sl: sl.cost, 0)

    def opened_round(self, width: int) -> list[int]:
        return self._column(width, lambda sl: sl.opened_round, -1)

    def _column(self, width: int, get: Callable[[Slot], Any], empty: Any) -> list:
        """A per-slot view over `width` slots (unopened slots read as `empty`)."""
        values = [get(sl) for sl in self.slots[:width]]
        return values + [empty] * (width - len(values))


def split_action(action: Action, vocabs: list[list[str]]) -> list[RefAction]:
    """The per-episode actions of a batched `action`; `vocabs[row]` maps that row's answer ids to strings."""
    e = int(action.stop.shape[0])
    cols = {name: _rows(getattr(action, name), e) for name in ("stop", "answer", "open", "full_read")}
    adv = None if action.advance is None else action.advance.clamp(min=0)
    advance, prune = _sparse_rows(adv, e), _sparse_rows(action.prune, e)
    prio = None if action.priority is None or adv is None else _sparse_rows(action.priority, e, where=adv)
    out = []
    for r in range(e):
        answer = cols["answer"][r]
        order = None if prio is None else tuple(sorted(advance[r], key=lambda s: (prio[r][s], s)))
        out.append(RefAction(stop=bool(cols["stop"][r]), answer=vocabs[r][answer] if answer >= 0 else None,
                             prune=frozenset(prune[r]), advance=advance[r], priority=order,
                             open=max(0, cols["open"][r] or 0), full_read=bool(cols["full_read"][r])))
    return out


def _rows(t: torch.Tensor | None, e: int) -> list:
    return [None] * e if t is None else t.tolist()


def _sparse_rows(t: torch.Tensor | None, e: int, where: torch.Tensor | None = None) -> list[dict[int, int]]:
    """Per row, {slot: t[row, slot]} over the non-zero entries of `where` (default `t`); rows are mostly zero."""
    rows: list[dict[int, int]] = [{} for _ in range(e)]
    if t is not None:
        idx = (t if where is None else where).nonzero()
        for (r, s), v in zip(idx.tolist(), t[idx[:, 0], idx[:, 1]].tolist()):
            rows[r][s] = v
    return rows


def stack_actions(actions: list[RefAction], slots: int, vocabs: list[list[str]]) -> Action:
    """The batched `Action` whose rows are `actions` (the inverse of `split_action`)."""
    e = len(actions)
    prune = torch.zeros((e, slots), dtype=torch.bool)
    advance = torch.zeros((e, slots), dtype=torch.long)
    priority = torch.arange(slots, 2 * slots).repeat(e, 1)  # unlisted slots run last, in slot order
    for r, a in enumerate(actions):
        prune[r, [s for s in a.prune if s < slots]] = True
        for s, k in a.advance.items():
            if s < slots:
                advance[r, s] = k
        for rank, s in enumerate(a.priority or ()):
            if s < slots:
                priority[r, s] = rank
    t = lambda xs, dt=torch.long: torch.tensor(xs, dtype=dt)  # noqa: E731
    return Action(stop=t([a.stop for a in actions], torch.bool),
                  answer=t([-1 if a.answer is None else vocabs[r].index(a.answer) for r, a in enumerate(actions)]),
                  prune=prune, advance=advance, priority=priority,
                  open=t([a.open for a in actions]), full_read=t([a.full_read for a in actions], torch.bool))


__all__ = ["BranchReader", "RefAction", "ReferenceEpisode", "ReferenceQuestion", "Slot",
           "reference_questions", "split_action", "stack_actions"]
