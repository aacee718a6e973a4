"""Why the relaxed objective integrates the stop out exactly: gradient estimators compared on real stores.

On one search batch (AIME24 stores, the ES batch of generation 0) and one weight
vector, every estimator below differentiates the same quantity -- the expected
linear fitness (accuracy - λ(β)·tokens/SC@64) of the stochastic-stop policy
with respect to the stop head's weights -- along the same never-stop runs:

* exact: the survival sum (autotts.discovery.relaxed), no sampling;
* reinforce: a sampled stop round per episode, score-function gradient, batch-mean baseline;
* st-bernoulli: sampled hard stops, straight-through p (b + p - sg(p));
* st-beta: p ~ Beta(a, b) reparameterised (rsample), hard Bernoulli(p) stop, straight-through p;
* gumbel: binary-concrete relaxation of each stop (temperature 0.5), soft survival.

For each: cosine of the M-sample mean with the exact gradient (bias), mean
cosine of one sample (noise), and relative RMS error of one sample. It also
checks the relaxed value against Monte Carlo stochastic-stop runs of the hard env.

    PYTHONPATH=. python scripts/relaxed_estimators.py [--weights W.pt] [--samples 64] [--reps 20]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor

from autotts.controllers.learned import ActionSpec
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.discovery.module import generation_generator
from autotts.discovery.objective import ObjectiveConfig, _per_store, fitness_of
from autotts.discovery.relaxed import (RelaxedConfig, RelaxedObjective, Trajectories, first_stop, stop_head,
                                       stop_probabilities, stochastic_stop_controller)
from autotts.discovery.relaxed_search import stop_head_mask
from autotts.env.episodes import concat_episodes
from autotts.env.rollout import rollout
from autotts.store import load_store

MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")


def episode_values(objective: RelaxedObjective, runs: Trajectories, questions: Tensor) -> Tensor:
    """[E, T] what stopping at each round adds to the linear fitness (the mean over β and stores folded in).

    `questions` [E]: each run's question in the union store.
    """
    store = objective.owner[questions]
    scale = 1.0 / (len(objective.stores) * torch.bincount(store, minlength=len(objective.stores)).double()[store])
    penalty = objective.cfg.penalty(runs.beta.double())[:, None] / objective.sc64[store][:, None]
    return scale[:, None] * (runs.correct - penalty * runs.tokens)


def grad_of(value: Tensor, weights: Tensor, mask: Tensor) -> Tensor:
    (g,) = torch.autograd.grad(value, weights, retain_graph=True)
    return g * mask


def estimators(weights: Tensor, runs: Trajectories, values: Tensor, shape: PolicyShape, mask: Tensor,
               generator: torch.Generator) -> dict[str, Tensor]:
    """One sample of each estimator's gradient (the exact one is deterministic)."""
    forced, valid = runs.forced, runs.may_stop
    out = {}
    p = stop_probabilities(weights, runs, shape)
    out["exact"] = grad_of((first_stop(p) * values).sum(), weights, mask)
    pi = first_stop(p).detach().clamp(min=0)
    tau = torch.multinomial(pi / pi.sum(1, keepdim=True), 1, generator=generator).squeeze(1)
    sampled = values.gather(1, tau[:, None]).squeeze(1)
    logpi = first_stop(p).clamp(min=1e-300).log().gather(1, tau[:, None]).squeeze(1)
    out["reinforce"] = grad_of(((sampled - sampled.mean()).detach() * logpi).sum(), weights, mask)
    u = torch.rand(p.shape, generator=generator, dtype=p.dtype)
    hard = (u < p).double()
    z = torch.where(forced, 1.0, hard + p - p.detach()) * valid
    out["st-bernoulli"] = grad_of((first_stop(z) * values).sum(), weights, mask)
    a, b = stop_head(weights, runs, shape)
    torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=generator)))
    q = torch.distributions.Beta(a.double(), b.double()).rsample()
    hard = (torch.rand(q.shape, generator=generator, dtype=q.dtype) < q).double()
    z = torch.where(forced, 1.0, hard + q - q.detach()) * valid
    out["st-beta"] = grad_of((first_stop(z) * values).sum(), weights, mask)
    noise = torch.rand(p.shape, generator=generator, dtype=p.dtype).clamp(1e-9, 1 - 1e-9)
    logit = p.clamp(1e-9, 1 - 1e-9).log() - (1 - p).clamp(1e-9, 1 - 1e-9).log()
    z = torch.sigmoid((logit + noise.log() - (1 - noise).log()) / 0.5)
    z = torch.where(forced, 1.0, z) * valid
    out["gumbel"] = grad_of((first_stop(z) * values).sum(), weights, mask)
    return out


def compare(weights: Tensor, runs: Trajectories, values: Tensor, shape: PolicyShape, samples: int) -> list[dict]:
    mask = stop_head_mask(shape).double()
    w = weights.double().clone().requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    draws: dict[str, list[Tensor]] = {}
    for _ in range(samples):
        for name, grad in estimators(w, runs, values, shape, mask, g).items():
            draws.setdefault(name, []).append(grad)
    exact = draws["exact"][0]
    cos = torch.nn.functional.cosine_similarity
    rows = []
    for name, grads in draws.items():
        stack = torch.stack(grads)
        rows.append({"estimator": name, "cos_mean": float(cos(stack.mean(0), exact, dim=0)),
                     "cos_one": float(cos(stack, exact[None], dim=1).mean()),
                     "rel_rmse_one": float(((stack - exact).norm(dim=1) ** 2).mean().sqrt() / exact.norm())})
    return rows


def monte_carlo(objective: RelaxedObjective, weights: Tensor, batch, reps: int) -> tuple[float, float, float]:
    """(relaxed linear fitness, MC mean, MC standard error) with stochastic stops in the hard env."""
    with torch.no_grad():
        relaxed, _ = objective(weights[None], batch)
    nb, e = len(batch.betas), len(batch.episodes)
    episodes = concat_episodes([batch.episodes] * (nb * reps))
    beta = batch.betas.repeat_interleave(e).repeat(reps)
    torch.manual_seed(0)
    ctrl = stochastic_stop_controller(weights, objective.shape, objective.spec, objective.guards,
                                      generator=torch.Generator().manual_seed(1))
    result = rollout(objective.union, episodes, ctrl, context={"beta": beta})
    store = objective.owner[batch.episodes.question]
    acc = _per_store(result.correct.double().view(reps, nb, e), store, len(objective.stores))
    rel = _per_store(result.tokens.double().view(reps, nb, e), store, len(objective.stores)) / objective.sc64
    fit, _ = fitness_of(objective.cfg, acc, rel, batch.betas)
    return float(relaxed[0]), float(fit.mean()), float(fit.std() / reps ** 0.5)


def costs(stores: list, weights: Tensor, batch, shape: PolicyShape, spec: ActionSpec) -> list[str]:
    """Seconds of what each approach rolls out per gradient: never-stop runs (exact) or stochastic runs (sampled)."""
    lines = []
    values = {}
    for tail in (0.0, 1e-3, 1e-2):
        objective = RelaxedObjective(stores, ObjectiveConfig(), shape, spec, relaxed=RelaxedConfig(tail=tail))
        start = time.perf_counter()
        with torch.no_grad():
            fitness, metrics = objective(weights[None], batch)
        values[tail] = float(fitness[0])
        lines.append(f"| never-stop runs, tail={tail:g} (sharpness {objective.relaxed.sharpness:g}) | "
                     f"{time.perf_counter() - start:.2f} | {float(metrics['rounds'][0]):.1f} | "
                     f"{values[tail]:.5f} ({values[tail] - values[0.0]:+.1e}) |")
    objective = RelaxedObjective(stores, ObjectiveConfig(), shape, spec)
    nb, e = len(batch.betas), len(batch.episodes)
    ctrl = stochastic_stop_controller(weights, shape, spec, objective.guards, objective.relaxed.sharpness,
                                      torch.Generator().manual_seed(0))
    start = time.perf_counter()
    result = rollout(objective.union, concat_episodes([batch.episodes] * nb), ctrl,
                     context={"beta": batch.betas.repeat_interleave(e)})
    lines.append(f"| one stochastic-stop hard run (one sample of a sampled estimator) | "
                 f"{time.perf_counter() - start:.2f} | {float(result.rounds.double().mean()):.1f} | - |")
    start = time.perf_counter()
    objective.hard(weights[None], batch)
    lines.append(f"| one deterministic hard run (one ES member) | {time.perf_counter() - start:.2f} | - | - |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="flat policy weights (.pt); default: the CMC imitation warm start")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape, spec = PolicyShape(), ActionSpec()
    stores = [load_store(f"{m}/aime24") for m in MODELS]
    if args.weights:
        weights = torch.load(args.weights)
    else:
        from autotts.discovery.imitation import ImitationConfig, imitate
        weights, _ = imitate(stores, shape, spec, initial_weights(shape, 0), ImitationConfig(), 0)
    cfg = ObjectiveConfig(monotone_weight=0.0)  # the linear fitness: what every estimator differentiates
    # sharpness 1: the stop is the hard env's sample mode (p ~ Beta, then Bernoulli), which st-beta reparameterises
    objective = RelaxedObjective(stores, cfg, shape, spec, relaxed=RelaxedConfig(sharpness=1.0, tail=0.0))
    batch = objective.sample(generation_generator(0, 0))
    runs = objective.runs(weights, batch)
    values = episode_values(objective, runs, batch.episodes.question.repeat(len(batch.betas)))
    print(f"{len(batch.episodes) * len(batch.betas)} episodes, mean never-stop rounds "
          f"{float(runs.rounds.double().mean()):.1f}\n")
    print("| estimator | cos(mean of %d, exact) | mean cos(one, exact) | rel. RMS error of one |" % args.samples)
    print("|---|---|---|---|")
    for row in compare(weights, runs, values, shape, args.samples):
        print(f"| {row['estimator']} | {row['cos_mean']:.3f} | {row['cos_one']:.3f} | {row['rel_rmse_one']:.2f} |")
    relaxed, mc, se = monte_carlo(objective, weights, batch, args.reps)
    print(f"\nrelaxed value {relaxed:.5f}; Monte Carlo ({args.reps} x {len(batch.episodes) * len(batch.betas)} "
          f"stochastic-stop hard runs) {mc:.5f} ± {se:.5f} (1 SE): difference {(relaxed - mc) / se:+.2f} SE\n")
    print("| rollout of the batch | seconds | mean rounds | relaxed fitness (vs tail 0) |\n|---|---|---|---|")
    print("\n".join(costs(stores, weights, batch, shape, spec)))


if __name__ == "__main__":
    main()
