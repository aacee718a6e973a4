"""Benchmark the two export formats of one controller: controller.pt2 (torch.export) vs controller.pt (TorchScript).

    python scripts/bench_export.py [--store Qwen3-8B/aime25] [--seeds 20] [--repeat 3]

Prints, best of `--repeat`, in one run: the time to write each file; the time to
load it (``torch.export.load`` + ``.module()`` vs ``torch.jit.load``); one network
call on a validation-sized batch; a whole replay evaluation through
`load_controller` (rules and env included); and whether the two evaluations took
the same decisions (answers, tokens, rounds of every episode).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """(best wall seconds of `repeat` calls, the last call's result)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="synthetic:questions=30,branches=128,seed=1")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from autotts.artifact.export import export_program, load_controller, load_jit, load_program, trace_policy
    from autotts.controllers.policy import PolicyShape, initial_weights
    from autotts.env.rollout import rollout
    from autotts.evaluate.runner import protocol_episodes
    from autotts.store import load_store

    sys.path.insert(0, str(ROOT / "tests"))
    from train_support import export_weights  # a manifest like training writes, without a training run

    shape, weights = PolicyShape(), initial_weights(PolicyShape(), seed=3, scale=0.5)
    out = Path(tempfile.mkdtemp()) / "export"
    export_weights(weights, out)
    pt2, pt = out / "controller.pt2", out / "controller.pt"
    rows: dict[str, dict[str, float]] = {"pt2": {}, "pt": {}}
    rows["pt2"]["export"], _ = best(lambda: torch.export.save(export_program(weights, shape), str(pt2)), args.repeat)
    rows["pt"]["export"], _ = best(lambda: trace_policy(weights, shape).save(str(pt)), args.repeat)
    rows["pt2"]["load"], program = best(lambda: load_program(pt2), args.repeat)
    rows["pt"]["load"], script = best(lambda: load_jit(pt), args.repeat)

    store = load_store(args.store)
    episodes = protocol_episodes(store, "reference", args.seeds)
    e, b = len(episodes), 64
    inputs = (torch.randn(e, shape.n_pool), torch.randn(e, b, shape.n_branch), torch.rand(e))
    rows["pt2"]["call"], _ = best(lambda: program(*inputs), max(args.repeat, 10))
    rows["pt"]["call"], _ = best(lambda: script(*inputs), max(args.repeat, 10))
    results = {}
    for name, file in (("pt2", "controller.pt2"), ("pt", "controller.pt")):
        ctrl = load_controller(out, beta=0.5, file=file)
        rows[name]["eval"], results[name] = best(lambda: rollout(store, episodes, ctrl), args.repeat)
    same = all(torch.equal(getattr(results["pt2"], f), getattr(results["pt"], f))
               for f in ("answer", "tokens", "rounds", "opened"))

    print(f"store {args.store}, {e} episodes ({args.seeds} seeds), best of {args.repeat}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'':>16} {'.pt2 s':>10} {'.pt s':>10} {'.pt2/.pt':>9}")
    labels = {"export": "write file", "load": "load file", "call": f"1 call E={e} B={b}", "eval": "replay eval"}
    for key, label in labels.items():
        a, c = rows["pt2"][key], rows["pt"][key]
        print(f"{label:>16} {a:10.4f} {c:10.4f} {a / c:9.2f}")
    print(f"same decisions on every episode: {same}")


if __name__ == "__main__":
    main()
