"""Observation features: the ONE place where an `Observation` becomes numbers for a policy.

Replay, the relaxed trainer and the online runtime all call `pool_features`,
`branch_features` and `completed_features`; the exported manifest records
`POOL_FEATURES`, `BRANCH_FEATURES` and `COMPLETED_FEATURES` so a controller
is never run on features it was not trained on. Every feature is computed
from what a live run also knows (answers revealed, tokens spent, rounds),
never from the replay oracle.
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotts.controllers.vote import beta_confidence
from autotts.env.state import ACTIVE, FINISHED, Observation

POOL_FEATURES = ("pool_size", "pool_conf", "pool_share", "pool_margin", "live_share", "agree_active",
                 "active", "opened", "can_open", "spent", "round")
BRANCH_FEATURES = ("depth", "stable", "agrees_pool", "peer_share", "is_leader", "cost")
COMPLETED_FEATURES = ("length_rel", "length", "order")
LIVE_FEATURES = ("stable", "depth")
FEATURE_VERSION = 1


def _log_units(x: Tensor, scale: float) -> Tensor:
    return torch.log1p(x.clamp(min=0).float()) / scale


def peer_counts(obs: Observation) -> tuple[Tensor, Tensor]:
    """For each live (active or finished) slot, how many live slots share its current answer; and live mask.

    Sort-based (O(B log B) per episode): the pairwise version was the costliest op of a round.
    """
    live = ((obs.status == ACTIVE) | (obs.status == FINISHED)) & (obs.answer >= 0)
    vals = torch.where(live, obs.answer.long(), torch.iinfo(torch.long).max)
    sorted_vals, idx = vals.sort(dim=1)
    starts = torch.ones_like(live)
    starts[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]
    run = starts.long().cumsum(1) - 1
    counts = torch.zeros_like(run).scatter_add_(1, run, torch.ones_like(run))
    peers = torch.empty_like(run).scatter_(1, idx, counts.gather(1, run))
    return (peers * live).float(), live


def policy_inputs(obs: Observation) -> tuple[Tensor, Tensor]:
    """(pool features [E, F], branch features [E, B, F']): what the policy's heads read, sharing one peer count."""
    peers, live = peer_counts(obs)
    return pool_features(obs, peers, live), branch_features(obs, peers, live)


def pool_features(obs: Observation, peers: Tensor | None = None, live: Tensor | None = None) -> Tensor:
    """[E, len(POOL_FEATURES)] episode-level features."""
    if peers is None or live is None:
        peers, live = peer_counts(obs)
    size = obs.pool_size.float()
    denom = size.clamp(min=1)
    active = obs.status == ACTIVE
    n_active = active.sum(1).float()
    n_live = live.sum(1).float()
    agree = (active & (obs.answer == obs.pool_winner[:, None]) & (obs.pool_winner[:, None] >= 0)).sum(1).float()
    delta = obs.delta.float().clamp(min=1)
    cols = [
        _log_units(size, 4.0),
        beta_confidence(obs.pool_top1, obs.pool_top2, obs.slots).float(),
        obs.pool_top1.float() / denom,
        (obs.pool_top1 - obs.pool_top2).float() / denom,
        peers.max(1).values / n_live.clamp(min=1),
        agree / n_active.clamp(min=1),
        _log_units(n_active, 4.0),
        _log_units(obs.n_open.float(), 4.0),
        (obs.n_open < obs.n_avail).float(),
        _log_units(obs.total_cost.float() / delta, 8.0),
        _log_units(obs.round.float(), 4.0),
    ]
    return torch.stack(cols, dim=1)


def branch_features(obs: Observation, peers: Tensor | None = None, live: Tensor | None = None) -> Tensor:
    """[E, B, len(BRANCH_FEATURES)] per-slot features (meaningful for active slots)."""
    if peers is None or live is None:
        peers, live = peer_counts(obs)
    n_live = live.sum(1, keepdim=True).float().clamp(min=1)
    depth = obs.depth.float()
    leader = peers == peers.max(1, keepdim=True).values
    cols = [
        _log_units(depth, 4.0),
        obs.streak.float().clamp(max=8) / 8,
        ((obs.answer == obs.pool_winner[:, None]) & (obs.pool_winner[:, None] >= 0)).float(),
        peers / n_live,
        (leader & live).float(),
        _log_units(obs.cost.float() / obs.delta.float().clamp(min=1)[:, None], 4.0),
    ]
    return torch.stack(cols, dim=2)


def live_features(obs: Observation) -> Tensor:
    """[E, B, len(LIVE_FEATURES)] features of unfinished branches, for weighting their current answers."""
    active = (obs.status == ACTIVE) & (obs.answer >= 0)
    cols = [obs.streak.float().clamp(max=8) / 8, _log_units(obs.depth.float(), 4.0)]
    return torch.stack(cols, dim=2) * active[:, :, None]


def completed_features(obs: Observation) -> Tensor:
    """[E, B, len(COMPLETED_FEATURES)] features of finished branches, for weighting their votes."""
    finished = obs.status == FINISHED
    cost = obs.cost.float() * finished
    mean = cost.sum(1, keepdim=True) / finished.sum(1, keepdim=True).clamp(min=1)
    order = (obs.finish_key[:, :, None] > obs.finish_key[:, None, :]) & finished[:, None, :]
    rank = order.sum(2).float() / obs.pool_size.float().clamp(min=1)[:, None]
    cols = [cost / mean.clamp(min=1), _log_units(cost / obs.delta.float().clamp(min=1)[:, None], 4.0), rank]
    return torch.stack(cols, dim=2) * finished[:, :, None]
