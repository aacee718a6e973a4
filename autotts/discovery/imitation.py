"""Warm start: fit the policy's heads to a teacher's decisions across β (CMC, or Parallel-Probe).

ES from a neutral start spends most of a CPU budget finding "open a few
branches, probe them, stop when the completions agree". Imitating CMC(β) on
the *search* stores gives a start with that behaviour and the right β trend;
ES then improves on it (the acceptance bar is beating CMC, so starting near it
is the honest comparison). The teacher-free preset (`math_scratch`) imitates
Parallel-Probe instead, its cohort size set by β, and never builds CMC.
Zero LLM calls: teachers run on replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from autotts.controllers.baselines import make_baseline
from autotts.controllers.features import policy_inputs
from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, GuardSpec, width_target
from autotts.controllers.policy import BetaPolicy, PolicyShape, beta_params, heads
from autotts.env.episodes import random_episodes
from autotts.env.rollout import rollout
from autotts.env.state import ACTIVE, Action, EnvState
from autotts.store.replay_store import ReplayStore


@dataclass(frozen=True)
class ImitationConfig:
    betas: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
    episodes_per_store: int = 120
    keep: float = 0.25            # share of (episode, round) samples kept
    steps: int = 400
    batch: int = 2048
    lr: float = 0.02
    stop_weight: float = 8.0      # stops are rare: one per episode
    prune_weight: float = 8.0     # abandoning a dissenter is rarer still (~0.5% of branch decisions)
    teachers: tuple[str, ...] = ("cmc",)  # controllers imitated at every β (their samples are pooled)
    dagger: int = 0               # rounds of labelling the learner's own states by the teachers, then refitting


# Teachers that decide interval by interval (open, probe, prune, stop), so the heads can express them;
# SC/ASC/ESC read whole branches in one action, which no head imitates.
TEACHERS = ("cmc", "parallel_probe")


def teacher(name: str, beta: float, slots: int):
    """The teacher controller at β: CMC(β), or Parallel-Probe with round(2·(slots/2)^β) chains (2..slots)."""
    from autotts.errors import AutottsError
    if name not in TEACHERS:
        raise AutottsError(f"imitation.teachers: {name!r} cannot be imitated (expected {' or '.join(TEACHERS)})")
    if name == "cmc":
        return make_baseline("cmc", beta)
    return make_baseline(name, max(2, round(2 * (slots / 2) ** beta)))


class _Collector:
    """Recorder that keeps features and the teacher's action for a random share of (episode, round) rows.

    CMC spends two env steps on a widening round (open, then probe); the policy
    does both in one. An open-only step is therefore held back and completed
    with the prune/advance decisions of the episode's next step.
    """

    def __init__(self, beta: float, spec: ActionSpec, keep: float, generator: torch.Generator,
                 hold_opens: bool = True):
        self.beta, self.spec, self.keep, self.g, self.hold_opens = beta, spec, keep, generator, hold_opens
        self.parts: list[dict[str, Tensor]] = []
        self.pending: dict[int, dict[str, Tensor]] = {}

    def on_state(self, state: EnvState, rows: Tensor) -> None:
        pass

    def on_action(self, state: EnvState, action: Action, reasons: tuple[str, ...], rows: Tensor) -> None:
        obs = state.obs
        b = min(obs.slots, self.spec.slots)
        advance, prune, opened = explicit(action, obs)
        ids = rows.tolist()
        for i, eid in enumerate(ids):  # complete held-back widening rounds with this step's branch decisions
            held = self.pending.pop(eid, None)
            if held is not None:
                self.parts.append(dict(held, **_branch_labels(advance[i:i + 1, :b], prune[i:i + 1, :b])))
        live = ~obs.done & ~action.stop
        open_only = live & (opened > 0) & ~(advance > 0).any(1) & self.hold_opens
        pick = (~obs.done & (torch.rand(obs.num_episodes, generator=self.g) < self.keep)).nonzero().squeeze(1)
        if pick.numel() == 0:
            return
        sample = _features(obs, pick, b, self.beta)
        sample.update(stop=action.stop[pick].float(), open=opened[pick].clamp(max=self.spec.max_open).float())
        hold = open_only[pick]
        for j in hold.nonzero().squeeze(1).tolist():
            self.pending[ids[int(pick[j])]] = {k: v[j:j + 1] for k, v in sample.items()}
        now = (~hold).nonzero().squeeze(1)
        if now.numel():
            rows_now = pick[now]
            self.parts.append(dict({k: v[now] for k, v in sample.items()},
                                   **_branch_labels(advance[rows_now, :b], prune[rows_now, :b])))


def explicit(action: Action, obs) -> tuple[Tensor, Tensor, Tensor]:
    """(advance [E,B], prune [E,B], open [E]) of `action`, its None fields (nothing asked) as zeros."""
    advance = action.advance if action.advance is not None else torch.zeros_like(obs.depth)
    prune = action.prune if action.prune is not None else torch.zeros_like(obs.status, dtype=torch.bool)
    opened = action.open if action.open is not None else torch.zeros_like(obs.n_open)
    return advance, prune, opened


def _features(obs, pick: Tensor, b: int, beta: float) -> dict[str, Tensor]:
    from autotts.env.state import index_tree
    sub = index_tree(obs, pick)
    pool, branch = policy_inputs(sub)
    return {"pool": pool, "branch": branch[:, :b],
            "active": (sub.status == ACTIVE)[:, :b], "beta": torch.full((pick.numel(),), beta)}


def _branch_labels(advance: Tensor, prune: Tensor) -> dict[str, Tensor]:
    return {"prune": prune.float(), "advance": (advance > 0).float(), "fast": (advance > 1).float()}


def collect(stores: list[ReplayStore], cfg: ImitationConfig, spec: ActionSpec, seed: int = 0) -> dict[str, Tensor]:
    """Features and the teachers' actions at each β on random episodes of the search stores."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for name in cfg.teachers:
        for store in stores:
            for beta in cfg.betas:
                rec = _Collector(beta, spec, cfg.keep, g)
                eps = random_episodes(store, cfg.episodes_per_store, g)
                rollout(store, eps, teacher(name, beta, spec.slots), recorder=rec)
                parts.extend(rec.parts)
    return pool_samples(parts)


def pool_samples(parts: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """One tensor per field from many sample batches, per-branch fields padded to the widest."""
    width = max(p["branch"].shape[1] for p in parts)
    out = {}
    for k in parts[0]:
        tensors = [p[k] for p in parts]
        if k in _PER_BRANCH:
            tensors = [F.pad(t, (0, 0, 0, width - t.shape[1]) if t.dim() == 3 else (0, width - t.shape[1]))
                       for t in tensors]
        out[k] = torch.cat(tensors)
    return out


_PER_BRANCH = ("branch", "active", "prune", "advance", "fast")


def fit(data: dict[str, Tensor], shape: PolicyShape, spec: ActionSpec, cfg: ImitationConfig,
        init: Tensor, seed: int = 0) -> tuple[Tensor, list[float]]:
    """Adam on binary cross-entropy of each head's Beta mean against the teacher's decision."""
    torch.manual_seed(seed)
    policy = BetaPolicy(shape, init)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    n = data["stop"].shape[0]
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(cfg.steps):
        idx = torch.randint(n, (min(cfg.batch, n),), generator=g)
        loss = _loss(policy, {k: v[idx] for k, v in data.items()}, spec, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return policy.flat.detach().clone(), losses


def agreement(weights: Tensor, data: dict[str, Tensor], shape: PolicyShape, spec: ActionSpec) -> dict[str, float]:
    """Share of the teacher's decisions the policy reproduces, per head (positives and negatives apart)."""
    from autotts.controllers.learned import open_count
    from autotts.controllers.policy import unflatten
    with torch.no_grad():
        ep, br = heads(unflatten(weights, shape), data["pool"], data["branch"], data["beta"])
    on_ep, on_br = ep[..., 0] > ep[..., 1], br[..., 0] > br[..., 1]
    a, b = beta_params(ep[:, 2])
    out = {}
    for name, pred, target, mask in (
            ("stop", on_ep[:, 0], data["stop"] > 0, None), ("open", on_ep[:, 1], data["open"] > 0, None),
            ("prune", on_br[..., 0], data["prune"] > 0, data["active"]),
            ("advance", on_br[..., 1], data["advance"] > 0, data["active"]),
            ("fast", on_br[..., 2], data["fast"] > 0, data["active"] & (data["advance"] > 0))):
        m = torch.ones_like(target) if mask is None else mask
        for label, sel in (("pos", target & m), ("neg", ~target & m)):
            out[f"{name}_{label}"] = float((pred == target)[sel].float().mean()) if sel.any() else float("nan")
    opened = data["open"] > 0
    out["width"] = float((open_count(a / (a + b), spec.max_open)[opened] == data["open"][opened].long()).float().mean())
    return out


def _loss(policy: BetaPolicy, d: dict[str, Tensor], spec: ActionSpec, cfg: ImitationConfig) -> Tensor:
    ep, br = heads(policy.weights(), d["pool"], d["branch"], d["beta"])
    ea, eb = beta_params(ep)
    p_ep = ea / (ea + eb)
    ba, bb = beta_params(br)
    p_br = ba / (ba + bb)
    stop_w = 1.0 + (cfg.stop_weight - 1.0) * d["stop"]
    opens = (d["open"] > 0).float()
    loss = F.binary_cross_entropy(p_ep[:, 0], d["stop"], weight=stop_w)
    loss = loss + F.binary_cross_entropy(p_ep[:, 1], opens, weight=1.0 + 2.0 * opens)
    width = F.binary_cross_entropy(p_ep[:, 2], width_target(d["open"], spec.max_open), reduction="none")
    loss = loss + (width * opens).sum() / opens.sum().clamp(min=1)
    active = d["active"].float()
    advancing = active * d["advance"]
    prune_w = active * (1.0 + (cfg.prune_weight - 1.0) * d["prune"])
    for j, (name, mask) in enumerate((("prune", prune_w), ("advance", active), ("fast", advancing))):
        per = F.binary_cross_entropy(p_br[..., j].clamp(1e-6, 1 - 1e-6), d[name], reduction="none")
        loss = loss + (per * mask).sum() / mask.sum().clamp(min=1)
    return loss


def imitate(stores: list[ReplayStore], shape: PolicyShape, spec: ActionSpec, init: Tensor,
            cfg: ImitationConfig = ImitationConfig(), seed: int = 0,
            guards: tuple[GuardSpec, ...] = DEFAULT_GUARDS) -> tuple[Tensor, list[float]]:
    """Weights whose deterministic decisions approximate the teachers (default CMC(β)) on the search stores.

    With `cfg.dagger` > 0, each round adds the teachers' labels of the states the
    current weights reach (under `guards`, as ES will run them) and refits.
    """
    data = collect(stores, cfg, spec, seed)
    weights, losses = fit(data, shape, spec, cfg, init, seed)
    if cfg.dagger:
        from autotts.discovery.dagger import relabel
        g = torch.Generator().manual_seed(seed + 1)
        for _ in range(cfg.dagger):
            data = pool_samples([data, relabel(stores, weights, shape, spec, guards, cfg, g)])
            weights, more = fit(data, shape, spec, cfg, weights, seed)
            losses += more
    return weights, losses
