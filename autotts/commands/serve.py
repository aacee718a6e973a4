"""`autotts serve`: an OpenAI-compatible proxy that runs a controller over an upstream completions server."""

from __future__ import annotations

import argparse
import os

API_KEY_ENV = "AUTOTTS_SERVE_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from autotts.executor.options import add_sampling_arguments

    parser.add_argument("--controller", required=True,
                        help="NAME:KNOB (sc:8, asc:16, esc:16, pp:16, cmc[:BETA]) or an exported controller directory")
    parser.add_argument("--upstream", required=True, help="the completions server's URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", required=True,
                        help="the served model name (what clients send and the upstream serves)")
    parser.add_argument("--beta", type=float, default=0.5,
                        help="default accuracy-cost knob in [0,1] (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s, loopback only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    parser.add_argument("--api-key", default=None,
                        help=f"clients must send it as a Bearer token (or set ${API_KEY_ENV})")
    parser.add_argument("--upstream-api-key", default=None, help="key sent to the upstream (default: $OPENAI_API_KEY)")
    parser.add_argument("--tokenizer", default=None,
                        help="local tokenizer of the served model for chat templates (default: the upstream's)")
    g = parser.add_argument_group("branches (as in autotts run)")
    g.add_argument("--n", type=int, default=64, help="branches available per request (default: %(default)s)")
    g.add_argument("--shuffle-seed", type=int, default=0, help="branch opening order seed (default: %(default)s)")
    add_sampling_arguments(g)
    s = parser.add_argument_group("limits")
    s.add_argument("--concurrency", type=int, default=64, help="upstream requests in flight (default: %(default)s)")
    s.add_argument("--max-live", type=int, default=64, help="requests in rounds at once (default: %(default)s)")
    s.add_argument("--max-queue", type=int, default=256, help="requests waiting; more get 429 (default: %(default)s)")
    s.add_argument("--request-timeout", type=float, default=600.0, help="seconds per request (default: %(default)s)")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds per upstream call (default: %(default)s)")
    s.add_argument("--retries", type=int, default=1, help="upstream retries with backoff (default: %(default)s)")
    s.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body limit (default: %(default)s)")
    s.add_argument("--log-level", default="info", help="uvicorn log level (default: %(default)s)")


def build(args: argparse.Namespace):
    """The app for `args` (the controller is loaded and checked here, before anything listens)."""
    from autotts.errors import AutottsError
    from autotts.executor.backends.base import Sampling
    from autotts.executor.backends.openai_backend import OpenAIBackend
    from autotts.executor.controllers import controller_from_spec
    from autotts.executor.intervals import Probe
    from autotts.executor.options import format_prompt
    from autotts.serve.prompts import ChatRenderer
    from autotts.serve.routes import ServeConfig, create_app
    from autotts.serve.scheduler import Scheduler, Settings

    for flag in ("n", "delta", "max_tokens", "probe_tokens", "concurrency", "max_live", "max_queue", "max_body_bytes"):
        if getattr(args, flag) <= 0:
            raise AutottsError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: expected a positive integer")
    if not 0.0 <= args.beta <= 1.0:
        raise AutottsError(f"--beta {args.beta}: expected a value in [0, 1]")
    format_prompt(args.prompt_template, "")
    default = controller_from_spec(args.controller, args.beta, args.delta)  # manifest Δ/feature checks: one line
    served = _factory(args.controller, default, args.delta)
    upstream_key = args.upstream_api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
    backend = OpenAIBackend(args.model, args.upstream, upstream_key, Sampling(args.temperature, args.top_p),
                            timeout=args.timeout, retries=args.retries, concurrency=args.concurrency)
    settings = Settings(n=args.n, delta=args.delta, max_tokens=args.max_tokens,
                        probe=Probe(args.probe_cue, args.probe_tokens), max_live=args.max_live,
                        max_queue=args.max_queue)
    scheduler = Scheduler(backend, {args.controller: served}, settings)
    renderer = ChatRenderer(args.prompt_template, args.tokenizer, args.upstream, args.model, upstream_key, args.timeout)
    config = ServeConfig(model=args.model, default_controller=args.controller, beta=args.beta, seed=args.seed,
                         shuffle_seed=args.shuffle_seed, request_timeout=args.request_timeout,
                         api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
                         max_body_bytes=args.max_body_bytes,
                         resolve_controller=lambda spec: _factory(spec, controller_from_spec(spec, args.beta,
                                                                                             args.delta), args.delta))
    return create_app(scheduler, renderer, config)


def _factory(spec: str, controller, delta: int):
    """beta -> controller: exported controllers and β-free baselines share one instance (one batched call);
    a baseline whose knob is β is built per β."""
    from pathlib import Path

    from autotts.executor.controllers import BETA_KNOB, controller_from_spec

    name = spec.partition(":")[0].lower()
    if Path(spec).is_dir() or name not in BETA_KNOB or ":" in spec:
        return lambda beta: controller
    return lambda beta: controller_from_spec(spec, beta, delta)


def main(args: argparse.Namespace) -> int:
    import logging
    import signal

    import uvicorn

    app = build(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("httpx", "httpx2", "openai"):  # one line per upstream call otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(f"autotts serve: {args.controller} over {args.upstream} as '{args.model}' on http://{args.host}:{args.port}/v1",
          flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):  # uvicorn re-raises the signal once drained: then exit 0
        signal.signal(sig, lambda *_: None)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=None)
    print("autotts serve: drained, exiting", flush=True)
    return 0
