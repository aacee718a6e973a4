"""Command-line options shared by `autotts collect` and `autotts run`: backend, sampling, intervals, probes.

Both commands build their `IntervalReader` here, so a store collected with
some options and an online run with the same options read branches alike.
"""

from __future__ import annotations

import argparse
import os

from autotts.errors import AutottsError
from autotts.executor.backends.base import Backend, Sampling
from autotts.executor.intervals import DEFAULT_CUE, IntervalReader, Probe

BACKENDS = ("transformers", "openai")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--backend", choices=BACKENDS, default="transformers", help="LLM backend (default: transformers)")
    g.add_argument("--model", required=True, help="local model directory / hub name, or the served model name")
    g.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: server URL (default: %(default)s)")
    g.add_argument("--api-key", default=None, help="openai: API key (default: $OPENAI_API_KEY or 'EMPTY')")
    g.add_argument("--timeout", type=float, default=120.0, help="openai: seconds per request (default: %(default)s)")
    g.add_argument("--retries", type=int, default=3, help="openai: retries with backoff (default: %(default)s)")
    g.add_argument("--concurrency", type=int, default=16, help="openai: parallel requests (default: %(default)s)")
    g.add_argument("--device", default="cpu", help="transformers: torch device (default: %(default)s)")
    g.add_argument("--dtype", default="auto", help="transformers: auto, float64, float32, bfloat16, float16")
    g.add_argument("--batch-size", type=int, default=64,
                   help="transformers: branches per forward (default: %(default)s)")
    g.add_argument("--threads", type=int, default=None, help="transformers: torch CPU threads (default: torch's)")
    g.add_argument("--no-prefix-reuse", action="store_true", help="transformers: re-encode prefixes every interval")
    add_sampling_arguments(parser.add_argument_group("sampling and intervals"))


def add_sampling_arguments(group: argparse._ArgumentGroup) -> None:
    """What a branch contains: sampling, intervals, prompt and probe (`collect`, `run` and `serve` alike)."""
    group.add_argument("--temperature", type=float, default=1.0,
                       help="branch sampling temperature (default: %(default)s)")
    group.add_argument("--top-p", type=float, default=1.0, help="branch nucleus sampling (default: %(default)s)")
    group.add_argument("--seed", type=int, default=0, help="base seed of the per-branch seeds (default: %(default)s)")
    group.add_argument("--delta", type=int, default=500, help="interval Δ in tokens (default: %(default)s)")
    group.add_argument("--max-tokens", type=int, default=32768, help="token cap per branch (default: %(default)s)")
    group.add_argument("--prompt-template", default="{question}",
                       help="prompt text; {question} is replaced by the question (default: %(default)r)")
    group.add_argument("--probe-cue", default=DEFAULT_CUE,
                       help="text appended to read an answer (default: %(default)r)")
    group.add_argument("--probe-tokens", type=int, default=16,
                       help="greedy tokens a probe decodes (default: %(default)s)")


def backend_from_args(args: argparse.Namespace) -> Backend:
    sampling = Sampling(temperature=args.temperature, top_p=args.top_p)
    if args.backend == "openai":
        from autotts.executor.backends.openai_backend import OpenAIBackend

        key = args.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        return OpenAIBackend(args.model, args.base_url, key, sampling, timeout=args.timeout, retries=args.retries,
                             concurrency=args.concurrency)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from autotts.executor.backends.transformers_backend import TransformersBackend

    return TransformersBackend(args.model, sampling, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                               reuse_prefix=not args.no_prefix_reuse)


def reader_from_args(args: argparse.Namespace) -> IntervalReader:
    """Check the options first (loading a model is slow), then build the backend and the reader."""
    for flag in ("delta", "max_tokens", "probe_tokens"):
        if getattr(args, flag) <= 0:
            raise AutottsError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: expected a positive integer")
    format_prompt(args.prompt_template, "")
    probe = Probe(args.probe_cue, args.probe_tokens)
    return IntervalReader(backend_from_args(args), args.delta, args.max_tokens, probe)


def format_prompt(template: str, question: str) -> str:
    """The prompt of a question: `template` with ``{question}`` replaced (other braces are left alone)."""
    if "{question}" not in template:
        raise AutottsError(f"--prompt-template {template!r}: expected a '{{question}}' placeholder")
    return template.replace("{question}", question)


def generation_config(args: argparse.Namespace) -> dict:
    """The options that fix what a branch contains (a resumed collection must use the same)."""
    return {"backend": args.backend, "model": args.model, "temperature": args.temperature, "top_p": args.top_p,
            "seed": args.seed, "delta": args.delta, "max_tokens": args.max_tokens,
            "prompt_template": args.prompt_template, "probe_cue": args.probe_cue, "probe_tokens": args.probe_tokens}
