"""`BetaPolicy`: a small β-conditioned network whose heads are Beta distributions over decisions.

Episode context (pool features + β) goes through one hidden layer h. Episode
heads (stop; how many branches to open) read h. Branch heads (prune, advance,
fast) read each branch's own features through weights shared by all branches
(so the policy is permutation-equivariant over branches), plus h. The vote
head weights each answer by its branch's features: completed branches by
length and completion order, unfinished ones by the stability of their current
answer (a large negative offset starts them near zero: plain majority of completions).

Every decision head gives Beta(a, b): deterministic use compares the mean with
1/2 (a > b), stochastic use samples p ~ Beta then a Bernoulli(p), relaxed use
takes reparameterised samples (`rsample`). The same math runs for one weight
vector (`BetaPolicy.forward`, what controller.pt2 exports) and for a whole ES
population at once (weights [P, D] with a member index per episode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from autotts.controllers.features import BRANCH_FEATURES, COMPLETED_FEATURES, LIVE_FEATURES, POOL_FEATURES
from autotts.errors import AutottsError

EPISODE_HEADS = ("stop", "open", "width")
BRANCH_HEADS = ("prune", "advance", "fast")
HEAD_LEVEL = ("b_ep", "g_ep", "b_br", "g_br", "w_done", "w_live", "b_live")


@dataclass(frozen=True)
class PolicyShape:
    """Sizes that fix the flat parameter layout (recorded in the export manifest)."""

    hidden: int = 8
    n_pool: int = len(POOL_FEATURES)
    n_branch: int = len(BRANCH_FEATURES)
    n_completed: int = len(COMPLETED_FEATURES)
    n_live: int = len(LIVE_FEATURES)

    def layout(self) -> dict[str, tuple[int, ...]]:
        nb = 2 * len(BRANCH_HEADS)
        ne = 2 * len(EPISODE_HEADS)
        return {
            "w1": (self.n_pool + 1, self.hidden), "b1": (self.hidden,),
            "w_ep": (self.hidden, ne), "b_ep": (ne,), "g_ep": (ne,),
            "w_bx": (self.n_branch, nb), "w_bh": (self.hidden, nb), "b_br": (nb,), "g_br": (nb,),
            "w_done": (self.n_completed,), "w_live": (self.n_live,), "b_live": (1,),
        }

    def head_level(self) -> Tensor:
        """Mask of the few weights that set each head's operating point: biases, β terms, vote weights.

        Searches explore these widely and the per-feature weights narrowly.
        """
        parts = [torch.full((math.prod(s),), name in HEAD_LEVEL) for name, s in self.layout().items()]
        return torch.cat(parts)

    def frozen(self, names: tuple[str, ...] | list[str]) -> Tensor:
        """Mask of the weights named ``param`` or ``param:head`` (e.g. ``g_br:prune``), kept at the start by a search.

        A head's two Beta logits are its slice of a head-level parameter (``b_ep``/``g_ep``: stop, open, width;
        ``b_br``/``g_br``: prune, advance, fast); this lets ES move a head's bias but not its β slope.
        """
        layout, mask, offsets, at = self.layout(), torch.zeros(self.size, dtype=torch.bool), {}, 0
        for key, s in layout.items():
            offsets[key], at = at, at + math.prod(s)
        for name in names:
            param, _, head = str(name).partition(":")
            if param not in layout:
                raise AutottsError(f"search.freeze: {name!r}: unknown weight {param!r} "
                                   f"(expected one of {', '.join(layout)}, optionally :head)")
            start, n = offsets[param], math.prod(layout[param])
            if head:
                heads_of = {"b_ep": EPISODE_HEADS, "g_ep": EPISODE_HEADS, "b_br": BRANCH_HEADS, "g_br": BRANCH_HEADS}
                if head not in heads_of.get(param, ()):
                    raise AutottsError(f"search.freeze: {name!r}: expected a head of {param} "
                                       f"({', '.join(heads_of.get(param, ())) or 'none: freeze it whole'})")
                start, n = start + 2 * heads_of[param].index(head), 2
            mask[start:start + n] = True
        return mask

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


def scale_beta(flat: Tensor, shape: PolicyShape, top: float) -> Tensor:
    """Weights that act at β·`top` when given β: the knob's range [0, 1] mapped onto [0, top].

    β enters `heads` only linearly (the last input row of ``w1``, and the β terms ``g_ep``,
    ``g_br``), so scaling those rows is exact and the exported file needs no extra input.
    Guards outside the network (``width_by_beta``) still read the β the user gave.
    """
    out = flat.clone()
    w = unflatten(out, shape)
    w["w1"][..., -1, :].mul_(top)
    w["g_ep"].mul_(top)
    w["g_br"].mul_(top)
    return out


def grouped_matmul(x: Tensor, w: Tensor, group: Tensor | None) -> Tensor:
    """x [R, I] @ w: w is [I, O] (one policy) or [P, I, O] with `group` [R] (member of each row).

    Each row multiplies its own member's gathered weights: no per-member counts, so
    no host sync (the padded form needed max(count) on the host every call).
    """
    if group is None:
        return x @ w
    return torch.bmm(x.unsqueeze(1), member_weights(w, group)).squeeze(1)


def member_weights(w: Tensor, group: Tensor) -> Tensor:
    """w [P, ...] gathered per row of `group`, as a plain tensor.

    The ES hands EvoTorch's read-only tensor subclass, which every op would
    propagate into the decisions and from there into the env state.
    """
    return w.index_select(0, group).as_subclass(Tensor)


def _pick(t: Tensor, group: Tensor | None) -> Tensor:
    return t if group is None else t[group]


def beta_params(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(a, b) > 0 of a Beta head from its two logits (last dim)."""
    ab = F.softplus(logits) + 1e-3
    return ab[..., 0], ab[..., 1]


def heads(w: dict[str, Tensor], pool_x: Tensor, branch_x: Tensor, beta: Tensor,
          group: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Logits of all Beta heads: episode [E, 3 heads, 2] and branch [E, B, 3 heads, 2]."""
    e, b, fb = branch_x.shape
    beta = beta[:, None].to(pool_x.dtype)
    h = torch.tanh(grouped_matmul(torch.cat([pool_x, beta], 1), w["w1"], group) + _pick(w["b1"], group))
    ep = grouped_matmul(h, w["w_ep"], group) + _pick(w["b_ep"], group) + beta * _pick(w["g_ep"], group)
    ep = ep.view(e, len(EPISODE_HEADS), 2)
    if group is None:
        br = (branch_x.reshape(e * b, fb) @ w["w_bx"]).view(e, b, -1)
    else:  # the episode's member weights, shared by its B branches: [E, B, F] @ [E, F, O]
        br = torch.bmm(branch_x, member_weights(w["w_bx"], group))
    context = grouped_matmul(h, w["w_bh"], group) + _pick(w["b_br"], group) + beta * _pick(w["g_br"], group)
    br = br + context[:, None, :]
    return ep, br.view(e, b, len(BRANCH_HEADS), 2)


def vote_weights(w: dict[str, Tensor], completed_x: Tensor, live_x: Tensor, finished: Tensor,
                 group: Tensor | None = None) -> Tensor:
    """[E, B] vote weight of each branch's answer: completed ones by their features, live ones scaled down."""
    done = torch.einsum("ebf,ef->eb", completed_x, _rows(w["w_done"], group, completed_x.shape[0]))
    live = torch.einsum("ebf,ef->eb", live_x, _rows(w["w_live"], group, live_x.shape[0]))
    live = live + _rows(w["b_live"], group, live_x.shape[0])
    return torch.exp(torch.where(finished, done, live))


def _rows(t: Tensor, group: Tensor | None, e: int) -> Tensor:
    return t[group] if group is not None else t.expand(e, *t.shape)


class BetaPolicy(nn.Module):
    """One policy's weights as a parameter; `forward` gives head logits and vote weights (what export traces)."""

    def __init__(self, shape: PolicyShape = PolicyShape(), flat: Tensor | None = None):
        super().__init__()
        self.shape = shape
        init = flat.detach().clone().float() if flat is not None else initial_weights(shape)
        self.flat = nn.Parameter(init)

    def weights(self) -> dict[str, Tensor]:
        return unflatten(self.flat, self.shape)

    def forward(self, pool_x: Tensor, branch_x: Tensor, beta: Tensor, completed_x: Tensor, live_x: Tensor,
                finished: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(episode logits [E,3,2], branch logits [E,B,3,2], vote weights [E,B]); Beta(a,b) = softplus(logits)."""
        w = self.weights()
        ep, br = heads(w, pool_x, branch_x, beta)
        return ep, br, vote_weights(w, completed_x, live_x, finished)

    def distributions(self, pool_x: Tensor, branch_x: Tensor, beta: Tensor) -> tuple[torch.distributions.Beta, ...]:
        """Beta distributions of the episode and branch heads (stochastic and `rsample` use)."""
        ep, br = heads(self.weights(), pool_x, branch_x, beta)
        return torch.distributions.Beta(*beta_params(ep)), torch.distributions.Beta(*beta_params(br))


def initial_weights(shape: PolicyShape, seed: int = 0, scale: float = 0.1) -> Tensor:
    """A neutral start: small random weights; biases that open a few branches and advance all of them."""
    g = torch.Generator().manual_seed(seed)
    flat = torch.randn(shape.size, generator=g) * scale
    w = unflatten(flat, shape)
    w["w_done"].zero_()
    w["w_live"].zero_()
    w["g_ep"].zero_()
    w["g_br"].zero_()
    w["b_live"].fill_(-6.0)
    w["b_ep"].copy_(torch.tensor([-1.0, 1.0, 0.0, 0.0, -1.0, 1.0]))  # keep going; open: even odds; narrow
    w["b_br"].copy_(torch.tensor([-1.0, 1.0, 1.0, -1.0, -1.0, 1.0]))  # keep, advance, one interval
    return flat
