"""Benchmark `autotts serve`: requests/s and p50/p95 time to answer against concurrency, through the proxy.

    python scripts/bench_serve.py --vllm-python /path/to/vllm-venv/bin/python        # starts a tiny vLLM itself
    python scripts/bench_serve.py --upstream http://127.0.0.1:8000/v1 --model NAME   # an upstream already running

For each concurrency (1, 4, 16, 64) it sends that many clients' worth of
requests through the proxy (the real app under uvicorn, the official `openai`
client), and reports the proxy's own time per round (controller, features,
env bookkeeping, HTTP) as a share of upstream time, from `/metrics`. The same
questions are then sent straight to the upstream as SC@N (N sampled branches
to the cap, majority vote) for comparison: tokens and time to answer.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VLLM_FLAGS = ("--no-enable-chunked-prefill", "--max-num-batched-tokens", "32768")  # see tests/serve_support.py
WORDS = "sum product square number triangle prime divisor circle radius area cube sphere coin dice card".split()


def questions(n: int) -> list[str]:
    return [f"Find the {WORDS[i % len(WORDS)]} of {i} and {(7 * i) % 100} ." for i in range(n)]


def start_vllm(python: str, workdir: Path) -> tuple[subprocess.Popen, str, str, Path]:
    """The tiny float32 model (scripts/make_tiny_model.py --vllm) served by vLLM's CPU build on a free port."""
    import importlib.util
    import socket

    spec = importlib.util.spec_from_file_location("make_tiny_model", ROOT / "scripts" / "make_tiny_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.make_tiny_model(workdir / "tiny32", vllm=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(workdir / "vllm.log", "wb")
    proc = subprocess.Popen([python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                             "--served-model-name", "tiny", "--dtype", "float32", "--max-model-len", "1024",
                             *VLLM_FLAGS, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": ""},
                            start_new_session=True)
    end = time.monotonic() + 400
    while time.monotonic() < end and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc, f"http://127.0.0.1:{port}/v1", "tiny", model
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"vLLM did not start; see {workdir / 'vllm.log'}")


class Proxy:
    def __init__(self, argv: list[str]):
        import socket

        import uvicorn

        from autotts.cli import build_parser
        from autotts.commands.serve import build

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = build(build_parser().parse_args(["serve", *argv, "--port", str(self.port)]))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.05)

    def stats(self) -> tuple[float, float, float]:
        s = self.app.state.scheduler.stats
        return s.proxy_s, s.upstream_s, s.rounds


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def through_proxy(proxy: Proxy, model: str, qs: list[str], concurrency: int) -> dict:
    import openai

    c = openai.OpenAI(base_url=f"http://127.0.0.1:{proxy.port}/v1", api_key="unused", timeout=600, max_retries=0)

    def ask(q: str) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        r = c.completions.create(model=model, prompt=q, seed=0)
        block = r.model_extra["autotts"]
        return time.perf_counter() - t0, block["tokens"], block["sequential_tokens"]

    p0, u0, r0 = proxy.stats()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(ask, qs))
    wall = time.perf_counter() - t0
    p1, u1, r1 = proxy.stats()
    secs = [o[0] for o in out]
    return {"rps": len(qs) / wall, "p50": pct(secs, 0.5), "p95": pct(secs, 0.95),
            "tokens": statistics.mean(o[1] for o in out), "seq": statistics.mean(o[2] for o in out),
            "share": (p1 - p0) / max(u1 - u0, 1e-9), "rounds": r1 - r0, "proxy_ms": 1e3 * (p1 - p0) / max(r1 - r0, 1)}


def sc_direct(upstream: str, model: str, qs: list[str], n: int, max_tokens: int, concurrency: int) -> dict:
    """SC@n straight to the upstream: n seeded branches to the cap per question (one request, n choices), vote."""
    import openai

    from autotts.answers.canonical import canonical
    from autotts.answers.extract import last_boxed

    c = openai.OpenAI(base_url=upstream, api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"), timeout=600,
                      max_retries=0)

    def ask(q: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = c.completions.create(model=model, prompt=q, n=n, max_tokens=max_tokens, seed=0, temperature=1.0)
        votes = Counter(canonical(last_boxed(ch.text) or "") for ch in r.choices)
        votes.most_common(1)
        return time.perf_counter() - t0, r.usage.completion_tokens

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(ask, qs))
    wall = time.perf_counter() - t0
    secs = [o[0] for o in out]
    return {"rps": len(qs) / wall, "p50": pct(secs, 0.5), "p95": pct(secs, 0.95),
            "tokens": statistics.mean(o[1] for o in out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vllm-python", help="start vLLM with this python, serving the tiny float32 model")
    ap.add_argument("--upstream", help="an upstream already running (instead of --vllm-python)")
    ap.add_argument("--model", default="tiny", help="served model name (default: %(default)s)")
    ap.add_argument("--controller", default="pp:4", help="the proxy's controller (default: %(default)s)")
    ap.add_argument("--n", type=int, default=8, help="branches per request, and N of SC@N (default: %(default)s)")
    ap.add_argument("--delta", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", default="1,4,16,64", help="client concurrencies (default: %(default)s)")
    ap.add_argument("--requests", type=int, default=64, help="requests per concurrency level (default: %(default)s)")
    args = ap.parse_args(argv)
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.vllm_python:
            proc, upstream, model, _ = start_vllm(args.vllm_python, Path(tmp))
        elif args.upstream:
            upstream, model = args.upstream, args.model
        else:
            ap.error("give --vllm-python or --upstream")
        try:
            proxy = Proxy(["--controller", args.controller, "--upstream", upstream, "--model", model, "--n",
                           str(args.n), "--delta", str(args.delta), "--max-tokens", str(args.max_tokens)])
            levels = [int(x) for x in args.concurrency.split(",")]
            qs = questions(args.requests)
            through_proxy(proxy, model, qs[:4], 4)  # warm-up (connections, first-call paths)
            print(f"autotts serve ({args.controller}, n={args.n}, delta={args.delta}, max_tokens={args.max_tokens}) "
                  f"vs SC@{args.n} straight to the upstream; {len(qs)} requests per level")
            print(f"{'conc':>4} | {'proxy req/s':>11} {'p50 s':>6} {'p95 s':>6} {'tokens':>7} {'seq tok':>7} "
                  f"{'proxy/round':>11} {'share':>6} | {'SC req/s':>8} {'p50 s':>6} {'p95 s':>6} {'tokens':>7}")
            for c in levels:
                a = through_proxy(proxy, model, qs, c)
                b = sc_direct(upstream, model, qs, args.n, args.max_tokens, c)
                print(f"{c:>4} | {a['rps']:>11.2f} {a['p50']:>6.2f} {a['p95']:>6.2f} {a['tokens']:>7.1f} "
                      f"{a['seq']:>7.1f} {a['proxy_ms']:>9.2f}ms {100 * a['share']:>5.1f}% | {b['rps']:>8.2f} "
                      f"{b['p50']:>6.2f} {b['p95']:>6.2f} {b['tokens']:>7.1f}", flush=True)
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
