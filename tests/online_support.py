"""Shared parts of the online tests: the tiny local model, a real OpenAI-compatible HTTP server, questions.

Not a test module (no ``test_`` prefix); the ``test_online_*`` modules import it.
The tiny model is built once per test session (cached in this module).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import torch
from script_support import load_script

QUESTIONS = [
    {"question": "What is the sum of 3 and 5 ?", "gold_answer": "12"},
    {"question": "Find the number of prime divisors of 1000 .", "answer": "2"},
    {"question": "A coin is tossed 3 times ; find the probability of 2 heads .", "gold_answer": "1"},
]
_BUILT: dict[str, Path] = {}


def tiny_model_dir(tmp_path_factory) -> Path:
    """Build the tiny model with scripts/make_tiny_model.py once per session."""
    if "dir" not in _BUILT:
        _BUILT["dir"] = load_script("make_tiny_model").make_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    return _BUILT["dir"]


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny-model forwards are dominated by thread sync on a shared 2-core box: run them on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_questions(path: Path, questions: list[dict] = QUESTIONS) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return path


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) in a daemon thread, used as a context manager.

    Subclasses give `_handler()`; `url` is the server's OpenAI-style base URL.
    """

    def _listen(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CompletionServer(LoopbackServer):
    """``POST /v1/completions`` served from a local model over real HTTP on 127.0.0.1.

    Each request is one fresh branch seeded with the request's seed (greedy at
    temperature 0); the reply's text continues the prompt and EOS counts as a
    completion token, as in vLLM. `mode` makes it misbehave for error tests:
    "slow" (sleeps `delay` s), "malformed" (JSON without choices), "garbage"
    (not JSON), "short" (claims fewer tokens than asked, without EOS).
    """

    def __init__(self, model_dir: Path):
        from autotts.executor.backends.transformers_backend import TransformersBackend

        self.backend = TransformersBackend(str(model_dir), batch_size=1)
        self.mode, self.delay, self.requests = "ok", 0.0, 0
        self._lock = threading.Lock()
        self._listen()

    def complete(self, body: dict) -> dict:
        from autotts.executor.backends.base import Sampling

        with self._lock, one_thread():
            self.requests += 1
            self.backend.sampling = Sampling(float(body.get("temperature", 1.0)), float(body.get("top_p", 1.0)))
            branch = self.backend.open(body["prompt"], [int(body.get("seed") or 0)])[0]
            self.backend.extend([branch], [int(body["max_tokens"])])
            text = self.backend.text(branch)
            n_prompt = self.backend.count_tokens(body["prompt"])
        tokens = branch.tokens - (1 if self.mode == "short" and branch.tokens > 1 and not branch.eos else 0)
        return {"id": f"cmpl-{self.requests}", "object": "text_completion", "created": 0, "model": body.get("model"),
                "choices": [{"index": 0, "text": text, "logprobs": None,
                             "finish_reason": "stop" if branch.eos else "length"}],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": tokens, "total_tokens": n_prompt + tokens}}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/") != "/v1/completions":
                    return self._send(404, b'{"error": {"message": "not found"}}')
                if server.mode == "slow":
                    time.sleep(server.delay)
                if server.mode == "malformed":
                    return self._send(200, b'{"object": "text_completion", "usage": {}}')
                if server.mode == "garbage":
                    return self._send(200, b"<html>gateway says hello</html>", "text/html")
                self._send(200, json.dumps(server.complete(body)).encode())

            def _send(self, code: int, payload: bytes, kind: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args) -> None:
                pass

        return Handler
