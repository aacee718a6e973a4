"""Why the top of an export's curve falls: its decisions against CMC's at every β, and what each costs.

    python scripts/diagnose_top.py --controller runs/math/<time>/export --out docs/figures/diag [--seeds 10]

Per split (AIME24, AIME25; mean over the four models) and β = 0, 0.1, ..., 1 it measures, for the export
and CMC on the same episodes: accuracy, tokens, rounds, branches opened, branches read to the end,
branches pruned, intervals read per opened branch. Then the counterfactuals, one decision type at a
time: the export with that head's β input held at `--hold` (it decides as it does at β = hold, while
the rest, the width guard included, follows β), and the export with its vote head replaced by a plain
majority of completions. Prints markdown tables, writes `<out>.json` and `<out>_{curves,decisions}.png`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from validate_views import BETAS, MODELS, policy_parts

from autotts.controllers.baselines import make_baseline
from autotts.controllers.learned import PolicyProgram, weight_functions
from autotts.controllers.policy import unflatten
from autotts.controllers.rules import RuleEngine
from autotts.env.episodes import concat_episodes
from autotts.env.rollout import rollout
from autotts.env.state import FINISHED, PRUNED
from autotts.evaluate.runner import protocol_episodes
from autotts.store import load_store

EPISODE = {"stop": 0, "open": 1, "width": 2}
BRANCH = {"prune": 0, "advance": 1, "fast": 2}
STATS = ("accuracy", "tokens", "rounds", "opened", "finished", "pruned", "depth")


class _Final:
    """Keeps each episode's last observed branch statuses and depths (the episode's end state)."""

    def __init__(self, n: int):
        self.finished = torch.zeros(n)
        self.pruned = torch.zeros(n)
        self.depth = torch.zeros(n)

    def on_action(self, state, action, reasons, rows) -> None:
        pass

    def on_state(self, state, rows) -> None:
        obs = state.obs
        self.finished[rows] = (obs.status == FINISHED).sum(1).float().cpu()
        self.pruned[rows] = (obs.status == PRUNED).sum(1).float().cpu()
        self.depth[rows] = obs.depth.sum(1).float().cpu()


def held_heads(weights: torch.Tensor, shape, heads_held: tuple[str, ...], hold: float):
    """head_fn whose `heads_held` read β = min(β, hold); the others read β."""
    head_fn, vote_fn = weight_functions(weights, shape)

    def fn(px, bx, beta, member):
        ep, br = head_fn(px, bx, beta, member)
        ep_h, br_h = head_fn(px, bx, beta.clamp(max=hold), member)
        ep, br = ep.clone(), br.clone()
        for name in heads_held:
            if name in EPISODE:
                ep[:, EPISODE[name]] = ep_h[:, EPISODE[name]]
            else:
                br[..., BRANCH[name], :] = br_h[..., BRANCH[name], :]
        return ep, br

    return fn, vote_fn


def majority_weights(weights: torch.Tensor, shape) -> torch.Tensor:
    """The same policy with its vote head set to a plain majority of completions (live answers ~0 weight)."""
    flat = weights.clone()
    w = unflatten(flat, shape)
    w["w_done"].zero_()
    w["w_live"].zero_()
    w["b_live"].fill_(-30.0)
    return flat


def measure(store, episodes, variant) -> dict[str, list[float]]:
    """STATS at each β of BETAS. A policy variant rolls every β out at once (β per episode in the context);
    CMC (a program per β) one β at a time."""
    n = len(episodes)
    if variant == "cmc":
        parts = [_run(store, episodes, make_baseline("cmc", beta), None) for beta in BETAS]
    else:
        beta = torch.tensor(BETAS).repeat_interleave(n)
        whole = _run(store, concat_episodes([episodes] * len(BETAS)), variant(), {"beta": beta})
        parts = [{k: v[i * n:(i + 1) * n] for k, v in whole.items()} for i in range(len(BETAS))]
    out = {k: [] for k in STATS}
    for p in parts:
        opened = p["opened"]
        out["accuracy"].append(100 * float(p["correct"].mean()))
        out["tokens"].append(float(p["tokens"].mean()))
        out["rounds"].append(float(p["rounds"].mean()))
        out["opened"].append(float(opened.mean()))
        out["finished"].append(float(p["finished"].mean()))
        out["pruned"].append(float(p["pruned"].mean()))
        out["depth"].append(float((p["depth"] / opened.clamp(min=1)).mean()))
    return out


def _run(store, episodes, ctrl, context) -> dict[str, torch.Tensor]:
    final = _Final(len(episodes))
    r = rollout(store, episodes, ctrl, context=context, recorder=final)
    return {"correct": r.correct.double(), "tokens": r.tokens.double(), "rounds": r.rounds.double(),
            "opened": r.opened.double(), "finished": final.finished.double(), "pruned": final.pruned.double(),
            "depth": final.depth.double()}


def variants(parts, hold: float) -> dict:
    """Variant name -> a policy engine builder (or "cmc")."""
    weights, shape, spec, guards, _ = parts

    def policy(head_fn, vote_fn):
        return lambda: RuleEngine(PolicyProgram(head_fn, vote_fn, spec), [g.build() for g in guards])

    out = {"ours": policy(*weight_functions(weights, shape)),
           "ours, majority vote": policy(*weight_functions(majority_weights(weights, shape), shape))}
    for label, names in (("stop", ("stop",)), ("open+width", ("open", "width")), ("prune", ("prune",)),
                         ("advance+fast", ("advance", "fast"))):
        out[f"ours, {label} as at β≤{hold:g}"] = policy(*held_heads(weights, shape, names, hold))
    out["CMC"] = "cmc"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--hold", type=float, default=0.5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    parts = policy_parts(args.controller)
    results: dict = {}
    for split in ("aime25", "aime24"):
        per_variant: dict = {}
        for model in MODELS:
            store = load_store(f"{model}/{split}")
            episodes = protocol_episodes(store, "reference", args.seeds)
            for name, variant in variants(parts, args.hold).items():
                m = measure(store, episodes, variant)
                acc = per_variant.setdefault(name, {k: [0.0] * len(BETAS) for k in STATS})
                for k in STATS:
                    acc[k] = [a + b / len(MODELS) for a, b in zip(acc[k], m[k])]
                per_variant.setdefault(f"{name} per model", {})[model] = m["accuracy"]
        results[split] = per_variant
        print_tables(split, per_variant)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"betas": BETAS, "seeds": args.seeds, "hold": args.hold,
                                                    "results": results}, indent=1))
    figures(results, args.out)
    return 0


def print_tables(split: str, per_variant: dict) -> None:
    names = [n for n in per_variant if not n.endswith("per model")]
    print(f"\n### {split}: accuracy % (mean of 4 models) by β\n")
    print("| variant | " + " | ".join(f"{b:g}" for b in BETAS) + " |")
    print("|---|" + "---|" * len(BETAS))
    for n in names:
        print(f"| {n} | " + " | ".join(f"{a:.1f}" for a in per_variant[n]["accuracy"]) + " |")
    print(f"\n### {split}: decisions per episode at β = 0.5 / 0.8 / 1 (mean of 4 models)\n")
    print("| variant | " + " | ".join(STATS) + " |")
    print("|---|" + "---|" * len(STATS))
    for n in names:
        cells = []
        for k in STATS:
            v = per_variant[n][k]
            cells.append(" / ".join(f"{v[i]:.1f}" if k != "tokens" else f"{v[i] / 1000:.0f}k" for i in (5, 8, 10)))
        print(f"| {n} | " + " | ".join(cells) + " |")


def figures(results: dict, out: str) -> None:
    from matplotlib.figure import Figure

    from autotts.evaluate.plots import save_png

    fig = Figure(figsize=(11, 4.2))
    for i, (split, per_variant) in enumerate(results.items()):
        ax = fig.add_subplot(1, 2, i + 1)
        for n, v in per_variant.items():
            if n.endswith("per model"):
                continue
            style = {"CMC": dict(color="#2ca02c", lw=2.2), "ours": dict(color="k", lw=2.2)}.get(n, dict(lw=1, ls="--"))
            ax.plot([t / 1000 for t in v["tokens"]], v["accuracy"], marker=".", label=n, **style)
        ax.set_title(f"{split} (4-model mean)")
        ax.set_xlabel("tokens per question (k)")
        ax.set_ylabel("accuracy %")
        ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_png(fig, f"{out}_curves.png")
    fig = Figure(figsize=(13, 6))
    keys = ("rounds", "opened", "finished", "pruned", "depth", "tokens")
    for i, split in enumerate(results):
        for j, k in enumerate(keys):
            ax = fig.add_subplot(2, len(keys), i * len(keys) + j + 1)
            for n in ("ours", "CMC"):
                ax.plot(BETAS, results[split][n][k], marker=".", label=n,
                        color={"ours": "k", "CMC": "#2ca02c"}[n])
            ax.set_title(f"{split}: {k}", fontsize=9)
            ax.set_xlabel("β", fontsize=8)
            ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, f"{out}_decisions.png")


if __name__ == "__main__":
    raise SystemExit(main())
