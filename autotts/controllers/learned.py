"""The learned controller: `BetaPolicy` heads exposed as named rules, inside the rule engine's guards.

The same program runs one policy (evaluation, export, online) or a whole ES
population at once: with weights [P, D], each episode carries its member id
in the context (`member`) and its trade-off knob (`beta`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from autotts.controllers.features import completed_features, live_features, policy_inputs
from autotts.controllers.policy import PolicyShape, beta_params, heads, unflatten, vote_weights
from autotts.controllers.rules import GUARDS, Decision, Rule, RuleEngine, RuleProgram
from autotts.controllers.vote import weighted_vote
from autotts.env.fastops import any_true, is_sync_free
from autotts.env.state import ACTIVE, FINISHED, Observation

LIVE_KEY = 1 << 61  # live answers rank after every completion in vote tie-breaks


@dataclass(frozen=True)
class ActionSpec:
    """How head probabilities become actions (recorded in the export manifest)."""

    slots: int = 32          # most branches an episode may open
    max_open: int = 8        # most branches opened in one round
    burst: int = 3           # intervals a "fast" advance reads


@dataclass(frozen=True)
class GuardSpec:
    name: str
    params: dict

    def build(self) -> Rule:
        return GUARDS[self.name](**self.params)


DEFAULT_GUARDS = (GuardSpec("width_by_beta", {"lo": 4, "hi": 32}), GuardSpec("max_branches", {"m": 32}),
                  GuardSpec("keep_active", {"k": 1}), GuardSpec("stop_when_idle", {}),
                  GuardSpec("max_rounds", {"r": 100}))


HeadFn = Callable[[Tensor, Tensor, Tensor, "Tensor | None"], "tuple[Tensor, Tensor]"]
VoteFn = Callable[[Tensor, Tensor, Tensor, "Tensor | None"], Tensor]


def weight_functions(weights: Tensor, shape: PolicyShape) -> tuple[HeadFn, VoteFn]:
    """Head and vote functions of in-memory weights ([D], or [P, D] with a member id per episode)."""
    w = unflatten(weights, shape)
    return (lambda px, bx, beta, member: heads(w, px, bx, beta, member),
            lambda cx, lx, finished, member: vote_weights(w, cx, lx, finished, member))


class PolicyProgram(RuleProgram):
    """Decisions from Beta heads. `mode`: 'mean' (a > b), or 'sample' (p ~ Beta, then Bernoulli).

    `head_fn(pool_x, branch_x, beta, member)` gives the head logits and `vote_fn(completed_x,
    live_x, finished, member)` the vote weights: from in-memory weights (`weight_functions`) or
    from an exported program (.pt2 or TorchScript .pt) -- the program around them is the same.
    """

    def __init__(self, head_fn: HeadFn, vote_fn: VoteFn, spec: ActionSpec = ActionSpec(), population: bool = False,
                 mode: str = "mean", generator: torch.Generator | None = None):
        self.head_fn, self.vote_fn = head_fn, vote_fn
        self.population = population
        self.spec, self.mode, self.generator = spec, mode, generator
        self.slots = spec.slots
        self.rules = (Rule("head:stop", self._stop), Rule("head:open", self._open),
                      Rule("head:prune", self._prune), Rule("head:advance", self._advance))

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        context = context or {}
        beta = context.get("beta", torch.full((obs.num_episodes,), 0.5))
        mem = {"beta": beta.to(obs.status.device).float()}
        if self.population:
            mem["member"] = context["member"].to(obs.status.device)
        return mem

    def update(self, obs: Observation, mem: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
        px, bx = policy_inputs(obs)
        ep, br = self.head_fn(px, bx, mem["beta"], mem.get("member"))
        ep_on, ep_p = self._decide(ep)        # [E, 3]
        br_on, _ = self._decide(br)           # [E, B, 3]
        return mem, {"stop": ep_on[:, 0], "open": ep_on[:, 1], "width_p": ep_p[:, 2], "prune": br_on[..., 0],
                     "advance": br_on[..., 1], "fast": br_on[..., 2]}

    def _decide(self, logits: Tensor) -> tuple[Tensor, Tensor | None]:
        """(decision, probability) of Beta heads under the program's mode.

        In 'mean' mode the decision is mean > 1/2, i.e. a > b, i.e. logit_a > logit_b
        (softplus is monotone), so the Beta parameters are only formed where a probability is used.
        """
        if self.mode == "mean":
            on = logits[..., 0] > logits[..., 1]
            if logits.dim() == 3:  # episode heads: the open count needs the mean itself
                a, b = beta_params(logits)
                return on, a / (a + b)
            return on, None
        a, b = beta_params(logits)
        p = torch.distributions.Beta(a, b).sample()
        return torch.rand(p.shape, generator=self.generator, device=p.device) < p, p

    def _stop(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        stop = derived["stop"] & ~obs.done
        if any_true(stop):
            d.set_stop(stop, self._answers(obs, mem, stop, derived))

    def _open(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_open(derived["open"], open_count(derived["width_p"], self.spec.max_open))

    def _prune(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        d.set_branch((obs.status == ACTIVE) & derived["prune"], prune=True)

    def _advance(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        steps = torch.where(derived["fast"], self.spec.burst, 1)
        d.set_branch((obs.status == ACTIVE) & derived["advance"], advance=steps)

    def aggregate(self, obs: Observation, memory: Any, derived: dict, rows: Tensor) -> Tensor:
        return self._answers(obs, memory, rows, derived)

    def _answers(self, obs: Observation, mem: dict[str, Tensor], rows: Tensor, derived: dict) -> Tensor:
        """[E] vote of `rows` (-1 elsewhere); see `_vote`.

        Sparse: only the rows asked for are gathered and voted. Sync-free: every row
        votes, once per round (kept in `derived` for the guards' later calls), and
        `rows` masks the result.
        """
        if is_sync_free():
            if "votes" not in derived:
                derived["votes"] = self._vote(obs, mem.get("member"))
            return torch.where(rows, derived["votes"], -1)
        idx = rows.nonzero().squeeze(1)
        out = torch.full_like(obs.result, -1)
        if idx.numel() == 0:
            return out
        out[idx] = self._vote(_rows(obs, idx), mem["member"][idx] if self.population else None)
        return out

    def _vote(self, obs: Observation, member: Tensor | None) -> Tensor:
        """Completed answers and (down-weighted) current answers of live branches, weighted by the vote head.

        Ties go to the earliest completion, then the earliest opened live branch.
        """
        finished = obs.status == FINISHED
        live = ((obs.status == ACTIVE) | finished) & (obs.answer >= 0)
        weight = self.vote_fn(completed_features(obs), live_features(obs), finished, member)
        key = torch.where(finished, obs.finish_key, LIVE_KEY + torch.arange(obs.slots, device=obs.status.device))
        return weighted_vote(obs.answer, live, key, weight)


def open_count(width_p: Tensor, max_open: int) -> Tensor:
    """Branches to open when the open head fires: 1..max_open from the width head's mean."""
    return (1 + (width_p * max_open).floor().long()).clamp(max=max_open)


def width_target(count: Tensor, max_open: int) -> Tensor:
    """The width-head mean that `open_count` maps to `count` (middle of its interval)."""
    return ((count.float() - 1).clamp(min=0) + 0.5) / max_open


def _rows(obs: Observation, idx: Tensor) -> Observation:
    from autotts.env.state import index_tree
    return index_tree(obs, idx)


def policy_controller(weights: Tensor, shape: PolicyShape = PolicyShape(), spec: ActionSpec = ActionSpec(),
                      guards: Sequence[GuardSpec] = DEFAULT_GUARDS, mode: str = "mean",
                      generator: torch.Generator | None = None) -> RuleEngine:
    """A rule engine running a policy (weights [D]) or a population (weights [P, D]) under `guards`."""
    head_fn, vote_fn = weight_functions(weights, shape)
    program = PolicyProgram(head_fn, vote_fn, spec, weights.dim() == 2, mode, generator)
    return RuleEngine(program, [g.build() for g in guards])

