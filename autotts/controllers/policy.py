"""`BetaPolicy`: a small β-conditioned network whose heads are Beta distributions over decisions.

Episode context (pool features + β) goes through one hidden layer. From it come
the episode heads (stop; how many branches to open) and, per branch head
(prune, advance, fast), a coefficient vector that is dotted with that branch's
features: shared per-branch weights, so the policy is permutation-equivariant
over branches and cheap in the branch dimension. An aggregation head weights
completed answers by their features (zero weights = plain majority).

Every head gives Beta(a, b): deterministic use compares the mean with 1/2
(a > b), stochastic use samples p ~ Beta then a Bernoulli(p), relaxed use takes
reparameterised samples (`rsample`). The same math runs for one weight vector
(`BetaPolicy.forward`, what TorchScript exports) and for a whole ES population
at once (`population_heads`, weights [P, D] with a member index per episode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from autotts.controllers.features import BRANCH_FEATURES, COMPLETED_FEATURES, POOL_FEATURES

EPISODE_HEADS = ("stop", "open")
BRANCH_HEADS = ("prune", "advance", "fast")


@dataclass(frozen=True)
class PolicyShape:
    """Sizes that fix the flat parameter layout (recorded in the export manifest)."""

    hidden: int = 16
    n_pool: int = len(POOL_FEATURES)
    n_branch: int = len(BRANCH_FEATURES)
    n_completed: int = len(COMPLETED_FEATURES)

    def layout(self) -> dict[str, tuple[int, ...]]:
        coef = len(BRANCH_HEADS) * 2 * (self.n_branch + 1)
        return {
            "w1": (self.n_pool + 1, self.hidden), "b1": (self.hidden,),
            "w_ep": (self.hidden, 2 * len(EPISODE_HEADS)), "b_ep": (2 * len(EPISODE_HEADS),),
            "w_br": (self.hidden, coef), "b_br": (coef,),
            "w_agg": (self.n_completed,),
        }

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.layout().values())


def unflatten(flat: Tensor, shape: PolicyShape) -> dict[str, Tensor]:
    """Split flat weights [..., D] into named tensors [..., *shape] (views, no copy)."""
    out, i = {}, 0
    lead = flat.shape[:-1]
    for name, s in shape.layout().items():
        n = math.prod(s)
        out[name] = flat[..., i:i + n].reshape(*lead, *s)
        i += n
    return out


def grouped_matmul(x: Tensor, w: Tensor, group: Tensor | None) -> Tensor:
    """x [R, I] @ w: w is [I, O] (one policy) or [P, I, O] with `group` [R] (sorted member ids)."""
    if group is None:
        return x @ w
    counts = torch.bincount(group, minlength=w.shape[0])
    start = torch.cumsum(counts, 0) - counts
    pos = torch.arange(x.shape[0], device=x.device) - start[group]
    padded = x.new_zeros((w.shape[0], int(counts.max()) if x.shape[0] else 0, x.shape[1]))
    padded[group, pos] = x
    return torch.bmm(padded, w)[group, pos]


def _pick(t: Tensor, group: Tensor | None) -> Tensor:
    return t if group is None else t[group]


def beta_params(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(a, b) > 0 of a Beta head from its two logits (last dim)."""
    ab = F.softplus(logits) + 1e-3
    return ab[..., 0], ab[..., 1]


def heads(w: dict[str, Tensor], pool_x: Tensor, branch_x: Tensor, beta: Tensor,
          group: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Logits of all Beta heads: episode [E, 2 heads, 2] and branch [E, B, 3 heads, 2]."""
    x = torch.cat([pool_x, beta[:, None].to(pool_x.dtype)], dim=1)
    h = torch.tanh(grouped_matmul(x, w["w1"], group) + _pick(w["b1"], group))
    ep = (grouped_matmul(h, w["w_ep"], group) + _pick(w["b_ep"], group)).view(-1, len(EPISODE_HEADS), 2)
    coef = grouped_matmul(h, w["w_br"], group) + _pick(w["b_br"], group)
    coef = coef.view(coef.shape[0], len(BRANCH_HEADS) * 2, -1)
    br = torch.einsum("ebf,ekf->ebk", branch_x, coef[..., :-1]) + coef[:, None, :, -1]
    return ep, br.view(br.shape[0], br.shape[1], len(BRANCH_HEADS), 2)


def aggregation_weights(w_agg: Tensor, completed_x: Tensor, group: Tensor | None = None) -> Tensor:
    """[E, B] positive vote weight of each completed branch: exp(w_agg . features)."""
    coef = _pick(w_agg, group)
    return torch.exp(torch.einsum("ebf,ef->eb", completed_x, coef if coef.dim() == 2 else coef.expand(completed_x.shape[0], -1)))


class BetaPolicy(nn.Module):
    """One policy's weights as parameters; `forward` returns the Beta (a, b) of every head."""

    def __init__(self, shape: PolicyShape = PolicyShape(), flat: Tensor | None = None):
        super().__init__()
        self.shape = shape
        init = flat.detach().clone().float() if flat is not None else initial_weights(shape)
        self.flat = nn.Parameter(init)

    def weights(self) -> dict[str, Tensor]:
        return unflatten(self.flat, self.shape)

    def forward(self, pool_x: Tensor, branch_x: Tensor, beta: Tensor, completed_x: Tensor
                ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(episode a, episode b [E,2], branch a, branch b [E,B,3], completed vote weights [E,B])."""
        w = self.weights()
        ep, br = heads(w, pool_x, branch_x, beta)
        ea, eb = beta_params(ep)
        ba, bb = beta_params(br)
        return ea, eb, ba, bb, aggregation_weights(w["w_agg"], completed_x)


def initial_weights(shape: PolicyShape, seed: int = 0, scale: float = 0.1) -> Tensor:
    """A neutral start: small random weights; biases that open a few branches and advance all of them."""
    g = torch.Generator().manual_seed(seed)
    flat = torch.randn(shape.size, generator=g) * scale
    w = unflatten(flat, shape)
    w["w_agg"].zero_()
    w["b_ep"].copy_(torch.tensor([-1.0, 1.0, 0.0, 0.0]))  # stop: a < b (keep going); open: mean 1/2
    coef = w["b_br"].view(len(BRANCH_HEADS), 2, shape.n_branch + 1)
    coef.zero_()
    coef[0, 1, -1] = 1.0  # prune: b > a (keep)
    coef[1, 0, -1] = 1.0  # advance: a > b (advance)
    coef[2, 1, -1] = 1.0  # fast: b > a (one interval)
    return flat
