"""Drive a controller through the batched env until every episode has answered."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch
from torch import Tensor

from autotts.env.batched import reset, step
from autotts.env.dense import dense_step, resolve_step_mode
from autotts.env.episodes import Episodes
from autotts.env.fastops import flat_nonzero, sync_free
from autotts.env.state import Action, EnvState, index_tree
from autotts.store.replay_store import ReplayStore


class Recorder(Protocol):
    """Watches a rollout. `rows` maps batch rows to episode ids (the batch shrinks as episodes end).

    States are updated in place by the next step, so a recorder copies what it keeps.
    """

    def on_action(self, state: EnvState, action: Action, reasons: tuple[str, ...], rows: Tensor) -> None: ...

    def on_state(self, state: EnvState, rows: Tensor) -> None: ...


@dataclass(frozen=True)
class Rollout:
    """Per-episode outcome: answer id [E] (-1 none), correct [E] bool, tokens [E], rounds [E], opened [E],
    seq_tokens [E] (the critical path: `Observation.seq_cost`)."""

    answer: Tensor
    correct: Tensor
    tokens: Tensor
    rounds: Tensor
    opened: Tensor
    seq_tokens: Tensor

    def split(self, parts: int) -> list["Rollout"]:
        """The rollout of `parts` equal, consecutive blocks of episodes (a folded sweep, one block per setting)."""
        n = len(self.answer) // parts
        return [Rollout(*(getattr(self, f.name)[i * n:(i + 1) * n] for f in fields(self))) for i in range(parts)]


def rollout(store: ReplayStore, episodes: Episodes, controller: Any, context: dict[str, Tensor] | None = None,
            max_rounds: int = 10_000, recorder: Recorder | None = None, compact_below: float = 0.5,
            step_mode: str = "auto") -> Rollout:
    """Run `controller` on `episodes` to the end.

    Finished episodes are dropped from the batch once fewer than `compact_below`
    of the rows are live, so a long tail of slow episodes stays cheap. The env and
    the controller run under `torch.inference_mode`, which takes a quarter off the
    per-op overhead that dominates small batches; recorders run outside it, so the
    copies they keep are ordinary tensors (usable with autograd).

    `step_mode` (auto | sparse | dense, see `autotts.env.dense`): the dense step runs
    with the controllers in their sync-free forms, so a round waits for the device
    once, for the live count (compaction then needs no further sync).
    """
    dense = resolve_step_mode(step_mode, store.device) == "dense"
    with torch.inference_mode(), sync_free(dense):
        state = reset(store, episodes, controller.slots)
        memory = controller.init(state.obs, context)
    e = len(episodes)
    dev = state.obs.status.device
    out = {k: torch.zeros(e, dtype=torch.long, device=dev)
           for k in ("answer", "tokens", "rounds", "opened", "seq_tokens")}
    rows = torch.arange(e, device=dev)
    if recorder is not None:
        recorder.on_state(state, rows)
    for _ in range(max_rounds):
        with torch.inference_mode(), sync_free(dense):
            action, memory = controller.act(state.obs, memory)
        if recorder is not None:
            recorder.on_action(state, action, controller.reasons, rows)
        with torch.inference_mode():
            state = (dense_step if dense else step)(store, state, action, donate=True)
        if recorder is not None:
            recorder.on_state(state, rows)
        done = state.obs.done
        n_live = done.numel() - int(done.sum())  # the round's one host sync (the loop must know when to end)
        if n_live == 0:
            break
        if n_live < compact_below * done.numel():
            live, ended = _split(done, n_live) if dense else (flat_nonzero(~done), flat_nonzero(done))
            _record(out, state, rows, ended)
            with torch.inference_mode():
                state, memory, rows = index_tree(state, live), index_tree(memory, live), rows[live]
    else:
        raise RuntimeError(f"controller did not stop within {max_rounds} rounds")
    _record(out, state, rows, torch.arange(rows.numel(), device=dev))
    gold = store.gold[episodes.question.to(dev)]
    return Rollout(answer=out["answer"], correct=(out["answer"] == gold) & (out["answer"] >= 0),
                   tokens=out["tokens"], rounds=out["rounds"], opened=out["opened"], seq_tokens=out["seq_tokens"])


def _split(done: Tensor, n_live: int) -> tuple[Tensor, Tensor]:
    """(live rows, finished rows), each ascending, from the known live count: a stable sort, no host sync."""
    order = torch.sort(done.to(torch.uint8), stable=True).indices
    return order[:n_live], order[n_live:]


def _record(out: dict[str, Tensor], state: EnvState, rows: Tensor, pick: Tensor) -> None:
    """Write the outcome of batch rows `pick` (indices: no further host syncs) to their episodes."""
    obs = state.obs
    idx = rows.index_select(0, pick)
    for name, value in (("answer", obs.result), ("tokens", obs.total_cost), ("rounds", obs.round),
                        ("opened", obs.n_open), ("seq_tokens", obs.seq_cost)):
        out[name].index_copy_(0, idx, value.index_select(0, pick).to(out[name].dtype))
