"""Width–depth pictures of one episode: branches as rows, rounds as columns, the running vote above.

Built from `TraceRecorder` records alone: every record lists each branch whose
status, cost or action changed that round, so carrying the last snapshot of
every slot forward gives the full board after each round. In a round a branch
reads at most its advance in Δ-token intervals (one for Parallel-Probe and most
CMC steps), so columns are the controller's time steps through the intervals.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from autotts.errors import AutottsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Strings the public stores record when no answer could be read from a branch yet.
NO_ANSWER = frozenset({"", "No", "ERR", "None"})

GOLD, OTHER, NONE = "#2ca02c", "#d62728", "#b0b0b0"
VOTE_COLORS = ("#d62728", "#9467bd", "#8c564b", "#ff7f0e", "#1f77b4")


@dataclass(frozen=True)
class Timeline:
    """One episode after each round r (columns) for each opened slot (rows, in opening order).

    answer[i][r]: latest answer (None before the slot opened); status[i][r]: status name;
    read[i][r]: intervals read in round r (0 held; finishing counts 1).
    """

    question: int
    seed: int
    gold: str | None
    result: str | None
    stop_round: int | None
    stop_by: str | None
    tokens: int
    slots: list[int]
    branches: list[int]
    answer: list[list[str | None]]
    status: list[list[str]]
    read: np.ndarray

    @property
    def rounds(self) -> int:
        return int(self.read.shape[1])

    @property
    def correct(self) -> bool:
        return self.result is not None and self.result == self.gold

    def category(self, answer: str | None) -> str:
        if answer is None or answer in NO_ANSWER:
            return "none"
        return "gold" if answer == self.gold else "other"

    def votes(self) -> dict[str, np.ndarray]:
        """Answer -> [rounds] number of opened, unpruned branches whose latest answer it is."""
        out: dict[str, np.ndarray] = {}
        for row_a, row_s in zip(self.answer, self.status):
            for r, (a, s) in enumerate(zip(row_a, row_s)):
                if a is not None and a not in NO_ANSWER and s in ("active", "finished"):
                    out.setdefault(a, np.zeros(self.rounds, dtype=int))[r] += 1
        return out


def timeline(records: Sequence[dict]) -> Timeline:
    """Rebuild the board of one episode from its trace records (any order)."""
    recs = sorted(records, key=lambda r: r["round"])
    episodes = {r["episode"] for r in recs}
    if len(episodes) != 1:
        raise AutottsError(f"trace: expected the records of exactly one episode, got {len(episodes)}")
    stop = next((r for r in recs if r["stop"]), None)
    cols, last = _columns([r for r in recs if not r["stop"]])
    order = sorted(last, key=lambda j: (next(i for i, c in enumerate(cols) if j in c), j))  # by opening round
    cell = lambda j, c, k, empty: c[j][k] if j in c else empty  # noqa: E731
    read = np.array([[cell(j, c, 2, 0) for c in cols] for j in order], dtype=int).reshape(len(order), len(cols))
    return Timeline(question=recs[0]["question"], seed=recs[0]["seed"], gold=recs[0].get("gold"),
                    result=stop["answer"] if stop else None, stop_round=stop["round"] if stop else None,
                    stop_by=stop.get("stop_by") if stop else None, tokens=int((stop or recs[-1]).get("tokens", 0)),
                    slots=order, branches=[last[j]["branch"] for j in order],
                    answer=[[cell(j, c, 0, None) for c in cols] for j in order],
                    status=[[cell(j, c, 1, "unopened") for c in cols] for j in order], read=read)


def _columns(steps: Sequence[dict]) -> tuple[list[dict[int, tuple]], dict[int, dict]]:
    """Per round, slot -> (answer, status, intervals read), carrying unchanged slots forward; and the last snapshots."""
    slots: dict[int, dict] = {}
    cols = []
    for rec in steps:
        read = {}
        for b in rec["branches"]:
            prev = slots.get(b["slot"], {"depth": 0, "status": "unopened"})
            newly_done = b["status"] == "finished" and prev["status"] != "finished"
            read[b["slot"]] = max(b["depth"] - prev["depth"] + newly_done, 0)
            slots[b["slot"]] = b
        cols.append({j: (s["answer"], s["status"], read.get(j, 0)) for j, s in slots.items()})
    return cols, slots


def trace_figure(records: Sequence[dict], title: str = "", top: int = 3) -> "Figure":
    """The width–depth picture of one episode's records, with the running vote of the `top` answers (and gold).

    Top answers are those with the highest peak support over the episode, so an answer that led and was
    then pruned away still shows.
    """
    from matplotlib.figure import Figure
    t = timeline(records)
    rows, cols = max(len(t.slots), 1), max(t.rounds, 1)
    width = float(np.clip(3.5 + 0.11 * cols, 7.0, 14.0))
    board_h = float(np.clip(0.13 * rows, 1.6, 8.0))
    fig = Figure(figsize=(width, board_h + 2.6), layout="constrained")
    vote_ax, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1.5, board_h])
    _draw_board(ax, t)
    _draw_votes(vote_ax, t, top)
    verdict = "correct" if t.correct else "wrong"
    head = (f"answered {t.result!r} ({verdict}; gold {t.gold!r}), {t.tokens:,} tokens"
            + (f", stop by {t.stop_by} at round {t.stop_round}" if t.stop_round is not None else ""))
    fig.suptitle(f"{title}\n{head}" if title else head, fontsize=9)
    return fig


def _board_rgba(t: Timeline) -> np.ndarray:
    """[rows, rounds, 4] cell colours: category colour, full when the branch read that round, pale when held."""
    from matplotlib.colors import to_rgba
    colors = {k: np.array(to_rgba(c)) for k, c in (("gold", GOLD), ("other", OTHER), ("none", NONE))}
    img = np.ones((max(len(t.slots), 1), max(t.rounds, 1), 4))
    for i in range(len(t.slots)):
        for r in range(t.rounds):
            alpha = _alpha(t.status[i][r], int(t.read[i, r]), r > 0 and t.status[i][r - 1] == "finished")
            if alpha:
                img[i, r] = alpha * colors[t.category(t.answer[i][r])] + (1 - alpha)
    return img


def _alpha(status: str, read: int, finished_before: bool) -> float:
    """Opacity of a cell: reads solid, holds pale, finished earlier faint (its answer still votes), else blank."""
    if status in ("unopened", "pruned"):
        return 0.0
    if finished_before:
        return 0.12
    return 1.0 if read else 0.4


def _draw_board(ax, t: Timeline) -> None:
    ax.imshow(_board_rgba(t), aspect="auto", interpolation="nearest", origin="upper",
              extent=(-0.5, max(t.rounds, 1) - 0.5, max(len(t.slots), 1) - 0.5, -0.5))
    marks = {"opened": ([], [], ">", "black"), "finished": ([], [], "o", "black"), "pruned": ([], [], "x", "black")}
    for i in range(len(t.slots)):
        for r in range(t.rounds):
            before = t.status[i][r - 1] if r else "unopened"
            now = t.status[i][r]
            if before == "unopened" and now != "unopened":
                _add(marks["opened"], r - 0.38, i)
            if now != before and now in ("finished", "pruned"):
                _add(marks[now], r, i)
            if t.read[i, r] > 1 and now == "active":
                ax.text(r, i, str(t.read[i, r]), ha="center", va="center", fontsize=5, color="white")
    for name, (xs, ys, marker, color) in marks.items():
        if not xs:
            continue
        style = {"facecolors": "none", "edgecolors": color} if marker == "o" else {"c": color}
        ax.scatter(xs, ys, marker=marker, s=12, linewidths=0.8, label=name, zorder=3, gid=f"mark:{name}", **style)
    if t.stop_round is not None:
        ax.axvline(t.rounds - 0.5, color="black", linestyle="--", linewidth=1.0, label="stop", gid="stop")
    ax.set_yticks(range(len(t.slots)))
    ax.set_yticklabels([f"#{s} b{b}" for s, b in zip(t.slots, t.branches)],
                       fontsize=max(4, min(7, 300 // max(len(t.slots), 1))))
    ax.set_ylabel("branch (slot, store index)")
    ax.set_xlabel("round")
    from matplotlib.ticker import FixedLocator, MaxNLocator
    ax.xaxis.set_major_locator(FixedLocator(range(t.rounds)) if t.rounds <= 25 else MaxNLocator(integer=True))
    ax.set_xlim(-0.5, max(t.rounds, 1) - 0.5)
    from matplotlib.patches import Patch
    handles, _ = ax.get_legend_handles_labels()
    handles = [Patch(color=GOLD, label="gold answer"), Patch(color=OTHER, label="other answer"),
               Patch(color=NONE, label="no answer")] + handles
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _add(mark: tuple, x: float, y: float) -> None:
    mark[0].append(x)
    mark[1].append(y)


def _draw_votes(ax, t: Timeline, top: int) -> None:
    votes = t.votes()
    rank = {a: (int(v.max()), int(v[-1])) for a, v in votes.items()}  # peak support, then final support
    shown = sorted(rank, key=lambda a: rank[a], reverse=True)[:top]
    if t.gold is not None and t.gold not in shown:
        shown.append(t.gold)  # drawn even when no branch ever holds it
    others = itertools.cycle(VOTE_COLORS)
    x = np.arange(t.rounds)
    for a in shown:
        gold = a == t.gold
        ax.step(x, votes.get(a, np.zeros(t.rounds, dtype=int)), where="mid", gid=f"vote:{a}",
                color=GOLD if gold else next(others), linewidth=1.8 if gold else 1.2,
                marker="o" if t.rounds <= 20 else None, markersize=3, label=_short(a) + (" (gold)" if gold else ""))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("branches", fontsize=8)
    ax.set_title("running vote: opened, unpruned branches by latest answer", fontsize=8, loc="left")
    ax.grid(True, alpha=0.25, linewidth=0.5)
    if shown:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _short(answer: str, width: int = 14) -> str:
    return repr(answer) if len(answer) <= width else repr(answer[: width - 1] + "…")


__all__ = ["NO_ANSWER", "Timeline", "timeline", "trace_figure"]
