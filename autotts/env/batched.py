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
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from autotts.env.episodes import Episodes
from autotts.env.state import (ACTIVE, FINISHED, KEY_OPEN, KEY_ROUND, NOT_FINISHED, PRUNED, Action, EnvState,
                               Hidden, Observation)
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
    hidden = Hidden(
        length=torch.where(valid, store.length[bq, bj], 0),
        n_probes=torch.where(valid, store.n_probes[bq, bj], 0),
        final=torch.where(valid, store.final[bq, bj], -1),
        probe_base=(bq * store.max_branches + bj) * store.max_probes,
        branch=branch,
    )
    zeros = torch.zeros((e, slots), dtype=torch.long, device=dev)
    ze = torch.zeros(e, dtype=torch.long, device=dev)
    obs = Observation(
        status=zeros.clone(), depth=zeros.clone(), answer=zeros - 1, streak=zeros.clone(), cost=zeros.clone(),
        finish_key=torch.full((e, slots), NOT_FINISHED, dtype=torch.long, device=dev),
        opened_round=zeros - 1, n_open=ze.clone(), n_avail=n_avail, round=ze.clone(),
        done=torch.zeros(e, dtype=torch.bool, device=dev), result=ze - 1,
        delta=store.delta[q], question=q,
    )
    return EnvState(obs, hidden)


def step(store: ReplayStore, state: EnvState, action: Action) -> EnvState:
    """Apply one macro-action per episode: stop, then prune, then advance (priority order), then open."""
    obs, hid = state.obs, state.hidden
    live = ~obs.done
    stop = action.stop & live
    acting = live & ~stop
    touches = action.prune is not None or action.advance is not None or action.open is not None
    out = {k: getattr(obs, k).clone() for k in _BRANCH_FIELDS} if touches else {}
    flat = {k: v.view(-1) for k, v in out.items()}
    if action.prune is not None:
        _prune(flat, action.prune, acting)
    if action.advance is not None:
        _advance(store, obs, hid, flat, action, acting)
    n_open = obs.n_open
    if action.open is not None:
        n_open = n_open + _open(store, obs, hid, flat, action, acting)
    new = replace(obs, **out, n_open=n_open, round=obs.round + acting.long(), done=obs.done | stop,
                  result=torch.where(stop, action.answer, obs.result))
    return EnvState(new, hid)


def _prune(flat: dict[str, Tensor], prune: Tensor, acting: Tensor) -> None:
    idx = (prune & acting[:, None]).view(-1).nonzero().squeeze(1)
    status = flat["status"]
    status[idx] = torch.where(status[idx] == ACTIVE, PRUNED, status[idx])


def _advance(store: ReplayStore, obs: Observation, hid: Hidden, flat: dict[str, Tensor], action: Action,
             acting: Tensor) -> None:
    """Reveal up to `advance` probes of each active branch; advancing past the last one finishes it."""
    want = (action.advance > 0) & acting[:, None]
    idx = want.view(-1).nonzero().squeeze(1)
    idx = idx[flat["status"][idx] == ACTIVE]
    if idx.numel() == 0:
        return
    b = obs.slots
    row = idx // b
    adv = action.advance.view(-1)[idx]
    depth0 = flat["depth"][idx]
    n_probes = hid.n_probes.view(-1)[idx]
    n_rev = torch.minimum(adv, n_probes - depth0)
    fin = adv > n_probes - depth0
    depth = depth0 + n_rev
    last = (hid.probe_base.view(-1)[idx] + depth - 1).clamp(min=0)
    revealed = n_rev > 0
    answer = torch.where(revealed, store.probes.view(-1)[last], flat["answer"][idx])
    streak = torch.where(revealed, store.probe_run.view(-1)[last], flat["streak"][idx])
    delta = obs.delta[row]
    final = hid.final.view(-1)[idx]
    cost = n_rev * delta + torch.where(fin, (hid.length.view(-1)[idx] - depth * delta).clamp(min=0), 0)
    prio = action.priority.view(-1)[idx] if action.priority is not None else idx % b
    flat["depth"][idx] = depth
    flat["cost"][idx] += cost
    flat["answer"][idx] = torch.where(fin, final, answer)
    flat["streak"][idx] = torch.where(fin, torch.where(answer == final, streak + 1, 1), streak)
    flat["status"][idx] = torch.where(fin, FINISHED, ACTIVE)
    flat["finish_key"][idx] = torch.where(fin, obs.round[row] * KEY_ROUND + prio, NOT_FINISHED)


def _open(store: ReplayStore, obs: Observation, hid: Hidden, flat: dict[str, Tensor], action: Action,
          acting: Tensor) -> Tensor:
    """Open the next `open` branches in order, as probes (delta, first probe) or full reads (length, final)."""
    count = torch.where(acting, action.open.clamp(min=0), 0)
    count = torch.minimum(count, obs.n_avail - obs.n_open)
    k = int(count.max()) if count.numel() else 0
    if k == 0:
        return count
    j = torch.arange(k, device=count.device)[None, :]
    pick = (j < count[:, None]).view(-1).nonzero().squeeze(1)
    row = pick // k
    slot = obs.n_open[row] + pick % k
    idx = row * obs.slots + slot
    full = action.full_read[row] if action.full_read is not None else torch.zeros_like(row, dtype=torch.bool)
    # A probe-open of a branch with no probes finishes it at once, as the reference's explore step does.
    finishes = full | (hid.n_probes.view(-1)[idx] == 0)
    length = hid.length.view(-1)[idx]
    flat["status"][idx] = torch.where(finishes, FINISHED, ACTIVE)
    flat["depth"][idx] = torch.where(finishes, 0, 1)
    flat["answer"][idx] = torch.where(finishes, hid.final.view(-1)[idx], store.probes.view(-1)[hid.probe_base.view(-1)[idx]])
    flat["streak"][idx] = 1
    flat["cost"][idx] = torch.where(finishes, length, obs.delta[row])
    key = obs.round[row] * KEY_ROUND + KEY_OPEN + slot
    flat["finish_key"][idx] = torch.where(finishes, key, NOT_FINISHED)
    flat["opened_round"][idx] = obs.round[row]
    return count
