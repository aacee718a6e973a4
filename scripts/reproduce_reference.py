"""Reproduce `reference/reference_sweep.csv` with autotts: every store, method and knob, side by side.

    python scripts/reproduce_reference.py --reference ../shared/reference/reference_sweep.csv [--methods sc,asc]

Prints one line per (store, method, knob) with our accuracy/tokens, the reference's, and the
difference, then a summary against the acceptance tolerances (SC/ASC/ESC: 0.01 points and 1 token;
Parallel-Probe/CMC: 0.3 points and 1 % tokens). Exits 1 if any row is outside its tolerance.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time

import torch

from autotts.controllers.baselines import REFERENCE_NAMES
from autotts.evaluate.folded import plan_rollouts
from autotts.evaluate.metrics import figures
from autotts.evaluate.runner import protocol_episodes
from autotts.store import load_store

TOLERANCE = {"sc": (0.01, 1.0, None), "asc": (0.01, 1.0, None), "esc": (0.01, 1.0, None),
             "parallel_probe": (0.3, None, 0.01), "cmc": (0.3, None, 0.01)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="path to reference_sweep.csv")
    ap.add_argument("--methods", default=",".join(REFERENCE_NAMES), help="comma-separated subset")
    ap.add_argument("--stores", help="comma-separated model/dataset subset (default: all in the CSV)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest for these small ops)")
    ap.add_argument("--fold", type=int, help="knobs per rollout (default: autotts.evaluate.folded's choice)")
    ap.add_argument("--workers", type=int, default=1, help="processes that run the rollouts (one per core scales)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ours_by_ref = {v: k for k, v in REFERENCE_NAMES.items()}
    methods = set(args.methods.split(","))
    rows = [r for r in csv.DictReader(open(args.reference)) if ours_by_ref[r["method"]] in methods]
    if args.stores:
        keep = set(args.stores.split(","))
        rows = [r for r in rows if f"{r['model']}/{r['dataset']}" in keep]
    worst: dict[str, list[float]] = {}
    failures, walls = 0, {}
    by_store: dict[str, list[dict]] = {}
    for r in rows:
        by_store.setdefault(f"{r['model']}/{r['dataset']}", []).append(r)
    for name, group in by_store.items():
        store = load_store(name)
        episodes = protocol_episodes(store, "reference")
        plan = [(ours_by_ref[r["method"]], [float(r["knob"])], None) for r in group]
        if args.fold != 1:  # every knob of a method in one plan entry: one folded sweep
            by_method: dict[str, list[dict]] = {}
            for r in group:
                by_method.setdefault(ours_by_ref[r["method"]], []).append(r)
            group = [r for rs in by_method.values() for r in rs]
            plan = [(m, [float(r["knob"]) for r in rs], None) for m, rs in by_method.items()]
        for r, (_, _, result, wall) in zip(group, plan_rollouts(store, episodes, plan, args.fold, args.workers)):
            method = ours_by_ref[r["method"]]
            fig = figures(result, episodes)
            acc, tok = round(fig.accuracy, 2), fig.tokens
            d_acc, d_tok = acc - float(r["acc"]), tok - float(r["avg_tokens"])
            tol_acc, tol_tok, tol_rel = TOLERANCE[method]
            ok = (abs(d_acc) <= tol_acc + 1e-9
                  and (abs(d_tok) <= (tol_tok if tol_tok else tol_rel * float(r["avg_tokens"]))))
            failures += not ok
            w = worst.setdefault(method, [0.0, 0.0])
            w[0], w[1] = max(w[0], abs(d_acc)), max(w[1], abs(d_tok))
            walls.setdefault(method, []).append((wall, float(r["wall_s"])))
            print(f"{name:22s} {r['method']:14s} {r['knob']:>4s}  acc {acc:6.2f} ref {float(r['acc']):6.2f} "
                  f"d {d_acc:+.2f}  tokens {tok:11.1f} ref {float(r['avg_tokens']):11.1f} d {d_tok:+.1f}  "
                  f"wall {wall:6.3f}s (ref {float(r['wall_s']):.2f}s)  {'ok' if ok else 'OUT OF TOLERANCE'}",
                  flush=True)
    print("\nsummary (worst |Δaccuracy| points, worst |Δtokens|, mean wall ours vs reference):")
    for method, (da, dt) in worst.items():
        ours = sum(w for w, _ in walls[method]) / len(walls[method])
        ref = sum(w for _, w in walls[method]) / len(walls[method])
        print(f"  {REFERENCE_NAMES[method]:14s} {da:.2f} points, {dt:.1f} tokens, {ours:.3f}s vs {ref:.2f}s "
              f"({ref / ours:.1f}x faster)")
    print(f"{len(rows) - failures}/{len(rows)} rows within tolerance")
    return 1 if failures else 0


if __name__ == "__main__":
    start = time.time()
    code = main()
    print(f"total {time.time() - start:.0f}s")
    sys.exit(code)
