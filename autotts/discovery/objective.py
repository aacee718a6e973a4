"""The search objective: accuracy minus a β-dependent token penalty, for a whole population at once.

fitness(w) = mean over sampled β and search stores of
    accuracy(w, β) - λ(β) · tokens(w, β) / tokens(SC@64)
minus a penalty when mean tokens fall as β grows (β must be monotone), and
(`knob_weight`) a penalty when accuracy falls as β grows: the soft form of the
knob rule (`autotts.discovery.knob`), beyond `knob_tolerance`.
λ(β) = λ0 · ratio^(-β): β = 0 buys accuracy only when it is cheap, β = 1 when it
is nearly free. With `reference` set, the λ(β) term gives way to a score at
matched tokens against that teacher's frontier (`autotts.discovery.reference_frontier`):
the quantity a controller is judged by. Every member sees the same episodes in a
generation (common random numbers), and all members x β values x episodes run as one rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from autotts.controllers.baselines import make_baseline
from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, GuardSpec, policy_controller
from autotts.controllers.policy import PolicyShape
from autotts.discovery.reference_frontier import ReferenceFrontier, reference_frontier
from autotts.env.episodes import Episodes, concat_episodes, random_episodes, reference_episodes
from autotts.env.rollout import Rollout, rollout
from autotts.store.replay_store import ReplayStore, concat_stores


@dataclass(frozen=True)
class ObjectiveConfig:
    episodes_per_store: int = 32
    betas: int = 3              # β values per generation (stratified over [0, 1])
    lambda0: float = 0.3        # token penalty at β = 0 (accuracy is a fraction, tokens relative to SC@64)
    ratio: float = 15.0         # λ(1) = λ0 / ratio
    monotone_weight: float = 2.0
    knob_weight: float = 0.0    # x (accuracy lost by β steps of the store-mean curve + per store, top β vs best β)
    knob_tolerance: float = 0.005  # accuracy (a fraction) a step may lose unpenalised (the knob rule's 0.5 points)
    hold: int = 1               # generations that share one episode batch (less ranking noise)
    stratified: bool = True     # every question in every batch (only branch orders are random)
    reference: str = ""         # a teacher (cmc, parallel_probe): score β at matched tokens against its frontier
    anchor: float = 0.05        # with `reference`: charge per unit of log tokens strayed from the reference's β
    band: float = 0.2           # ... beyond this much (log tokens) either way
    reference_seeds: int = 10   # reference-protocol shuffles of the reference's sweep
    anchor_reference: str = ""  # a teacher whose tokens at each β the anchor holds to ('' = `reference`'s)

    def penalty(self, beta: Tensor) -> Tensor:
        return self.lambda0 * self.ratio ** (-beta)


@dataclass(frozen=True)
class Batch:
    """One generation's common random numbers: episodes (on the union store) and β values."""

    episodes: Episodes
    betas: Tensor


class Objective:
    """Scores weight matrices [P, D] on a set of stores."""

    def __init__(self, stores: list[ReplayStore], cfg: ObjectiveConfig = ObjectiveConfig(),
                 shape: PolicyShape = PolicyShape(), spec: ActionSpec = ActionSpec(),
                 guards: tuple[GuardSpec, ...] = DEFAULT_GUARDS, step_mode: str = "auto"):
        self.stores, self.cfg, self.shape, self.spec, self.guards = stores, cfg, shape, spec, guards
        self.step_mode = step_mode  # env step of the rollouts (`autotts.env.dense.resolve_step_mode`)
        self.union, self.owner = concat_stores(stores)
        self.offsets = torch.cumsum(torch.tensor([0] + [s.num_questions for s in stores]), 0)
        self.sc64 = torch.tensor([sc64_tokens(s) for s in stores], dtype=torch.float64)
        self.frontier = frontier_of(cfg, stores, spec.slots, self.sc64)

    def sample(self, generator: torch.Generator) -> Batch:
        parts = []
        for i, s in enumerate(self.stores):
            ep = random_episodes(s, self.cfg.episodes_per_store, generator, max_branches=self.spec.slots,
                                 stratified=self.cfg.stratified)
            parts.append(Episodes(ep.question + int(self.offsets[i]), ep.order, ep.n_avail, ep.seed))
        n = self.cfg.betas
        betas = (torch.arange(n, dtype=torch.float64) + torch.rand(1, generator=generator, dtype=torch.float64)) / n
        return Batch(concat_episodes(parts), betas.float())

    def rollout(self, weights: Tensor, batch: Batch) -> tuple[Rollout, Tensor, Tensor]:
        """All members x β x episodes in one rollout; returns it with the member and β of each row."""
        p, nb, e = weights.shape[0], len(batch.betas), len(batch.episodes)
        eps = concat_episodes([batch.episodes] * (p * nb))
        member = torch.arange(p).repeat_interleave(nb * e)
        beta = batch.betas.repeat_interleave(e).repeat(p)
        ctrl = policy_controller(weights, self.shape, self.spec, self.guards)
        return rollout(self.union, eps, ctrl, context={"beta": beta, "member": member}, step_mode=self.step_mode), \
            member, beta

    @property
    def device(self) -> torch.device:
        """Where the rollouts run (the union store's device)."""
        return self.union.device

    def to(self, device: torch.device | str) -> "Objective":
        """Roll out on `device` (the union store moves; sampling and scoring stay on the CPU)."""
        self.union = self.union.to(device)
        return self

    def __call__(self, weights: Tensor, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Fitness [P] (higher is better) and per-member metrics."""
        result, _, _ = self.rollout(weights, batch)
        p, nb, e = weights.shape[0], len(batch.betas), len(batch.episodes)
        store = self.owner[batch.episodes.question]
        acc, tok = _per_store(result.correct.cpu().double().view(p, nb, e), store, len(self.stores)), \
            _per_store(result.tokens.cpu().double().view(p, nb, e), store, len(self.stores))
        rel = tok / self.sc64                                           # [P, nb, S]
        fitness, drop = fitness_of(self.cfg, acc, rel, batch.betas, self.frontier)
        return fitness.float(), {"accuracy": acc.mean((1, 2)), "tokens_rel": rel.mean((1, 2)),
                                 "monotone_drop": drop}


def fitness_of(cfg: ObjectiveConfig, acc: Tensor, rel: Tensor, betas: Tensor,
               frontier: ReferenceFrontier | None = None) -> tuple[Tensor, Tensor]:
    """(fitness [P], monotone drop [P]) from accuracy and SC@64-relative tokens [P, nb, S] at `betas` [nb].

    The one definition shared by the search objective and validation. With a
    reference `frontier` (of the same stores) a point scores at matched tokens
    against it instead of paying λ(β) per token.
    """
    if frontier is None:
        score = acc - cfg.penalty(betas.double())[None, :, None] * rel
    else:
        score = frontier.score(acc, rel, betas, cfg.anchor, cfg.band)
    order = betas.argsort()
    drops = (rel[:, order[:-1]] - rel[:, order[1:]]).clamp(min=0)  # tokens falling as β grows
    drop = drops.sum(1).mean(1)
    fitness = score.mean((1, 2)) - cfg.monotone_weight * drop
    if cfg.knob_weight > 0 and len(betas) > 1:
        fitness = fitness - cfg.knob_weight * knob_penalty(acc[:, order], cfg.knob_tolerance)
    return fitness, drop


def knob_penalty(acc: Tensor, tolerance: float) -> Tensor:
    """[P] accuracy lost as β grows, beyond `tolerance`, from accuracy [P, nb, S] at ascending β.

    The knob rule's two parts, soft: steps of the store-mean curve, and each store's top β against its best β.
    """
    mean = acc.mean(2)
    steps = (mean[:, :-1] - mean[:, 1:] - tolerance).clamp(min=0).sum(1)
    top = (acc.max(1).values - acc[:, -1] - tolerance).clamp(min=0).mean(1)
    return steps + top


def _per_store(values: Tensor, store: Tensor, n: int) -> Tensor:
    """[P, nb, E] -> [P, nb, S] means per store."""
    out = torch.zeros(values.shape[:2] + (n,), dtype=values.dtype).index_add_(2, store, values)
    return out / torch.bincount(store, minlength=n).to(values.dtype)


def frontier_of(cfg: ObjectiveConfig, stores: list[ReplayStore], slots: int,
                sc64: Tensor) -> ReferenceFrontier | None:
    """The reference's frontier on `stores` when the objective scores at matched tokens, else None."""
    if not cfg.reference:
        return None
    return reference_frontier(stores, cfg.reference, slots, sc64, cfg.reference_seeds, cfg.anchor_reference)


def sc64_tokens(store: ReplayStore, seeds: int = 100) -> float:
    """Mean tokens of SC@64 under the reference protocol (the cost unit of the objective)."""
    ep = reference_episodes(store, seeds=seeds)
    return float(rollout(store, ep, make_baseline("sc", 64)).tokens.double().mean())
