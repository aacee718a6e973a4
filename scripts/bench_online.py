"""Benchmark the online runtime on the tiny local model (or any local model).

    python scripts/bench_online.py [--model DIR] [--threads 1]

Prints (1) the controller's time per round (rules / features / policy) and the
live env's bookkeeping per round, each as a share of backend time, for a few
controllers; (2) tokens/s of `TransformersBackend` extending branches in
Δ-token intervals with prefix (KV cache) reuse versus re-encoding every
prefix, on identical work (same seeds, same tokens), and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["What is the sum of 3 and 5 ?", "Find the number of prime divisors of 1000 .",
             "A coin is tossed 3 times ; find the probability of 2 heads .", "Let us compute the value of x ."]


def overhead(model: str, controllers: list[str], n: int, delta: int, max_tokens: int) -> None:
    from autotts.executor.backends.transformers_backend import TransformersBackend
    from autotts.executor.controllers import controller_from_spec
    from autotts.executor.intervals import IntervalReader
    from autotts.executor.live_env import LiveEnv, LiveQuestion
    from autotts.executor.runtime import run_online

    reader = IntervalReader(TransformersBackend(model), delta, max_tokens)
    live = [LiveQuestion(q, q) for q in QUESTIONS]
    print(f"controller overhead ({len(live)} questions, n={n}, delta={delta}, max_tokens={max_tokens})")
    print(f"{'controller':>12} {'rounds':>6} {'ctrl ms/rd':>10} {'env ms/rd':>9} {'backend ms/rd':>13} "
          f"{'ctrl/backend':>12} {'env/backend':>11}")
    for spec in controllers:
        controller = _policy() if spec == "policy" else controller_from_spec(spec)
        t = run_online(controller, LiveEnv(reader, live, n, controller.slots)).timing
        ms = lambda s: 1000 * s / t.rounds  # noqa: E731
        print(f"{spec:>12} {t.rounds:>6} {ms(t.controller_s):>10.2f} {ms(t.env_s):>9.2f} {ms(t.backend_s):>13.1f} "
              f"{t.controller_s / t.backend_s:>12.2%} {t.env_s / t.backend_s:>11.2%}")


def _policy():
    """The learned-controller path (features + Beta-policy heads + rules + guards) with neutral initial weights."""
    from autotts.controllers.learned import policy_controller
    from autotts.controllers.policy import PolicyShape, initial_weights

    return policy_controller(initial_weights(PolicyShape()))


def prefix_reuse(model: str, branches: int, delta: int, max_tokens: int, prompt_words: int) -> None:
    """Same seeds, same tokens in both modes; time only the extend calls (no probes)."""
    from make_tiny_model import corpus

    from autotts.executor.backends.transformers_backend import TransformersBackend

    prompt = " ".join((" ".join(corpus()).split() * 10)[:prompt_words])
    results = {}
    for reuse in (True, False):
        backend = TransformersBackend(model, reuse_prefix=reuse)
        seqs = backend.open(prompt, list(range(branches)))
        t0 = time.perf_counter()
        while any(not b.eos and b.tokens < max_tokens for b in seqs):
            backend.extend(seqs, [min(delta, max_tokens - b.tokens) for b in seqs])
        dt = time.perf_counter() - t0
        results[reuse] = (sum(b.tokens for b in seqs), dt, [list(b.state.ids) for b in seqs])
    (tok, t_reuse, ids_reuse), (_, t_re, ids_re) = results[True], results[False]
    assert ids_reuse == ids_re, "prefix reuse changed the sampled tokens"
    print(f"\nprefix reuse ({branches} branches, prompt {prompt_words} words, delta={delta}, "
          f"cap {max_tokens}, {tok} tokens, identical in both modes)")
    print(f"  KV-cache reuse : {tok / t_reuse:8.1f} tokens/s")
    print(f"  re-encoding    : {tok / t_re:8.1f} tokens/s")
    print(f"  ratio          : {t_re / t_reuse:8.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="local model dir (default: build the tiny model in a temp dir)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--controllers", default="sc:16,asc:16,esc:16,pp:16,cmc:0.5,policy",
                        help="comma-separated specs ('policy': a learned controller with initial weights)")
    parser.add_argument("--n", type=int, default=16, help="branches per question")
    parser.add_argument("--delta", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--branches", type=int, default=16, help="prefix-reuse bench: branches")
    parser.add_argument("--prompt-words", type=int, default=200, help="prefix-reuse bench: prompt length")
    parser.add_argument("--reuse-tokens", type=int, default=256, help="prefix-reuse bench: tokens per branch")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "scripts"))  # make_tiny_model lives next to this script
    with tempfile.TemporaryDirectory() as tmp:
        model = long_model = args.model
        if model is None:
            from make_tiny_model import make_tiny_model

            model = str(make_tiny_model(Path(tmp) / "tiny"))
            long_model = str(make_tiny_model(Path(tmp) / "tiny-no-eos", eos_bias=-30.0))  # every branch runs to the cap
        overhead(model, args.controllers.split(","), args.n, args.delta, args.max_tokens)
        prefix_reuse(long_model, args.branches, args.delta, args.reuse_tokens, args.prompt_words)
    return 0


if __name__ == "__main__":
    sys.exit(main())
