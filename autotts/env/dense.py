"""The dense masked step: `batched.step`'s semantics with fixed-shape ops only, for accelerators.

The sparse step finds the branches an action touches (``nonzero``), gathers
them, works on the short list and scatters back: the fastest form on CPU, but
every data-dependent size is a host sync on a GPU (about five per round).
This step computes every field for all [episodes, slots] and keeps the new
value where the action applies (``torch.where``), so a round queues kernels
and never waits for the device. `rollout` takes it on CUDA (``step_mode``
auto), and runs the controllers under `fastops.sync_free` so they take their
masked forms too; the one sync left per round is the rollout's live count.
tests/test_env_dense.py checks it against the sparse step field by field.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from autotts.env.pool import POOL_FIELDS, fold_dense
from autotts.env.state import ACTIVE, FINISH, FINISHED, KEY_OPEN, KEY_ROUND, PRUNED, Action, EnvState, Hidden
from autotts.errors import AutottsError
from autotts.store.replay_store import ReplayStore

STEP_MODES = ("auto", "sparse", "dense")


def resolve_step_mode(mode: str, device: torch.device | str) -> str:
    """'sparse' or 'dense' for `mode` on `device`: auto is dense on CUDA, sparse elsewhere (fastest on CPU)."""
    if mode not in STEP_MODES:
        raise AutottsError(f"env.step_mode={mode!r}: expected one of {', '.join(STEP_MODES)}")
    if mode == "auto":
        return "dense" if torch.device(device).type == "cuda" else "sparse"
    return mode


def dense_step(store: ReplayStore, state: EnvState, action: Action, donate: bool = False) -> EnvState:
    """`batched.step` without host syncs: stop, prune, advance (priority order), open; pure.

    `donate` is accepted for the same signature; the dense step writes new tensors anyway.
    """
    obs, hid = state.obs, state.hidden
    live = ~obs.done
    stop = action.stop & live
    acting = (live & ~stop)[:, None]
    f = {k: getattr(obs, k) for k in ("status", "depth", "answer", "streak", "cost", "finish_key", "opened_round")}
    slot = torch.arange(obs.slots, dtype=torch.int32, device=obs.status.device)[None, :]
    completed = torch.zeros_like(acting).expand_as(f["status"])
    if action.prune is not None:
        f["status"] = torch.where(action.prune & acting & (f["status"] == ACTIVE), PRUNED, f["status"])
    if action.advance is not None:
        completed = _advance(store, hid, f, action, acting, obs.round, slot)
    n_open = obs.n_open
    if action.open is not None:
        count = torch.minimum(action.open.clamp(min=0) * acting[:, 0], obs.n_avail - obs.n_open)
        completed = completed | _open(store, hid, f, action, obs.n_open, count, obs.round, slot)
        n_open = n_open + count
    pool, summary = fold_dense(state.pool, {k: getattr(obs, k) for k in POOL_FIELDS}, completed, f["answer"],
                               f["finish_key"])
    # Sequential tokens: the round's largest single-branch charge (costs only grow; uncharged slots add 0).
    seq_cost = obs.seq_cost + (f["cost"] - obs.cost).amax(1).long()
    new = replace(obs, **f, **summary, n_open=n_open, seq_cost=seq_cost, round=obs.round + acting[:, 0].long(),
                  done=obs.done | stop, result=torch.where(stop, action.answer, obs.result))
    return EnvState(new, hid, pool)


def _advance(store: ReplayStore, hid: Hidden, f: dict[str, Tensor], action: Action, acting: Tensor, rounds: Tensor,
             slot: Tensor) -> Tensor:
    """Reveal up to `advance` probes of every active branch (in place in `f`); returns [E,B] branches that finished."""
    status, depth0 = f["status"], f["depth"]
    adv = action.advance.clamp(max=FINISH).to(torch.int32)
    moving = (adv > 0) & (status == ACTIVE) & acting
    remaining = hid.n_probes - depth0
    depth = depth0 + torch.minimum(adv, remaining)
    cost = depth * hid.delta
    answer, streak = _probe_at(store, hid.probe_base + depth - 1, moving)
    fin = moving & (adv > remaining)
    tail = (hid.length - depth * hid.delta).clamp(min=0)
    cost = torch.where(fin, cost + tail, cost)
    streak = torch.where(fin, torch.where(answer == hid.final, streak + 1, 1), streak)
    answer = torch.where(fin, hid.final, answer)
    prio = action.priority if action.priority is not None else slot
    f["status"] = torch.where(fin, FINISHED, status)
    f["finish_key"] = torch.where(fin, rounds[:, None] * KEY_ROUND + prio, f["finish_key"])
    for name, value in (("depth", depth), ("cost", cost), ("answer", answer), ("streak", streak)):
        f[name] = torch.where(moving, value.to(f[name].dtype), f[name])
    return fin


def _open(store: ReplayStore, hid: Hidden, f: dict[str, Tensor], action: Action, n_open: Tensor, count: Tensor,
          rounds: Tensor, slot: Tensor) -> Tensor:
    """Open slots n_open .. n_open + count - 1 (in place in `f`); returns [E,B] branches that finished on opening.

    Probes reveal probe 0 for delta; full reads (and probe-opens of a branch with no
    probes, as the reference's explore step) reveal the final answer for the length.
    """
    lo = n_open[:, None]
    opening = (slot >= lo) & (slot < lo + count[:, None])
    finishes = hid.n_probes == 0
    if action.full_read is not None:
        finishes = finishes | action.full_read[:, None]
    full, probe = opening & finishes, opening & ~finishes
    first, _ = _probe_at(store, hid.probe_base, probe)
    f["opened_round"] = torch.where(opening, rounds[:, None].to(torch.int32), f["opened_round"])
    f["streak"] = torch.where(opening, 1, f["streak"])
    f["status"] = torch.where(probe, ACTIVE, torch.where(full, FINISHED, f["status"]))
    f["depth"] = torch.where(probe, 1, f["depth"])
    f["answer"] = torch.where(probe, first, torch.where(full, hid.final, f["answer"]))
    f["cost"] = torch.where(probe, hid.delta, torch.where(full, hid.length, f["cost"]))
    f["finish_key"] = torch.where(full, rounds[:, None] * KEY_ROUND + KEY_OPEN + slot, f["finish_key"])
    return full


def _probe_at(store: ReplayStore, index: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """int32 (answer id, run length) of the probes at flat `index` [E,B] where `valid`; 0 elsewhere."""
    table, bits = store.probe_lookup
    if table.numel() == 0:  # a store without probes: no branch is ever active
        zero = torch.zeros_like(index, dtype=torch.int32)
        return zero, zero
    packed = table.index_select(0, torch.where(valid, index, 0).view(-1)).view(index.shape)
    return (packed >> bits).to(torch.int32), (packed & ((1 << bits) - 1)).to(torch.int32)


__all__ = ["STEP_MODES", "dense_step", "resolve_step_mode"]
