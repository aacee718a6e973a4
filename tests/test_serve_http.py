"""`autotts serve` over real HTTP in front of a real `transformers serve`, called with the official `openai` client.

Agreement with `autotts run`, the endpoints, security (401 before any upstream
call, 413, 400 naming the field, the upstream key never echoed), faults
(upstream 500, slow upstream, dropped connection, upstream killed mid-request,
client disconnect) each with its status and error line and no live branches
left, the 429 bound, SIGTERM draining, and the start-up manifest check.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from online_support import QUESTIONS, write_questions
from serve_support import (ROOT, FaultServer, Proxy, autotts_run, free_port, strip_trace, transformers_serve,
                           wait_healthy)

N, DELTA, MAX_TOKENS = 8, 16, 64
BRANCH = ["--n", str(N), "--delta", str(DELTA), "--max-tokens", str(MAX_TOKENS)]
SECRET = "sk-upstream-SECRET-4242"
CHAT_TEMPLATE_PROMPT = "{question} Let us compute"  # the tiny model's chat template around one user message


@pytest.fixture(scope="module")
def upstream(model_dir, tmp_path_factory):
    with transformers_serve(model_dir, tmp_path_factory.mktemp("ts") / "serve.log") as (url, name, _):
        yield url, name


@pytest.fixture(scope="module")
def faults(upstream):
    with FaultServer(upstream[0]) as f:
        yield f


@pytest.fixture(scope="module")
def proxy(upstream, faults, model_dir):
    argv = ["--controller", "pp:4", "--upstream", faults.url, "--model", upstream[1], "--tokenizer", str(model_dir),
            "--retries", "0", "--timeout", "2", "--upstream-api-key", SECRET, *BRANCH]
    with Proxy(argv) as p:
        yield p


@pytest.fixture(autouse=True)
def _healthy_faults(faults):
    faults.mode = "ok"
    yield
    faults.mode = "ok"


def client(p: Proxy, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=p.url, api_key=kw.pop("api_key", "unused"), max_retries=0, **kw)


def _no_live(p: Proxy) -> None:
    m = p.metrics()
    assert m["autotts_serve_live_branches"] == 0 and m["autotts_serve_live_requests"] == 0


def _switched_export(directory) -> str:
    """An export with a teacher switch whose β = 0.7 runs the policy at its β 0.54 (CMC below β = 0.25)."""
    from train_support import beta_switch_weights, export_weights

    from autotts.controllers.switch import BetaMap
    export = export_weights(beta_switch_weights(stop_above=0.8), directory, delta=DELTA)
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["beta_map"] = BetaMap((0.0, 0.5, 1.0), ("cmc", "policy", "policy"), (0.0, 0.3, 0.9)).record()
    (export / "manifest.json").write_text(json.dumps(manifest))
    return str(export)


def test_completions_and_chat_agree_with_autotts_run(proxy, upstream, tmp_path) -> None:
    questions = write_questions(tmp_path / "q.jsonl")
    c = client(proxy)
    for spec, chat in (("pp:4", False), ("esc:8", True), ("cmc", False)):
        template = CHAT_TEMPLATE_PROMPT if chat else "{question}"
        want = autotts_run(["--controller", spec, "--backend", "openai", "--base-url", upstream[0], "--model",
                            upstream[1], "--questions", str(questions), "--prompt-template", template,
                            "--beta", "0.7", *BRANCH])
        for q, w in zip(QUESTIONS, want):
            extra = {"autotts": {"controller": spec, "beta": 0.7}}
            if chat:
                r = c.chat.completions.create(model=upstream[1], seed=0, extra_body=extra,
                                              messages=[{"role": "user", "content": q["question"]}])
                content = r.choices[0].message.content
            else:
                r = c.completions.create(model=upstream[1], prompt=q["question"], seed=0, extra_body=extra)
                content = r.choices[0].text
            block = r.model_extra["autotts"]
            assert (block["answer"], block["tokens"], block["rounds"], block["tokens_by_branch"]) == \
                (w["answer"], w["tokens"], w["rounds"], w["branch_tokens"]), spec
            assert r.usage.completion_tokens == w["tokens"] == sum(block["tokens_by_branch"].values())
            assert block["branches"] == len(w["branch_tokens"]) and block["controller"] == spec
            assert 0 < block["sequential_tokens"] <= block["tokens"]
            assert w["answer"] is None or f"\\boxed{{{w['answer']}}}" in content
            trace = httpx.get(f"{proxy.url}/traces/{block['trace_id']}").json()
            assert strip_trace(trace["trace"]) == strip_trace(w["trace"])
            assert block["stopped_by"] == [t for t in w["trace"] if t["stop"]][-1]["stop_by"]
    models = c.models.list()
    assert [m.id for m in models.data] == [upstream[1]]
    assert httpx.get(f"{proxy.url[:-3]}/health").json()["status"] == "ok"
    _no_live(proxy)


def test_a_served_teacher_switch_answers_as_autotts_run(upstream, faults, model_dir, tmp_path) -> None:
    """An export with a β map behind `autotts serve`: per request, the program and β the map gives."""
    export = _switched_export(tmp_path / "sw")
    questions = write_questions(tmp_path / "q.jsonl")
    argv = ["--controller", export, "--upstream", faults.url, "--model", upstream[1], "--tokenizer", str(model_dir),
            "--retries", "0", "--timeout", "2", "--upstream-api-key", SECRET, *BRANCH]
    with Proxy(argv) as p:
        c = client(p)
        for beta in (0.1, 0.7):  # CMC(0.1); the policy at its β 0.54
            want = autotts_run(["--controller", export, "--backend", "openai", "--base-url", upstream[0], "--model",
                                upstream[1], "--questions", str(questions), "--prompt-template", "{question}",
                                "--beta", str(beta), *BRANCH])
            for q, w in zip(QUESTIONS, want):
                r = c.completions.create(model=upstream[1], prompt=q["question"], seed=0,
                                         extra_body={"autotts": {"beta": beta}})
                block = r.model_extra["autotts"]
                assert (block["answer"], block["tokens"], block["rounds"], block["tokens_by_branch"]) == \
                    (w["answer"], w["tokens"], w["rounds"], w["branch_tokens"]), beta
                stops = [t["stop_by"] for t in w["trace"] if t["stop"]]
                assert block["stopped_by"] == stops[-1] and stops[-1].startswith("cmc:") == (beta < 0.25)


def test_api_key_body_limit_and_schema_errors(upstream, faults, caplog) -> None:
    argv = ["--controller", "pp:4", "--upstream", faults.url, "--model", upstream[1], "--api-key", "client-key",
            "--upstream-api-key", SECRET, "--max-body-bytes", "2000", "--retries", "0", *BRANCH]
    with caplog.at_level(logging.INFO), Proxy(argv) as p:
        before = faults.requests
        with pytest.raises(openai.AuthenticationError) as err:
            client(p, api_key="wrong").completions.create(model=upstream[1], prompt="hi")
        assert err.value.status_code == 401 and faults.requests == before  # no upstream call
        assert httpx.get(f"{p.url}/models").status_code == 401
        c = client(p, api_key="client-key")
        with pytest.raises(openai.APIStatusError) as err:
            c.completions.create(model=upstream[1], prompt="x " * 2000)
        assert err.value.status_code == 413 and "larger than 2000 bytes" in err.value.message
        for body, field in (({"model": upstream[1]}, "prompt"),
                            ({"model": upstream[1], "prompt": "a", "autotts": {"beta": 2}}, "autotts.beta"),
                            ({"model": upstream[1], "prompt": "a", "autotts": {"betta": 1}}, "autotts.betta"),
                            ({"model": upstream[1], "prompt": "a", "stream": True}, "stream")):
            r = httpx.post(f"{p.url}/completions", json=body, headers={"Authorization": "Bearer client-key"})
            assert r.status_code == 400 and r.json()["error"]["param"] == field
            assert f"field '{field}'" in r.json()["error"]["message"]
        r = httpx.post(f"{p.url}/chat/completions", json={"model": "other", "messages": [{"role": "user",
                                                                                          "content": "a"}]},
                       headers={"Authorization": "Bearer client-key"})
        assert r.status_code == 404 and "not served here" in r.json()["error"]["message"]
        r = httpx.post(f"{p.url}/completions", headers={"Authorization": "Bearer client-key"},
                       json={"model": upstream[1], "prompt": "a", "autotts": {"controller": "nope:3"}})
        assert r.status_code == 400 and "unknown controller" in r.json()["error"]["message"]
        assert faults.requests == before  # none of these reached the upstream
        ok = c.completions.create(model=upstream[1], prompt=QUESTIONS[0]["question"])
        faults.mode = "500"
        bad = httpx.post(f"{p.url}/completions", headers={"Authorization": "Bearer client-key"},
                         json={"model": upstream[1], "prompt": "FAULT please"})
        seen = [ok.model_dump_json(), bad.text, p.metrics().__repr__(),
                httpx.get(f"{p.url}/traces/{ok.model_extra['autotts']['trace_id']}",
                          headers={"Authorization": "Bearer client-key"}).text, caplog.text]
    assert all(SECRET not in s for s in seen)
    # it was sent upstream only
    assert any({k.lower(): v for k, v in h.items()}.get("authorization") == f"Bearer {SECRET}" for h in faults.headers)


def _post(p: Proxy, prompt: str, out: dict, key: str, **extra) -> None:
    t0 = time.monotonic()
    try:
        r = httpx.post(f"{p.url}/completions", json={"model": p.app.state.model, "prompt": prompt, **extra},
                       timeout=60)
        out[key] = (r.status_code, r.json(), time.monotonic() - t0)
    except httpx.HTTPError as err:
        out[key] = (None, str(err), time.monotonic() - t0)


def test_upstream_500_fails_that_request_only(proxy, faults) -> None:
    faults.mode, out = "500", {}
    threads = [threading.Thread(target=_post, args=(proxy, q, out, k)) for k, q in
               (("bad", "FAULT " + QUESTIONS[0]["question"]), ("good", QUESTIONS[1]["question"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status, body, seconds = out["bad"]
    assert status == 502 and body["error"]["type"] == "upstream_error" and "HTTP 500" in body["error"]["message"]
    assert out["good"][0] == 200 and out["good"][1]["autotts"]["tokens"] > 0
    _no_live(proxy)
    print(f"fault 500: {status} in {seconds:.2f}s: {body['error']['message']}")


def test_slow_upstream_times_out_and_request_deadline_holds(proxy, faults) -> None:
    faults.mode, faults.delay, out = "slow", 4.0, {}
    _post(proxy, "FAULT slow", out, "upstream")  # the upstream call times out (--timeout 2, no retries)
    status, body, seconds = out["upstream"]
    assert status == 504 and "no reply within 2s" in body["error"]["message"] and seconds < 4.0
    _post(proxy, "FAULT slow", out, "deadline", autotts={"timeout": 1.0})  # the request's own deadline
    status, body, seconds = out["deadline"]
    assert status == 504 and "deadline of 1s" in body["error"]["message"] and seconds < 2.0
    _settle(proxy)
    _no_live(proxy)
    print(f"fault slow: 504 in {out['upstream'][2]:.2f}s ({out['upstream'][1]['error']['message']}); "
          f"deadline: 504 in {seconds:.2f}s")


def test_dropped_connection_is_a_502(proxy, faults) -> None:
    faults.mode, out = "drop", {}
    _post(proxy, "FAULT drop", out, "drop")
    status, body, seconds = out["drop"]
    assert status == 502 and "cannot connect" in body["error"]["message"]
    _no_live(proxy)
    print(f"fault drop: 502 in {seconds:.2f}s: {body['error']['message']}")


def test_a_client_that_disconnects_stops_its_branches(proxy, faults) -> None:
    faults.mode, faults.delay = "slow", 1.5
    before = proxy.metrics().get('autotts_serve_requests_total{outcome="cancelled"}', 0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{proxy.url}/completions", json={"model": proxy.app.state.model, "prompt": "FAULT gone",
                                                     "autotts": {"controller": "cmc", "beta": 1.0}}, timeout=0.5)
    _settle(proxy)
    calls = faults.faulted
    m = proxy.metrics()
    assert m['autotts_serve_requests_total{outcome="cancelled"}'] == before + 1
    _no_live(proxy)
    out: dict = {}
    _post(proxy, QUESTIONS[0]["question"], out, "after")  # a full request later: the gone one made no more calls
    assert out["after"][0] == 200 and faults.faulted == calls


def _wait_for(ready, what: str, seconds: float = 30) -> None:
    """Poll `ready()`; a test that waits must fail after `seconds`, never hang."""
    end = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < end, f"waited {seconds:g} s for {what}"
        time.sleep(0.02)


def test_a_full_queue_answers_429(upstream, faults) -> None:
    argv = ["--controller", "pp:4", "--upstream", faults.url, "--model", upstream[1], "--max-live", "1",
            "--max-queue", "1", "--retries", "0", "--timeout", "10", *BRANCH]
    faults.mode, faults.delay, out = "slow", 1.0, {}  # each request then outlasts the other's arrival
    with Proxy(argv) as p:
        threads = [threading.Thread(target=_post, args=(p, "FAULT slow " + str(i), out, i)) for i in range(2)]
        for t, gauge in zip(threads, ("live", "queued")):  # one at a time: the live slot first, then the queue
            t.start()
            _wait_for(lambda: p.metrics()[f"autotts_serve_{gauge}_requests"] >= 1 or out,
                      f"a slow request to be {gauge}")
            assert not out, f"a slow request ended before the queue filled: {out}"
        r = httpx.post(f"{p.url}/completions", json={"model": upstream[1], "prompt": "one more"})
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
        for t in threads:
            t.join()
        assert [out[i][0] for i in range(2)] == [200, 200]
        _no_live(p)


def test_upstream_killed_mid_request(model_dir, tmp_path) -> None:
    with transformers_serve(model_dir, tmp_path / "victim.log") as (url, name, proc):
        with Proxy(["--controller", "cmc", "--upstream", url, "--model", name, "--retries", "0",
                    "--beta", "1.0", "--n", "64", "--delta", "4", "--max-tokens", "1000"]) as p:
            out: dict = {}
            t = threading.Thread(target=_post, args=(p, QUESTIONS[0]["question"], out, "k"))
            t.start()
            _wait_for(lambda: p.metrics()["autotts_serve_scheduler_rounds_total"] >= 1, "a first round")
            os.killpg(proc.pid, signal.SIGKILL)
            t.join(60)
            status, body, seconds = out["k"]
            assert status == 502 and "cannot connect" in body["error"]["message"]
            _no_live(p)
            assert p.metrics()["autotts_serve_upstream_errors_total"] == 1
            print(f"fault killed: 502 in {seconds:.2f}s: {body['error']['message']}")


def test_sigterm_drains_in_flight_requests_then_exits(upstream, faults, tmp_path) -> None:
    port = free_port()
    log = tmp_path / "proxy.log"
    cmd = [sys.executable, "-m", "autotts.cli", "serve", "--controller", "pp:4", "--upstream", faults.url,
           "--model", upstream[1], "--port", str(port), "--timeout", "10", *BRANCH]
    faults.mode, faults.delay = "slow", 1.0
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc, 60, log)
        out: dict = {}
        t = threading.Thread(target=lambda: out.update(r=httpx.post(
            f"http://127.0.0.1:{port}/v1/completions", json={"model": upstream[1], "prompt": "FAULT drain"},
            timeout=60)))
        t.start()
        _wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/health").json()["live_requests"] >= 1,
                  "the request to go live")
        proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert out["r"].status_code == 200 and out["r"].json()["autotts"]["tokens"] > 0
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_controller_whose_manifest_does_not_fit_is_refused_at_start_up(tmp_path) -> None:
    from train_support import export_weights

    from autotts.controllers.policy import PolicyShape, initial_weights

    export = export_weights(initial_weights(PolicyShape(), seed=3, scale=0.5), tmp_path / "export", delta=400)
    out = subprocess.run([sys.executable, "-m", "autotts.cli", "serve", "--controller", str(export), "--upstream",
                          "http://127.0.0.1:9/v1", "--model", "m", "--delta", "16"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "trained with delta=400 tokens but this run uses delta=16" in out.stderr
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["features"]["pool"][0] = "renamed"
    (export / "manifest.json").write_text(json.dumps(manifest))
    out = subprocess.run([sys.executable, "-m", "autotts.cli", "serve", "--controller", str(export), "--upstream",
                          "http://127.0.0.1:9/v1", "--model", "m", "--delta", "400"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 2 and "feature names differ" in out.stderr and out.stderr.count("\n") == 1


def _settle(p: Proxy, timeout: float = 30.0) -> None:
    """Wait until the scheduler has retired every request (it does so at its next round)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.metrics()["autotts_serve_live_requests"] == 0:
            return
        time.sleep(0.05)
