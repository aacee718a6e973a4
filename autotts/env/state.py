"""Environment state and actions: the contract between env, controllers and the online runtime.

Shapes: E episodes x B branch slots. Slot b holds the b-th branch the episode
opened (branches open in a fixed order, so slot == opening position). The
state splits into what a controller may see (`Observation`) and the replay
oracle (`Hidden`: branch lengths, probe lists, finals) that only the replay
env reads. The online runtime fills an `Observation` from a live model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

# Branch slot status.
UNOPENED, ACTIVE, FINISHED, PRUNED = 0, 1, 2, 3
STATUS_NAMES = ("unopened", "active", "finished", "pruned")

# `advance` value that reads a branch to its end in one round.
FINISH = 1 << 30

# Completion keys order answers by when they completed (vote tie-breaks):
# round-major, then the controller's advance priority, then opens by slot.
KEY_ROUND = 1 << 20
KEY_OPEN = 1 << 19
NOT_FINISHED = 1 << 62


@dataclass(frozen=True)
class Observation:
    """What a controller sees; identical in replay, relaxed and live runs.

    [E,B] fields are int32 except `finish_key` (int64); [E] fields are int64.

    status: [E,B] UNOPENED/ACTIVE/FINISHED/PRUNED.
    depth: [E,B] intervals revealed by probing (0 for full reads).
    answer: [E,B] latest answer id (final answer once finished; -1 none).
    streak: [E,B] consecutive reveals equal to the latest answer (1 after the first).
    cost: [E,B] tokens charged to the slot so far.
    finish_key: [E,B] completion order key (NOT_FINISHED if not finished).
    opened_round: [E,B] round in which the slot was opened (-1 unopened).
    n_open: [E] slots opened; n_avail: [E] branches the episode may open.
    round: [E] rounds taken; done: [E] episode answered; result: [E] answer id.
    delta: [E] interval in tokens; question: [E] question index (for answer strings).
    seq_cost: [E] sequential tokens (the critical path): per round, the most tokens charged to any one
    slot in that round, summed over rounds -- what a user waits for when a round's branches decode in parallel.
    pool_winner/pool_top1/pool_top2/pool_size: [E] ordered majority vote over the final
    answers of finished branches, ties to the earliest completion (spec §0.1), kept
    up to date by the env as branches finish.
    """

    status: Tensor
    depth: Tensor
    answer: Tensor
    streak: Tensor
    cost: Tensor
    finish_key: Tensor
    opened_round: Tensor
    n_open: Tensor
    n_avail: Tensor
    round: Tensor
    done: Tensor
    result: Tensor
    delta: Tensor
    question: Tensor
    seq_cost: Tensor
    pool_winner: Tensor
    pool_top1: Tensor
    pool_top2: Tensor
    pool_size: Tensor

    @property
    def num_episodes(self) -> int:
        return int(self.status.shape[0])

    @property
    def slots(self) -> int:
        return int(self.status.shape[1])

    @property
    def total_cost(self) -> Tensor:
        """[E] tokens charged in total: always the sum of per-slot charges."""
        return self.cost.sum(1)


@dataclass(frozen=True)
class Hidden:
    """Replay oracle for the B slots of each episode (never shown to controllers)."""

    length: Tensor      # [E,B] branch tokens (0 for slots beyond n_avail)
    n_probes: Tensor    # [E,B]
    final: Tensor       # [E,B] final answer id
    probe_base: Tensor  # [E,B] flat index of probe 0 in store.probes.view(-1)
    branch: Tensor      # [E,B] branch index in the store (-1 beyond n_avail)
    delta: Tensor       # [E,B] the episode's interval in tokens, per slot (sparse work needs no row lookup)


@dataclass(frozen=True)
class PoolTable:
    """Per-episode tallies behind the pool vote: count [E,V] and first completion key [E,V] per answer id."""

    count: Tensor
    first: Tensor


@dataclass(frozen=True)
class EnvState:
    obs: Observation
    hidden: Hidden
    pool: PoolTable


@dataclass(frozen=True)
class Action:
    """One macro-action per episode per round.

    Order of effects inside `step`: stop, prune, advance (in `priority` order,
    which fixes completion order within the round), open.
    stop: [E] answer now with `answer` [E]; nothing else happens in that episode.
    prune: [E,B] stop a branch for good (its tokens stay spent); None = none.
    advance: [E,B] intervals to read (0 = hold, FINISH = to the end); None = hold all.
    priority: [E,B] lower runs first; None = slot order.
    open: [E] branches to open; full_read: [E] open them as full reads (cost = length); None = none.
    why: optional reason codes (rule/head ids) for traces: 'stop' [E], 'open' [E], 'branch' [E,B].
    None fields let the env skip work an action does not ask for (it matters on CPU).
    """

    stop: Tensor
    answer: Tensor
    prune: Tensor | None = None
    advance: Tensor | None = None
    open: Tensor | None = None
    full_read: Tensor | None = None
    priority: Tensor | None = None
    why: dict[str, Tensor] | None = None

    @staticmethod
    def noop(num_episodes: int, device: torch.device | str = "cpu") -> "Action":
        return Action(stop=torch.zeros(num_episodes, dtype=torch.bool, device=device),
                      answer=torch.full((num_episodes,), -1, dtype=torch.long, device=device))


def index_tree(obj: Any, idx: Tensor) -> Any:
    """Select rows `idx` of every tensor in a (nested) dataclass/dict/tuple: compacts live episodes."""
    if isinstance(obj, Tensor):
        return obj.index_select(0, idx) if obj.dim() > 0 else obj
    if isinstance(obj, dict):
        return {k: index_tree(v, idx) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(index_tree(v, idx) for v in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return replace(obj, **{f.name: index_tree(getattr(obj, f.name), idx) for f in fields(obj) if f.init})
    return obj
