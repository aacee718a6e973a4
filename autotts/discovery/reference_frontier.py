"""A reference controller's frontier on each store, for a fitness scored at matched tokens.

A fixed price of tokens (λ(β) in `autotts.discovery.objective`) is not what a
controller is judged by: the judge asks whether it reaches a reference's
accuracy at the reference's tokens, β by β. With `objective.reference` set, a
point (tokens t, accuracy a) at β scores a − F(t): F is the reference's
β-sweep on that store, its points joined by straight lines in tokens (the one
definition of `autotts.evaluate.frontier`, so a chord is a runnable mix of two
settings); above its dearest point F is that point's accuracy, and below its
cheapest it is the cheapest's (a controller cheaper than every reference
setting must still match the cheapest). A point whose tokens stray from the
reference's at the same β by more than a factor e^band pays `anchor` per unit
of log tokens beyond it, so β keeps spreading the curve over the reference's
range instead of gathering at the one token level where the margin is widest.
The token level may come from another teacher's sweep (`anchor_tokens`): whose
accuracy a point must beat and whose schedule β follows are separate choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from autotts.env.episodes import reference_episodes
from autotts.env.rollout import rollout
from autotts.store.replay_store import ReplayStore

GRID = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class ReferenceFrontier:
    """The reference's sweep: tokens (SC@64 units) and accuracy (fractions) [S, K] at `betas` [K].

    `anchor_tokens` [S, K], when set, is the token level β is held to (default: `tokens`).
    """

    betas: Tensor
    tokens: Tensor
    accuracy: Tensor
    anchor_tokens: Tensor | None = None

    def accuracy_at(self, rel: Tensor) -> Tensor:
        """F(t) of each store at tokens `rel` [..., S] (sorted points, linear in tokens, clamped at both ends)."""
        order = self.tokens.argsort(1)
        tok, acc = self.tokens.gather(1, order), self.accuracy.gather(1, order)     # [S, K] ascending
        x = rel.movedim(-1, 0).reshape(tok.shape[0], -1)                               # [S, N]
        hi = torch.searchsorted(tok.contiguous(), x.contiguous()).clamp(1, tok.shape[1] - 1)
        t0, t1 = tok.gather(1, hi - 1), tok.gather(1, hi)
        a0, a1 = acc.gather(1, hi - 1), acc.gather(1, hi)
        w = ((x - t0) / (t1 - t0).clamp(min=1e-12)).clamp(0, 1)
        out = a0 + w * (a1 - a0)
        return out.reshape(rel.movedim(-1, 0).shape).movedim(0, -1)

    def tokens_of(self, betas: Tensor) -> Tensor:
        """The anchor's tokens at `betas` [nb]: [nb, S], log-linear in β between grid points."""
        tokens = self.tokens if self.anchor_tokens is None else self.anchor_tokens
        log = tokens.clamp(min=1e-12).log()                                          # [S, K]
        pos = (betas.double().clamp(0, 1) * (len(self.betas) - 1))
        lo = pos.floor().long().clamp(max=len(self.betas) - 2)
        w = (pos - lo)[:, None]
        return (log[:, lo].T * (1 - w) + log[:, lo + 1].T * w).exp()

    def score(self, acc: Tensor, rel: Tensor, betas: Tensor, anchor: float, band: float) -> Tensor:
        """[P, nb, S]: accuracy over F at the same tokens, less the charge for straying from β's token level."""
        stray = (rel.clamp(min=1e-12) / self.tokens_of(betas)[None]).log().abs()
        return acc - self.accuracy_at(rel) - anchor * (stray - band).clamp(min=0)


def reference_frontier(stores: list[ReplayStore], name: str, slots: int, sc64: Tensor,
                       seeds: int = 10, anchor: str = "") -> ReferenceFrontier:
    """The teacher `name`'s sweep over β in 0, 0.1, …, 1 on each store (reference protocol, `seeds` shuffles).

    With `anchor` (another teacher), β is held to that teacher's tokens instead of `name`'s.
    """
    tok, acc = _sweep(stores, name, slots, sc64, seeds)
    anchor_tok = _sweep(stores, anchor, slots, sc64, seeds)[0] if anchor and anchor != name else None
    return ReferenceFrontier(torch.tensor(GRID, dtype=torch.float64), tok, acc, anchor_tok)


def _sweep(stores: list[ReplayStore], name: str, slots: int, sc64: Tensor, seeds: int) -> tuple[Tensor, Tensor]:
    """Tokens (SC@64 units) and accuracy [S, K] of teacher `name` on the β grid."""
    from autotts.discovery.imitation import teacher

    tok = torch.zeros(len(stores), len(GRID), dtype=torch.float64)
    acc = torch.zeros_like(tok)
    for i, store in enumerate(stores):
        episodes = reference_episodes(store, seeds=seeds)
        for k, beta in enumerate(GRID):
            result = rollout(store, episodes, teacher(name, beta, slots))
            tok[i, k] = result.tokens.double().mean() / sc64[i]
            acc[i, k] = result.correct.double().mean()
    return tok, acc
