"""The batched functional replay environment: ``reset`` -> state, ``step(state, action)`` -> state.

All E episodes advance together as tensor ops (no Python loop over episodes or
branches), so thousands of episodes -- or a whole ES population folded into
the episode dimension -- cost one call per round. Work is sparse: only the
branches an action touches are gathered and written (flat indices), because
dense [E,B] selects dominate the cost on CPU.

Cost semantics (DESIGN.md, identical to the reference replay):
* opening a branch, or advancing it while it has unrevealed probes, reveals the
  next probe for delta tokens;
* advancing past the last probe finishes it: reveals the final answer for
  ``max(0, length - delta * probes_charged)``;
* a full read of a fresh branch reveals the final answer for exactly ``length``;
* finished and pruned branches are never charged again.

Sequential tokens (``Observation.seq_cost``, the critical path) are counted in
the same place: each round adds the largest charge any one branch took in it.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from autotts.env.episodes import Episodes
from autotts.env.fastops import equal, flat_nonzero, gather, positive, put, rows_and
from autotts.env.pool import POOL_FIELDS, add_completions, empty_pool
from autotts.env.state import (ACTIVE, FINISH, FINISHED, KEY_OPEN, KEY_ROUND, NOT_FINISHED, PRUNED, Action, EnvState,
                               Hidden, Observation, PoolTable)
from autotts.store.replay_store import ReplayStore


# Observation fields a step may write per branch (cloned once per step, then written sparsely).
_BRANCH_FIELDS = ("status", "depth", "answer", "streak", "cost", "finish_key", "opened_round")


def reset(store: ReplayStore, episodes: Episodes, slots: int) -> EnvState:
    """Fresh state for `episodes` with `slots` branch slots (the most branches any episode may open)."""
    dev = store.device
    q = episodes.question.to(dev)
    e = q.shape[0]
    order = episodes.order.to(dev)
    if order.shape[1] < slots:
        order = torch.nn.functional.pad(order, (0, slots - order.shape[1]), value=-1)
    n_avail = torch.minimum(episodes.n_avail.to(dev), torch.tensor(slots, device=dev))
    valid = torch.arange(slots, device=dev)[None, :] < n_avail[:, None]
    branch = torch.where(valid, order[:, :slots], -1)
    bq, bj = q[:, None].expand(-1, slots), branch.clamp(min=0)
    i32 = torch.int32  # per-branch fields are int32: half the memory traffic of int64, and it stays in cache
    base = (bq * store.max_branches + bj) * store.max_probes
    hidden = Hidden(
        length=torch.where(valid, store.length[bq, bj], 0).to(i32),
        n_probes=torch.where(valid, store.n_probes[bq, bj], 0).to(i32),
        final=torch.where(valid, store.final[bq, bj], -1).to(i32),
        probe_base=base.to(i32) if store.probes.numel() < 2**31 else base,
        branch=branch,
        delta=store.delta[q][:, None].expand(-1, slots).to(i32).contiguous(),
    )
    zeros = torch.zeros((e, slots), dtype=i32, device=dev)
    ze = torch.zeros(e, dtype=torch.long, device=dev)
    obs = Observation(
        status=zeros.clone(), depth=zeros.clone(), answer=zeros - 1, streak=zeros.clone(), cost=zeros.clone(),
        finish_key=torch.full((e, slots), NOT_FINISHED, dtype=torch.long, device=dev),
        opened_round=zeros - 1, n_open=ze.clone(), n_avail=n_avail, round=ze.clone(),
        done=torch.zeros(e, dtype=torch.bool, device=dev), result=ze - 1,
        delta=store.delta[q], question=q, seq_cost=ze.clone(),
        pool_winner=ze - 1, pool_top1=ze.clone(), pool_top2=ze.clone(), pool_size=ze.clone(),
    )
    return EnvState(obs, hidden, empty_pool(e, store.final_vocab_size, dev))


def step(store: ReplayStore, state: EnvState, action: Action, donate: bool = False) -> EnvState:
    """Apply one macro-action per episode: stop, then prune, then advance (priority order), then open.

    Pure by default. With ``donate=True`` the input state's buffers are updated in
    place and must not be used again (as with a donated buffer under ``jax.jit``);
    rollouts donate, since copying [E,B] tensors every round costs more than the step.
    """
    obs, hid = state.obs, state.hidden
    live = ~obs.done
    stop = action.stop & live
    acting = live & ~stop
    touches = action.prune is not None or action.advance is not None or action.open is not None
    copy = (lambda t: t) if donate else torch.clone
    out = {k: copy(getattr(obs, k)) for k in _BRANCH_FIELDS} if touches else {}
    flat = {k: v.view(-1) for k, v in out.items()}
    done: list[Tensor] = []  # flat indices of branches that finished this round
    charges: list[tuple[Tensor, Tensor]] = []  # (flat index, tokens charged this round) of every charged branch
    if action.prune is not None:
        _prune(flat, action.prune, acting)
    if action.advance is not None:
        done.append(_advance(store, obs, hid, flat, action, acting, charges))
    n_open = obs.n_open
    if action.open is not None:
        count, opened_done = _open(store, obs, hid, flat, action, acting, charges)
        n_open = n_open + count
        done.append(opened_done)
    seq_cost = _add_round_peak(obs, charges)
    pool = state.pool
    if done and sum(d.numel() for d in done):
        pool, summary = _fold_pool(obs, state.pool, flat, done[0] if len(done) == 1 else torch.cat(done), copy)
        out.update(summary)
    new = replace(obs, **out, n_open=n_open, seq_cost=seq_cost, round=obs.round + acting.long(), done=obs.done | stop,
                  result=torch.where(stop, action.answer, obs.result))
    return EnvState(new, hid, pool)


def _fold_pool(obs: Observation, pool: PoolTable, flat: dict[str, Tensor], idx: Tensor, copy
               ) -> tuple[PoolTable, dict[str, Tensor]]:
    """New pool tallies and vote summary after the completions at flat indices `idx`."""
    pool = PoolTable(copy(pool.count), copy(pool.first))
    summary = {k: copy(getattr(obs, k)) for k in POOL_FIELDS}
    add_completions(pool, summary, idx // obs.slots, gather(flat["answer"], idx), gather(flat["finish_key"], idx))
    return pool, summary


def _add_round_peak(obs: Observation, charges: list[tuple[Tensor, Tensor]]) -> Tensor:
    """[E] `seq_cost` plus this round's largest single-branch charge per episode (0 where nothing was charged)."""
    charges = [(i, c) for i, c in charges if i.numel()]
    if not charges:
        return obs.seq_cost
    idx = charges[0][0] if len(charges) == 1 else torch.cat([i for i, _ in charges])
    tok = charges[0][1] if len(charges) == 1 else torch.cat([c.to(torch.long) for _, c in charges])
    peak = torch.zeros_like(obs.seq_cost).scatter_reduce_(0, idx // obs.slots, tok.to(torch.long), "amax")
    return obs.seq_cost + peak


def _prune(flat: dict[str, Tensor], prune: Tensor, acting: Tensor) -> None:
    idx = flat_nonzero(rows_and(prune, acting))
    status = gather(flat["status"], idx)
    put(flat["status"], idx, torch.where(status == ACTIVE, PRUNED, status))


def _advance(store: ReplayStore, obs: Observation, hid: Hidden, flat: dict[str, Tensor], action: Action,
             acting: Tensor, charges: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Reveal up to `advance` probes of each active branch; advancing past the last one finishes it.

    Returns the flat indices of the branches that finished and appends each
    advanced branch's charge of this round to `charges`. All branches take the
    cheap path (new depth, probe answer and cost); the few that finish are then
    patched on a short list, so no dense select runs over the long one.
    """
    status = flat["status"].view(obs.status.shape)  # after this step's prunes
    idx = flat_nonzero(rows_and(positive(action.advance) & equal(status, ACTIVE), acting))
    if idx.numel() == 0:
        return idx
    adv = gather(action.advance.reshape(-1), idx)
    if adv.dtype != torch.int32:
        adv = adv.clamp(max=FINISH).to(torch.int32)
    depth0 = gather(flat["depth"], idx)
    remaining = gather(hid.n_probes.view(-1), idx) - depth0
    n_rev = torch.minimum(adv, remaining)
    depth = depth0 + n_rev
    delta = gather(hid.delta.view(-1), idx)
    cost = depth * delta  # an active branch has paid delta for each probe it revealed, nothing else
    # An active branch was opened as a probe (depth >= 1) and holds its latest probe, so the probe at
    # depth - 1 is its answer (and its run its streak) whether or not this advance revealed anything.
    answer, streak = _probe_at(store, gather(hid.probe_base.view(-1), idx) + depth - 1)
    fin = flat_nonzero(adv > remaining)  # positions (in idx) of the branches read past their last probe
    done = gather(idx, fin)
    if fin.numel():
        final = gather(hid.final.view(-1), done)
        tail = (gather(hid.length.view(-1), done) - gather(depth, fin) * gather(delta, fin)).clamp(min=0)
        put(cost, fin, gather(cost, fin) + tail)
        put(streak, fin, torch.where(gather(answer, fin) == final, gather(streak, fin) + 1, 1))
        put(answer, fin, final)
        put(flat["status"], done, FINISHED)
        prio = gather(action.priority.reshape(-1), done) if action.priority is not None else done % obs.slots
        put(flat["finish_key"], done, gather(obs.round, done // obs.slots) * KEY_ROUND + prio)
    charges.append((idx, cost - depth0 * delta))  # an active branch had paid delta per revealed probe
    for name, value in (("depth", depth), ("cost", cost), ("answer", answer), ("streak", streak)):
        put(flat[name], idx, value)
    return done


def _open(store: ReplayStore, obs: Observation, hid: Hidden, flat: dict[str, Tensor], action: Action,
          acting: Tensor, charges: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Open the next `open` branches in order, as probes (delta, first probe) or full reads (length, final).

    Returns the number opened per episode and the flat indices of branches that finished on opening;
    appends each opened branch's charge (its whole cost so far) to `charges`.
    """
    count = torch.minimum(action.open.clamp(min=0) * acting, obs.n_avail - obs.n_open)
    k = int(count.max()) if count.numel() else 0
    if k == 0:
        return count, count[:0]
    row, slot = _slots_to_open(obs, count, k)
    idx = row * obs.slots + slot
    opened_round = gather(obs.round, row)
    put(flat["opened_round"], idx, opened_round)
    put(flat["streak"], idx, 1)
    # A probe-open of a branch with no probes finishes it at once, as the reference's explore step does.
    finishes = gather(hid.n_probes.view(-1), idx) == 0
    if action.full_read is not None:
        finishes = finishes | gather(action.full_read, row)
    full = flat_nonzero(finishes)
    if full.numel() < idx.numel():
        _open_probes(store, hid, flat, idx if full.numel() == 0 else gather(idx, flat_nonzero(~finishes)))
    if full.numel() == 0:
        charges.append((idx, gather(flat["cost"], idx)))
        return count, full
    opened = idx
    if full.numel() < idx.numel():
        idx, slot, opened_round = gather(idx, full), gather(slot, full), gather(opened_round, full)
    _open_full(hid, flat, idx, opened_round * KEY_ROUND + KEY_OPEN + slot)
    charges.append((opened, gather(flat["cost"], opened)))  # a fresh slot's cost is all charged this round
    return count, idx


def _slots_to_open(obs: Observation, count: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(row, slot) of each branch to open: slots n_open .. n_open + count - 1 of each row; k = count.max()."""
    if k == 1:  # at most one per episode: the rows that open are the picks
        row = flat_nonzero(count)
        return row, gather(obs.n_open, row)
    pick = flat_nonzero(torch.arange(k, device=count.device)[None, :] < count[:, None])
    row = pick // k
    return row, gather(obs.n_open, row) + pick % k


def _open_probes(store: ReplayStore, hid: Hidden, flat: dict[str, Tensor], idx: Tensor) -> None:
    """probe_new: reveal probe 0 of each branch for delta tokens."""
    put(flat["status"], idx, ACTIVE)
    put(flat["depth"], idx, 1)
    put(flat["answer"], idx, _probe_at(store, gather(hid.probe_base.view(-1), idx))[0])
    put(flat["cost"], idx, gather(hid.delta.view(-1), idx))


def _open_full(hid: Hidden, flat: dict[str, Tensor], idx: Tensor, key: Tensor) -> None:
    """A full read (or the explore step of a branch without probes): the final answer for the whole length."""
    put(flat["status"], idx, FINISHED)
    put(flat["answer"], idx, gather(hid.final.view(-1), idx))
    put(flat["cost"], idx, gather(hid.length.view(-1), idx))
    put(flat["finish_key"], idx, key)


def _probe_at(store: ReplayStore, flat_index: Tensor) -> tuple[Tensor, Tensor]:
    """int32 answer id and run length (`ReplayStore.probe_run`) of the probes at flat indices into store.probes."""
    table, bits = store.probe_lookup
    packed = gather(table, flat_index)
    return (packed >> bits).to(torch.int32), (packed & ((1 << bits) - 1)).to(torch.int32)
