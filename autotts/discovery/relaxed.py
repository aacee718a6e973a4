"""The relaxed environment: expected accuracy and cost of a policy whose only random decision is when to stop.

The policy's stop head gives, each round t, the probability p_t that it
answers now; every other head (open, width, prune, advance, fast, vote) acts
by its mean, as in the hard deterministic mode. Stopping does not change what
happened before it, so one hard run with the stop head held back (a
*never-stop* run: `NeverStopProgram`, driven by `autotts.env.rollout.rollout`)
passes through every state a stochastic-stop run can stop in. Along it,
with S_t = prod_{k<=t} (1 - p_k) the chance of still running after round t,

    E[outcome] = sum_t S_{t-1} p_t outcome_t,

where outcome_t is what stopping at round t gives in the hard env (the
policy's vote, its correctness, the tokens spent so far). Rounds where a
guard stops the episode count as p_t = 1, rounds before any branch is open as
p_t = 0 (the rule engine's `open_before_stop` guard vetoes those stops; it
opens a branch there exactly when the never-stop run's `stop_when_idle` does). That is the exact expectation (not
a bound or an estimate), and it is differentiable in the weights through p_t:
along a run the other heads' decisions are piecewise constant in the weights,
so the gradient of the expectation is this one almost everywhere.

p_t is the stop head's Beta mean a/(a+b) -- the marginal of the hard env's
sample mode (p ~ Beta(a, b), then Bernoulli(p)) -- or, with `sharpness` k != 1,
sigmoid(k (log a - log b)), which keeps the deterministic decision (a > b)
and moves the stochastic policy towards it.
A never-stop run is cut once an episode's survival falls below `tail`; that
round then counts as a certain stop (the objective is exact for the policy
that also stops there; `tail=0` runs to the guards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, GuardSpec, PolicyProgram, weight_functions
from autotts.controllers.policy import PolicyShape, beta_params, heads, unflatten
from autotts.controllers.rules import Decision, Rule, RuleEngine, stop_allowed
from autotts.discovery.objective import Batch, Objective, ObjectiveConfig, _per_store, fitness_of
from autotts.env.episodes import Episodes, concat_episodes
from autotts.env.fastops import any_true
from autotts.env.rollout import rollout
from autotts.env.state import Action, EnvState, Observation
from autotts.errors import AutottsError
from autotts.store.replay_store import ReplayStore


@dataclass(frozen=True)
class RelaxedConfig:
    """The relaxed objective and its Adam trainer (`search.relaxed` in the config)."""

    sharpness: float = 3.0   # p_t = sigmoid(k·(log a − log b)); 1 = the stop head's Beta mean
    tail: float = 1e-3       # cut a never-stop run once survival < tail (0 = run to the guards: exact)
    lr: float = 0.01         # Adam step size
    steps: int = 1           # Adam steps per generation (each on the generation's batch)
    params: str = "stop"     # only the "stop" head's own weights, or "all" (also the shared hidden layer)
    clip: float = 1.0        # gradient norm clip (0 = none)

    def check(self) -> "RelaxedConfig":
        checks = [(self.sharpness > 0, f"search.relaxed.sharpness={self.sharpness}: expected > 0"),
                  (0 <= self.tail < 1, f"search.relaxed.tail={self.tail}: expected 0 <= tail < 1"),
                  (self.lr > 0, f"search.relaxed.lr={self.lr}: expected > 0"),
                  (self.steps >= 1, f"search.relaxed.steps={self.steps}: expected >= 1"),
                  (self.params in ("all", "stop"), f"search.relaxed.params={self.params!r}: expected all or stop"),
                  (self.clip >= 0, f"search.relaxed.clip={self.clip}: expected >= 0 (0 = none)")]
        for ok, message in checks:
            if not ok:
                raise AutottsError(message)
        return self


def sharpened(a: Tensor, b: Tensor, sharpness: float = 1.0) -> Tensor:
    """Stop chance of a Beta(a, b) head: sigmoid(k (log a - log b)); the Beta mean a / (a + b) at k = 1."""
    return torch.sigmoid(sharpness * (a.log() - b.log()))


def stop_probability(episode_logits: Tensor, sharpness: float = 1.0) -> Tensor:
    """[...] chance the stop head fires, from episode logits [..., 3, 2]."""
    return sharpened(*beta_params(episode_logits[..., 0, :]), sharpness)


class _HeadTap:
    """A head function that keeps its last inputs and episode logits (the stop head's view of a round)."""

    def __init__(self, fn: Any):
        self.fn = fn
        self.pool_x: Tensor | None = None
        self.episode: Tensor | None = None

    def __call__(self, pool_x: Tensor, branch_x: Tensor, beta: Tensor, member: Tensor | None) -> tuple[Tensor, Tensor]:
        ep, br = self.fn(pool_x, branch_x, beta, member)
        self.pool_x, self.episode = pool_x, ep
        return ep, br


class StochasticStopProgram(PolicyProgram):
    """The hard policy with a random stop (the relaxed objective's policy): p ~ Beta(a, b), then Bernoulli(p).

    With `sharpness` != 1 the stop fires with the sharpened probability instead.
    Every other head acts by its mean. For Monte-Carlo checks and evaluations.
    """

    def __init__(self, weights: Tensor, shape: PolicyShape, spec: ActionSpec, sharpness: float = 1.0,
                 generator: torch.Generator | None = None):
        head_fn, vote_fn = weight_functions(weights, shape)
        self.tap = _HeadTap(head_fn)
        super().__init__(self.tap, vote_fn, spec, population=False, mode="mean", generator=generator)
        self.sharpness = sharpness

    def update(self, obs: Observation, mem: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
        mem, derived = super().update(obs, mem)
        assert self.tap.episode is not None
        if self.sharpness == 1.0:
            p = torch.distributions.Beta(*beta_params(self.tap.episode[:, 0])).sample()
        else:
            p = stop_probability(self.tap.episode, self.sharpness)
        derived["stop"] = torch.rand(p.shape, generator=self.generator, device=p.device) < p
        return mem, derived


def stochastic_stop_controller(weights: Tensor, shape: PolicyShape = PolicyShape(), spec: ActionSpec = ActionSpec(),
                               guards: Sequence[GuardSpec] = DEFAULT_GUARDS, sharpness: float = 1.0,
                               generator: torch.Generator | None = None) -> RuleEngine:
    """The stochastic-stop policy (weights [D]) under `guards`, for the hard env."""
    program = StochasticStopProgram(weights, shape, spec, sharpness, generator)
    return RuleEngine(program, [g.build() for g in guards])


class NeverStopProgram(PolicyProgram):
    """The policy with its stop head held back (other heads by their mean): one run holds every stopping time.

    Its only own stop is the `relaxed:tail` rule, which ends an episode once the
    chance that the stochastic policy is still running falls below `tail`.
    """

    def __init__(self, weights: Tensor, shape: PolicyShape, spec: ActionSpec, cfg: RelaxedConfig):
        head_fn, vote_fn = weight_functions(weights, shape)
        self.tap = _HeadTap(head_fn)
        super().__init__(self.tap, vote_fn, spec, population=False, mode="mean")
        self.cfg = cfg
        self.rules = (Rule("relaxed:tail", self._tail),) + tuple(self.rules[1:])

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        mem = super().init(obs, context)
        mem["survival"] = torch.ones(obs.num_episodes, dtype=torch.float64, device=obs.status.device)
        return mem

    def update(self, obs: Observation, mem: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict]:
        mem, derived = super().update(obs, mem)
        assert self.tap.episode is not None
        p = stop_probability(self.tap.episode.double(), self.cfg.sharpness)
        derived["p_stop"] = p * stop_allowed(obs)
        return mem, derived

    def _tail(self, obs: Observation, mem: Any, derived: dict, d: Decision) -> None:
        cut = (mem["survival"] * (1 - derived["p_stop"]) < self.cfg.tail) & ~obs.done
        if any_true(cut):
            d.set_stop(cut, self._answers(obs, mem, cut, derived))

    def commit(self, obs: Observation, mem: Any, derived: dict, decision: Decision) -> Any:
        return dict(mem, survival=mem["survival"] * (1 - derived["p_stop"]))


@dataclass(frozen=True)
class Trajectories:
    """Never-stop runs as per-round tables [E, T] (`valid` marks real rounds; each row ends with a forced stop).

    pool_x [E, T, F] is what the stop head read; correct/tokens what stopping at
    that round gives; forced marks rounds where a guard (or the tail cut) stopped;
    held marks rounds where no stop is allowed yet (no branch open).
    """

    pool_x: Tensor
    beta: Tensor
    correct: Tensor
    tokens: Tensor
    forced: Tensor
    valid: Tensor
    held: Tensor

    @property
    def rounds(self) -> Tensor:
        return self.valid.sum(1)

    @property
    def may_stop(self) -> Tensor:
        """[E, T] rounds where the stochastic policy could stop."""
        return self.valid & ~self.held


class _RoundRecorder:
    """Rollout recorder: for every live episode and round, the stop head's features and the outcome of stopping."""

    def __init__(self, program: NeverStopProgram, gold: Tensor):
        self.program, self.gold = program, gold
        self.parts: list[tuple[Tensor, ...]] = []

    def on_state(self, state: EnvState, rows: Tensor) -> None:
        pass

    def on_action(self, state: EnvState, action: Action, reasons: tuple[str, ...], rows: Tensor) -> None:
        obs = state.obs
        live = ~obs.done
        idx = live.nonzero().squeeze(1)
        answer = self.program.aggregate(obs, {}, {}, live).index_select(0, idx)
        episode = rows.index_select(0, idx)
        assert self.program.tap.pool_x is not None
        correct = (answer == self.gold.index_select(0, episode)) & (answer >= 0)
        self.parts.append((episode, obs.round.index_select(0, idx), self.program.tap.pool_x.index_select(0, idx),
                           correct, obs.total_cost.index_select(0, idx), action.stop.index_select(0, idx),
                           ~stop_allowed(obs).index_select(0, idx)))

    def tables(self, count: int, beta: Tensor) -> Trajectories:
        episode, rnd, pool_x, correct, tokens, forced, held = (torch.cat(c) for c in zip(*self.parts))
        t = int(rnd.max()) + 1
        cell = episode * t + rnd
        dev = pool_x.device

        def table(values: Tensor, fill: float | bool = 0) -> Tensor:
            out = torch.full((count * t,) + values.shape[1:], fill, dtype=values.dtype, device=dev)
            return out.index_copy_(0, cell, values).view(count, t, *values.shape[1:])

        valid = table(torch.ones_like(forced), False)
        return Trajectories(table(pool_x), beta, table(correct.double()), table(tokens.double()), table(forced), valid,
                            table(held))


def never_stop_runs(store: ReplayStore, episodes: Episodes, beta: Tensor, weights: Tensor, shape: PolicyShape,
                    spec: ActionSpec = ActionSpec(), guards: Sequence[GuardSpec] = DEFAULT_GUARDS,
                    cfg: RelaxedConfig = RelaxedConfig()) -> Trajectories:
    """One hard rollout of `episodes` (one β each) with the stop head held back; no gradients."""
    with torch.no_grad():
        program = NeverStopProgram(weights.detach().float().to(store.device), shape, spec, cfg)
        engine = RuleEngine(program, [g.build() for g in guards])
        recorder = _RoundRecorder(program, store.gold[episodes.question.to(store.device)])
        beta = beta.to(store.device).float()
        rollout(store, episodes, engine, context={"beta": beta}, recorder=recorder)
    return recorder.tables(len(episodes), beta)


def stop_head(weights: Tensor, runs: Trajectories, shape: PolicyShape) -> tuple[Tensor, Tensor]:
    """The stop head's Beta parameters (a, b) [E, T] at every round of `runs` (1 on padding); differentiable."""
    e, t, f = runs.pool_x.shape
    cell = runs.valid.view(-1).nonzero().squeeze(1)
    pool_x = runs.pool_x.view(e * t, f).index_select(0, cell).to(weights.dtype)
    beta = runs.beta.to(weights.dtype)[:, None].expand(e, t).reshape(-1).index_select(0, cell)
    no_branches = pool_x.new_zeros((pool_x.shape[0], 1, shape.n_branch))
    episode, _ = heads(unflatten(weights, shape), pool_x, no_branches, beta)
    a, b = beta_params(episode[:, 0, :])
    ones = torch.ones(e * t, dtype=a.dtype, device=a.device)
    return ones.index_put((cell,), a).view(e, t), ones.index_put((cell,), b).view(e, t)


def stop_probabilities(weights: Tensor, runs: Trajectories, shape: PolicyShape, sharpness: float = 1.0) -> Tensor:
    """[E, T] float64 chance of stopping at round t if still running (1 where forced, 0 on padding or held)."""
    p = sharpened(*stop_head(weights, runs, shape), sharpness).double()
    return torch.where(runs.forced, torch.ones_like(p), p) * runs.may_stop


def first_stop(p: Tensor) -> Tensor:
    """[E, T] chance that the first stop is at round t, from per-round stop chances p [E, T]."""
    survival = torch.cumprod(1 - p, dim=1)
    before = torch.cat([torch.ones_like(p[:, :1]), survival[:, :-1]], dim=1)
    return before * p


def stop_distribution(weights: Tensor, runs: Trajectories, shape: PolicyShape, sharpness: float = 1.0) -> Tensor:
    """[E, T] float64 chance of stopping at each round (rows sum to 1); differentiable in `weights` [D]."""
    return first_stop(stop_probabilities(weights, runs, shape, sharpness))


def expected_outcome(weights: Tensor, runs: Trajectories, shape: PolicyShape,
                     sharpness: float = 1.0) -> tuple[Tensor, Tensor]:
    """Expected correctness [E] and tokens [E] of the stochastic-stop policy along `runs`."""
    pi = stop_distribution(weights, runs, shape, sharpness)
    return (pi * runs.correct).sum(1), (pi * runs.tokens).sum(1)


class RelaxedObjective(Objective):
    """The search objective with the stop integrated out: same batches, β values and token units as `Objective`.

    Calling it on weights [P, D] gives the relaxed fitness [P], differentiable
    when the weights require grad; `hard` is the ES objective on the same batch.
    The monotone penalty is applied to expected tokens.
    """

    def __init__(self, stores: list[ReplayStore], cfg: ObjectiveConfig = ObjectiveConfig(),
                 shape: PolicyShape = PolicyShape(), spec: ActionSpec = ActionSpec(),
                 guards: tuple[GuardSpec, ...] = DEFAULT_GUARDS, relaxed: RelaxedConfig = RelaxedConfig()):
        super().__init__(stores, cfg, shape, spec, guards)
        self.relaxed = relaxed
        self.last_runs: Trajectories | None = None

    def hard(self, weights: Tensor, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        return super().__call__(weights, batch)

    def runs(self, weights: Tensor, batch: Batch) -> Trajectories:
        """Never-stop runs of one weight vector [D] on every β x episode of the batch (β-major)."""
        nb = len(batch.betas)
        episodes = concat_episodes([batch.episodes] * nb)
        beta = batch.betas.repeat_interleave(len(batch.episodes))
        return never_stop_runs(self.union, episodes, beta, weights, self.shape, self.spec, self.guards, self.relaxed)

    def expected(self, weights: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Expected accuracy and SC@64-relative tokens [nb, S] of weights [D] (differentiable)."""
        runs = self.runs(weights, batch)
        self.last_runs = runs
        correct, tokens = expected_outcome(weights, runs, self.shape, self.relaxed.sharpness)
        nb, e = len(batch.betas), len(batch.episodes)
        store = self.owner[batch.episodes.question]
        acc = _per_store(correct.cpu().view(1, nb, e), store, len(self.stores))[0]
        tok = _per_store(tokens.cpu().view(1, nb, e), store, len(self.stores))[0]
        return acc, tok / self.sc64

    def __call__(self, weights: Tensor, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Relaxed fitness [P] and metrics of weights [P, D] (members one after another)."""
        parts = [self.expected(w, batch) for w in weights]
        acc, rel = torch.stack([a for a, _ in parts]), torch.stack([r for _, r in parts])
        fitness, drop = fitness_of(self.cfg, acc, rel, batch.betas)
        detached = {"accuracy": acc.detach().mean((1, 2)).cpu(), "tokens_rel": rel.detach().mean((1, 2)).cpu(),
                    "monotone_drop": drop.detach().cpu()}
        if self.last_runs is not None:
            detached["rounds"] = self.last_runs.rounds.double().mean().reshape(1).cpu().expand(len(weights))
        return fitness, detached
