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
    beta_map = getattr(ctrl, "beta_map", None)  # a teacher switch: the rules are the policy's, at its own β
    if beta_map is not None:
        ctrl = ctrl.policy
        if args.beta is None:
            betas = [b for p, b in zip(beta_map.programs, beta_map.inner) if p == "policy"] or betas
    samples = decision_samples(ctrl, [load_store(s) for s in specs], betas, args.seeds)
    heads = distil(samples, args.depth)
    if args.json:
        json.dump({"controller": args.controller, "stores": specs, "betas": betas, "seeds": args.seeds,
                   "depth": args.depth, "heads": [h.as_dict() for h in heads],
                   **({"beta_map": beta_map.record()} if beta_map is not None else {})}, sys.stdout)
        print()
        return 0
    print(f"{args.controller}: rules distilled from the policy's decisions on {', '.join(specs)} "
          f"(β {', '.join(f'{b:g}' for b in betas)}; {args.seeds} seeds; trees of depth {args.depth}; "
          "fidelity on held-out episodes)")
    if beta_map is not None:
        print(switch_text(beta_map))
    for h in heads:
        print(f"\n{h.head}: fidelity {100 * h.fidelity:.1f}% of {h.test_decisions} decisions; otherwise {h.default}")
        for rule in h.rules:
            print(f"  {rule}")
    return 0


def switch_text(beta_map) -> str:
    """Which user β run CMC itself and which run the policy (at which β of its own): the rules below are the
    policy's."""
    at = ", ".join(f"β={b:g}: " + (f"policy at β={i:g}" if p == "policy" else f"CMC({i:g})")
                   for b, p, i in zip(beta_map.betas, beta_map.programs, beta_map.inner))
    return f"teacher switch (manifest beta_map): {at}; the rules below are the policy's, at its own β"
