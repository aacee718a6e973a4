"""Execution traces: what each branch did each round, what it revealed and cost, and which rule decided.

A `TraceRecorder` watches a rollout for a few episodes and yields one JSON-able
record per (episode, round). `render` prints them compactly for a terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from torch import Tensor

from autotts.env.episodes import Episodes
from autotts.env.state import FINISH, STATUS_NAMES, Action, EnvState
from autotts.store.replay_store import ReplayStore

_SNAP = ("status", "depth", "answer", "cost")


class TraceRecorder:
    """Records the rounds of the episodes listed in `traced` (episode ids of the rollout)."""

    def __init__(self, store: ReplayStore, episodes: Episodes, traced: Iterable[int]):
        self.store, self.episodes = store, episodes
        self.traced = sorted(set(int(i) for i in traced))
        self.records: list[dict[str, Any]] = []
        self._prev: dict[int, dict[str, list]] = {}
        self._pending: dict[int, dict[str, Any]] = {}

    def _rows(self, rows: Tensor) -> list[tuple[int, int]]:
        ids = rows.tolist()
        pos = {e: i for i, e in enumerate(ids)}
        return [(e, pos[e]) for e in self.traced if e in pos]

    def on_action(self, state: EnvState, action: Action, reasons: tuple[str, ...], rows: Tensor) -> None:
        for eid, i in self._rows(rows):
            if bool(state.obs.done[i]):
                continue
            self._pending[eid] = dict(_decisions(action, i, reasons), round=int(state.obs.round[i]))

    def on_state(self, state: EnvState, rows: Tensor) -> None:
        obs = state.obs
        for eid, i in self._rows(rows):
            snap = {k: getattr(obs, k)[i].tolist() for k in _SNAP}
            snap["branch"] = state.hidden.branch[i].tolist()
            pending = self._pending.pop(eid, None)
            if pending is not None:
                self.records.append(self._record(eid, i, state, pending, self._prev.get(eid), snap))
            self._prev[eid] = snap

    def _record(self, eid: int, i: int, state: EnvState, dec: dict, prev: dict | None, now: dict) -> dict:
        obs = state.obs
        q = int(self.episodes.question[eid])
        word = lambda a: self.store.answer(q, int(a))  # noqa: E731
        branches = []
        for j in range(len(now["status"])):
            spent = now["cost"][j] - (prev["cost"][j] if prev else 0)
            changed = prev is None or now["status"][j] != prev["status"][j] or spent
            act = dec["branch"].get(j)
            if not changed and act is None:
                continue
            branches.append({"slot": j, "branch": now["branch"][j], "action": act[0] if act else "open",
                             "by": act[1] if act else dec.get("open_by"), "status": STATUS_NAMES[now["status"][j]],
                             "depth": now["depth"][j], "answer": word(now["answer"][j]), "cost": spent})
        return {
            "episode": eid, "question": q, "seed": int(self.episodes.seed[eid]), "round": dec["round"],
            "stop": dec["stop"], "answer": word(obs.result[i]) if dec["stop"] else None,
            "stop_by": dec.get("stop_by"), "open": dec.get("open", 0), "open_by": dec.get("open_by"),
            "branches": branches, "tokens": int(sum(now["cost"])), "seq_tokens": int(obs.seq_cost[i]),
            "pool": {"winner": word(obs.pool_winner[i]), "top1": int(obs.pool_top1[i]), "top2": int(obs.pool_top2[i])},
            "gold": self.store.answer(q, int(self.store.gold[q])),
        }

    def write(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for rec in self.records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _decisions(action: Action, i: int, reasons: tuple[str, ...]) -> dict[str, Any]:
    """The decisions of batch row `i`, with rule names."""
    why = action.why or {}
    name = lambda key, idx=None: _reason(why, key, i, idx, reasons)  # noqa: E731
    out: dict[str, Any] = {"stop": bool(action.stop[i]), "stop_by": name("stop"), "branch": {}}
    if action.open is not None and int(action.open[i]) > 0:
        full = action.full_read is not None and bool(action.full_read[i])
        out.update(open=int(action.open[i]), open_by=name("open"), full_read=full)
    if action.advance is not None:
        adv, prune = action.advance[i].tolist(), action.prune[i].tolist() if action.prune is not None else None
        for j, k in enumerate(adv):
            if prune is not None and prune[j]:
                out["branch"][j] = ("prune", name("branch", j))
            elif k > 0:
                out["branch"][j] = ("finish" if k >= FINISH else f"advance {k}", name("branch", j))
    return out


def _reason(why: dict[str, Tensor], key: str, i: int, j: int | None, reasons: tuple[str, ...]) -> str | None:
    if key not in why:
        return None
    code = int(why[key][i] if j is None else why[key][i, j])
    return reasons[code] if 0 <= code < len(reasons) else None


def render(records: list[dict]) -> str:
    """A short terminal rendering: one line per round, one clause per branch that acted."""
    lines = []
    for rec in records:
        head = f"ep {rec['episode']} q{rec['question']} r{rec['round']:>3} tok {rec['tokens']:>7}"
        if rec["stop"]:
            verdict = "correct" if rec["answer"] == rec["gold"] else "wrong"
            lines.append(f"{head}  STOP -> {rec['answer']!r} ({verdict}) by {rec['stop_by']}")
            continue
        parts = [f"#{b['slot']} {b['action']}->{b['answer']!r}" + (f" [{b['by']}]" if b["by"] else "")
                 for b in rec["branches"]]
        if rec["open"]:
            parts.insert(0, f"open {rec['open']} [{rec['open_by']}]")
        pool = rec["pool"]
        lines.append(f"{head}  pool {pool['winner']!r} {pool['top1']}-{pool['top2']}  " + "; ".join(parts))
    return "\n".join(lines)


def traced_first(episodes: Episodes, count: int) -> list[int]:
    """Ids of the first `count` episodes (default trace selection)."""
    return list(range(min(count, len(episodes))))


__all__ = ["TraceRecorder", "render", "traced_first"]
