"""Per-episode action traces: which branch did what in each round, and the rule that decided it.

`TraceRecorder` has the `rollout` hook signature ``(before, action, after,
rows)``, so replay runs and online runs are traced by the same code and their
traces can be compared entry for entry. Entries record effects (what the env
did: branches opened, intervals read, finishes, prunes, the stop), named by
the store's branch index, with answers as strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor

from autotts.env.state import FINISHED, PRUNED, Action, EnvState

AnswerOf = Callable[[int, int], "str | None"]  # (question, answer id) -> string


@dataclass
class EpisodeTrace:
    """The outcome of one episode and how it got there."""

    question: int
    answer: str | None = None
    tokens: int = 0
    rounds: int = 0
    branch_tokens: dict[int, int] = field(default_factory=dict)  # store branch index -> tokens, in opening order
    trace: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.answer, "tokens": self.tokens, "rounds": self.rounds,
                "branch_tokens": {str(j): t for j, t in self.branch_tokens.items()}, "trace": self.trace}


class TraceRecorder:
    """Collects an `EpisodeTrace` per episode from the rounds it is shown."""

    def __init__(self, num_episodes: int, reasons: tuple[str, ...], answer_of: AnswerOf):
        self.reasons, self.answer_of = tuple(reasons), answer_of
        self.episodes = [EpisodeTrace(question=-1) for _ in range(num_episodes)]

    def __call__(self, before: EnvState, action: Action, after: EnvState, rows: Tensor) -> None:
        done_before = before.obs.done.tolist()
        for i, ep in enumerate(rows.tolist()):
            if not done_before[i]:
                self._round(self.episodes[ep], before, action, after, i)

    def _round(self, rec: EpisodeTrace, before: EnvState, action: Action, after: EnvState, i: int) -> None:
        b, a = before.obs, after.obs
        q = int(b.question[i])
        rec.question = q
        entry: dict = {"round": int(b.round[i])}
        why = action.why or {}
        if bool(a.done[i]):
            entry["stop"] = {"answer": self.answer_of(q, int(a.result[i])), "why": self._why(why.get("stop"), i)}
        opened = list(range(int(b.n_open[i]), int(a.n_open[i])))
        if opened:
            full = action.full_read is not None and bool(action.full_read[i])
            entry["open"] = {"branches": [int(after.hidden.branch[i, s]) for s in opened],
                             "full_read": full, "why": self._why(why.get("open"), i),
                             "answers": [self.answer_of(q, int(a.answer[i, s])) for s in opened]}
        moves = [self._move(before, action, after, i, s) for s in range(int(b.n_open[i]))]
        moves = [m for m in moves if m is not None]
        if moves:
            entry["branches"] = moves
        rec.trace.append(entry)
        if bool(a.done[i]):
            rec.answer = self.answer_of(q, int(a.result[i]))
            rec.tokens, rec.rounds = int(a.total_cost[i]), int(a.round[i])
            rec.branch_tokens = {int(after.hidden.branch[i, s]): int(a.cost[i, s]) for s in range(int(a.n_open[i]))}

    def _move(self, before: EnvState, action: Action, after: EnvState, i: int, s: int) -> dict | None:
        """What happened to an already open slot this round (None: nothing)."""
        b, a = before.obs, after.obs
        status, cost = int(a.status[i, s]), int(a.cost[i, s]) - int(b.cost[i, s])
        if status == int(b.status[i, s]) and cost == 0:
            return None
        if status == PRUNED:
            do = "prune"
        elif status == FINISHED:
            do = "finish"
        else:
            do = f"advance {int(a.depth[i, s]) - int(b.depth[i, s])}"
        why = (action.why or {}).get("branch")
        return {"branch": int(before.hidden.branch[i, s]), "do": do, "tokens": cost,
                "answer": self.answer_of(int(b.question[i]), int(a.answer[i, s])), "why": self._why(why, i, s)}

    def _why(self, codes: Tensor | None, i: int, s: int | None = None) -> str | None:
        if codes is None:
            return None
        code = int(codes[i] if s is None else codes[i, s])
        return self.reasons[code] if 0 <= code < len(self.reasons) else None
