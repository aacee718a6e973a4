"""`autotts explain CONTROLLER`: an exported policy as a short rule list per head, with its fidelity."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("controller", help="exported controller directory (controller.pt + manifest.json)")
    p.add_argument("--store", action="append", metavar="PATH",
                   help="stores to replay (default: the manifest's validation stores); repeatable")
    p.add_argument("--beta", help="β values, comma-separated (default: the manifest's default grid)")
    p.add_argument("--seeds", type=int, default=3, help="reference-protocol seeds per store (default: %(default)s)")
    p.add_argument("--depth", type=int, default=3, help="decision-tree depth per head (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")


def main(args: argparse.Namespace) -> int:
    import torch

    from autotts.errors import AutottsError
    from autotts.evaluate.cli_eval import parse_floats
    from autotts.evaluate.distill import decision_samples, distil
    from autotts.artifact.export import load_controller
    from autotts.store import load_store

    torch.set_num_threads(args.threads)
    if args.depth < 1 or args.seeds < 1:
        raise AutottsError(f"--depth {args.depth} / --seeds {args.seeds}: expected positive integers")
    ctrl = load_controller(args.controller)
    specs = args.store or [s["spec"] for s in ctrl.manifest.get("validation_stores", [])]
    if not specs:
        raise AutottsError(f"{args.controller}: the manifest names no validation stores; pass --store")
    betas = parse_floats(args.beta, "--beta") or list(ctrl.default_betas)
    samples = decision_samples(ctrl, [load_store(s) for s in specs], betas, args.seeds)
    heads = distil(samples, args.depth)
    if args.json:
        json.dump({"controller": args.controller, "stores": specs, "betas": betas, "seeds": args.seeds,
                   "depth": args.depth, "heads": [h.as_dict() for h in heads]}, sys.stdout)
        print()
        return 0
    print(f"{args.controller}: rules distilled from the policy's decisions on {', '.join(specs)} "
          f"(β {', '.join(f'{b:g}' for b in betas)}; {args.seeds} seeds; trees of depth {args.depth}; "
          "fidelity on held-out episodes)")
    for h in heads:
        print(f"\n{h.head}: fidelity {100 * h.fidelity:.1f}% of {h.test_decisions} decisions; otherwise {h.default}")
        for rule in h.rules:
            print(f"  {rule}")
    return 0
