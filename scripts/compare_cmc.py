"""Compare an exported controller's β-sweep with CMC's published curve and SC@64 (the discovery acceptance).

    python scripts/compare_cmc.py --controller runs/math/<time>/export \
        --reference ../shared/reference/reference_sweep.csv [--datasets aime25,aime24] [--seeds 100]

For each dataset, every model's store is evaluated under the reference protocol at 11 β values. The
curve is the mean over models of (tokens, accuracy). Three checks, each with its figures:
(a) accuracy at CMC(β=0.5)'s mean token level (our curve interpolated in tokens) >= CMC(0.5) + 1.0 point;
(b) accuracy >= SC@64's at <= 25% of SC@64's mean tokens (our curve interpolated at that budget);
(c) at β = 1: accuracy >= CMC(1.0)'s with no more tokens.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict

import numpy as np
import torch

from autotts.artifact.export import load_controller
from autotts.evaluate.metrics import figures
from autotts.evaluate.runner import evaluate, protocol_episodes
from autotts.store import load_store

MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")


def reference_means(path: str, dataset: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(method, knob) -> (mean accuracy over models, mean tokens over models)."""
    acc, tok = defaultdict(list), defaultdict(list)
    for r in csv.DictReader(open(path)):
        if r["dataset"] == dataset and r["model"] in MODELS:
            acc[(r["method"], r["knob"])].append(float(r["acc"]))
            tok[(r["method"], r["knob"])].append(float(r["avg_tokens"]))
    return {k: (float(np.mean(acc[k])), float(np.mean(tok[k]))) for k in acc if len(acc[k]) == len(MODELS)}


def our_curve(controller_dir: str, dataset: str, betas: list[float], seeds: int) -> list[tuple[float, float, float]]:
    """(β, mean accuracy, mean tokens) over the four models."""
    ctrl = load_controller(controller_dir)
    per_beta = defaultdict(list)
    for model in MODELS:
        store = load_store(f"{model}/{dataset}")
        episodes = protocol_episodes(store, "reference", seeds)
        for b in betas:
            result, _ = evaluate(store, episodes, ctrl.with_beta(b))
            fig = figures(result, episodes)
            per_beta[b].append((fig.accuracy, fig.tokens))
    return [(b, float(np.mean([a for a, _ in v])), float(np.mean([t for _, t in v]))) for b, v in per_beta.items()]


def at_tokens(curve: list[tuple[float, float, float]], budget: float) -> float:
    """Accuracy of our curve at `budget` mean tokens (linear in tokens; the frontier of the points)."""
    pts = sorted((t, a) for _, a, t in curve)
    toks, accs = np.array([p[0] for p in pts]), np.maximum.accumulate(np.array([p[1] for p in pts]))
    if budget < toks[0]:
        return float("nan")
    return float(np.interp(budget, toks, accs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--datasets", default="aime25,aime24")
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    betas = [round(0.1 * i, 1) for i in range(11)]
    failures = 0
    for dataset in args.datasets.split(","):
        start = time.time()
        ref = reference_means(args.reference, dataset)
        curve = our_curve(args.controller, dataset, betas, args.seeds)
        cmc = {float(k): v for (m, k), v in ref.items() if m == "CMC"}
        sc64 = ref[("SC", "64")]
        print(f"\n{dataset}: mean over {len(MODELS)} models, reference protocol, {args.seeds} seeds "
              f"({time.time() - start:.0f}s)")
        print(f"  {'β':>4}  {'ours acc':>8} {'ours tok':>9}   {'CMC acc':>7} {'CMC tok':>9}")
        for b, a, t in curve:
            ca, ct = cmc[b]
            print(f"  {b:4.1f}  {a:8.2f} {t:9.0f}   {ca:7.2f} {ct:9.0f}")
        a_tok = cmc[0.5][1]
        ours_a = at_tokens(curve, a_tok)
        ok_a = ours_a >= cmc[0.5][0] + 1.0
        budget = 0.25 * sc64[1]
        ours_b = at_tokens(curve, budget)
        ok_b = ours_b >= sc64[0]
        b1 = next(c for c in curve if c[0] == 1.0)
        ok_c = b1[1] >= cmc[1.0][0] and b1[2] <= cmc[1.0][1]
        print(f"  (a) at CMC(0.5)'s {a_tok:,.0f} tokens: ours {ours_a:.2f} vs CMC(0.5) {cmc[0.5][0]:.2f} + 1.0 "
              f"-> {'PASS' if ok_a else 'FAIL'} ({ours_a - cmc[0.5][0]:+.2f} points)")
        print(f"  (b) at 25% of SC@64's tokens ({budget:,.0f}): ours {ours_b:.2f} vs SC@64 {sc64[0]:.2f} "
              f"-> {'PASS' if ok_b else 'FAIL'} ({ours_b - sc64[0]:+.2f} points)")
        print(f"  (c) β=1: ours {b1[1]:.2f} at {b1[2]:,.0f} tokens vs CMC(1.0) {cmc[1.0][0]:.2f} at "
              f"{cmc[1.0][1]:,.0f} -> {'PASS' if ok_c else 'FAIL'}")
        failures += (not ok_a) + (not ok_b) + (not ok_c)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
