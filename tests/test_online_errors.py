"""Bad input gives one line naming the cause; an interrupted collection loses nothing it finished."""

from __future__ import annotations

import json
import socket

import pytest
from online_support import CompletionServer, write_questions

from autotts.artifact.manifest import feature_names
from autotts.cli import build_parser
from autotts.cli import main as cli
from autotts.collect.collector import collect
from autotts.collect.partial import PartialStore
from autotts.collect.questions import read_questions
from autotts.controllers.features import BRANCH_FEATURES, POOL_FEATURES
from autotts.errors import AutottsError
from autotts.executor.backends.base import Sampling
from autotts.executor.backends.openai_backend import OpenAIBackend
from autotts.executor.options import generation_config, reader_from_args
from autotts.store.autotts_json import read_records

SMALL = ["--n", "4", "--delta", "16", "--max-tokens", "48"]


@pytest.fixture(scope="module")
def server(model_dir):
    with CompletionServer(model_dir) as srv:
        yield srv


@pytest.fixture
def questions(tmp_path):
    return write_questions(tmp_path / "questions.jsonl")


def _one_line_error(capsys, argv: list[str]) -> str:
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_and_writes_nothing(capsys, questions, tmp_path) -> None:
    out = tmp_path / "s.json"
    url = f"http://127.0.0.1:{_free_port()}/v1"
    err = _one_line_error(capsys, ["collect", "--backend", "openai", "--model", "m", "--base-url", url,
                                   "--questions", str(questions), "--out", str(out), "--retries", "0", "--quiet",
                                   *SMALL])
    assert url in err and "cannot connect" in err
    assert not out.exists() and not (tmp_path / "s.json.partial.jsonl").exists()


def test_timeout_is_retried_then_reported(server) -> None:
    client = OpenAIBackend("tiny", server.url, timeout=0.3, retries=1)
    server.mode, server.delay = "slow", 2.0
    try:
        with pytest.raises(AutottsError, match=r"no reply within 0.3s \(2 attempts"):
            client.extend(client.open("the sum", [1]), [8])
    finally:
        server.mode = "ok"


@pytest.mark.parametrize("mode, expected", [
    ("malformed", "malformed reply (expected a non-empty 'choices' list"),
    ("garbage", "malformed reply"),
    ("short", "malformed reply (15 tokens with finish_reason 'length' for max_tokens=16"),
])
def test_malformed_server_reply_is_one_line(server, mode: str, expected: str) -> None:
    client = OpenAIBackend("tiny", server.url, sampling=Sampling(temperature=0.0), retries=0)
    server.mode = mode
    try:
        with pytest.raises(AutottsError) as err:
            client.extend(client.open("Let us compute the value of x", [1]), [16])
    finally:
        server.mode = "ok"
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_http_error_status_is_reported(server) -> None:
    client = OpenAIBackend("tiny", server.url.replace("/v1", "/v2"), retries=0)
    with pytest.raises(AutottsError, match="HTTP 404"):
        client.extend(client.open("the sum", [1]), [4])


def test_bad_questions_line_via_cli(capsys, tmp_path, model_dir) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "a?", "gold_answer": "1"}\n{"question": "b?"}\n')
    err = _one_line_error(capsys, ["run", "--controller", "sc:2", "--model", str(model_dir), "--questions", str(path),
                                   *SMALL])
    assert f"{path}:2: expected 'gold_answer' (or 'answer')" in err


def _export_dir(tmp_path, manifest: dict | None):
    export = tmp_path / "export"
    export.mkdir()
    (export / "controller.pt").write_bytes(b"")
    if manifest is not None:
        (export / "manifest.json").write_text(json.dumps(manifest))
    return export


def _manifest(delta: int, features: list[str]) -> dict:
    n_pool, n_branch = len(POOL_FEATURES), len(BRANCH_FEATURES)
    return {"format": "autotts-controller-v1", "autotts_version": "0.1.0", "delta": delta, "slots": 32,
            "features": {"pool": features[:n_pool], "branch": features[n_pool:n_pool + n_branch],
                         "completed": features[n_pool + n_branch:]},
            "actions": {}, "beta_range": [0, 1], "guards": [], "training_stores": [], "validation_curve": []}


@pytest.mark.parametrize("case, expected", [
    ("missing", "manifest.json: missing manifest"),
    ("delta", "trained with delta=500 tokens but this run uses delta=16 (pass --delta 500)"),
    ("features", "feature names differ from this build's (feature 0: manifest has 'old_feature'"),
])
def test_exported_controller_manifest_problems_via_cli(capsys, tmp_path, questions, model_dir, case, expected) -> None:
    names = feature_names()
    manifest = {"missing": None, "delta": _manifest(500, names),
                "features": _manifest(16, ["old_feature"] + names[1:])}[case]
    export = _export_dir(tmp_path, manifest)
    err = _one_line_error(capsys, ["run", "--controller", str(export), "--model", str(model_dir),
                                   "--questions", str(questions), *SMALL])
    assert expected in err


def test_existing_store_is_not_overwritten(capsys, tmp_path, questions, model_dir) -> None:
    out = tmp_path / "s.json"
    out.write_text("[]")
    err = _one_line_error(capsys, ["collect", "--model", str(model_dir), "--questions", str(questions),
                                   "--out", str(out), *SMALL])
    assert "exists (pass --overwrite" in err and out.read_text() == "[]"


class FailOnQuestion:
    """A real backend that fails when asked to open branches for one prompt (a crash mid-collection)."""

    def __init__(self, inner, prompt: str | None):
        self.inner, self.prompt, self.opened = inner, prompt, []

    def open(self, prompt, seeds):
        if prompt == self.prompt:
            raise ConnectionError("server went away")
        self.opened.append(prompt)
        return self.inner.open(prompt, seeds)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_interrupted_collection_resumes_to_the_uninterrupted_store(tmp_path, questions, model_dir, capsys) -> None:
    argv = ["collect", "--model", str(model_dir), "--questions", str(questions), "--quiet", *SMALL]
    full = tmp_path / "full.json"
    assert cli(argv + ["--out", str(full)]) == 0

    out = tmp_path / "resumed.json"
    args = build_parser().parse_args(argv + ["--out", str(out)])
    qs = read_questions(questions)
    prompts = [q.text for q in qs]
    config = {**generation_config(args), "n": args.n}
    reader = reader_from_args(args)
    reader.backend = FailOnQuestion(reader.backend, prompts[1])
    with pytest.raises(ConnectionError):
        collect(reader, qs, prompts, args.n, args.seed, out, PartialStore(out, config, qs))
    partial = tmp_path / "resumed.json.partial.jsonl"
    kept = [json.loads(line) for line in partial.read_text().splitlines()]
    assert not out.exists() and [row.get("index") for row in kept[1:]] == [0]

    reader.backend = FailOnQuestion(reader.backend.inner, None)
    collect(reader, qs, prompts, args.n, args.seed, out, PartialStore(out, config, qs))
    assert reader.backend.opened == prompts[1:]  # question 1 was not generated again
    assert read_records(out) == read_records(full) and not partial.exists()


def test_resume_with_other_options_is_refused(tmp_path, questions, model_dir, capsys) -> None:
    out = tmp_path / "s.json"
    partial = tmp_path / "s.json.partial.jsonl"
    args = build_parser().parse_args(["collect", "--model", str(model_dir), "--questions", str(questions),
                                      "--out", str(out), *SMALL])
    partial.write_text(json.dumps({"config": {**generation_config(args), "n": args.n, "delta": 32}}) + "\n")
    err = _one_line_error(capsys, ["collect", "--model", str(model_dir), "--questions", str(questions),
                                   "--out", str(out), *SMALL])
    assert "collected with delta=32, this run asks delta=16" in err


class _ClosingServer:
    """Answers completions with keep-alive, but drops (no reply) a request that arrives on a connection idle for
    over a second: what a server's keep-alive close looks like when it crosses the client's next request."""

    REPLY = json.dumps({"id": "c", "object": "text_completion", "created": 0, "model": "tiny",
                        "choices": [{"index": 0, "text": "x", "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()

    def __init__(self) -> None:
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            conn, _ = self.sock.accept()
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        import time

        last, buf = time.monotonic(), b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                if time.monotonic() - last > 1.0:
                    return  # closed as the request arrived: the client sees a disconnect without a response
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(self.REPLY), self.REPLY))
                last = time.monotonic()


def test_an_idle_connection_is_not_reused_past_the_keepalive_expiry() -> None:
    """Below uvicorn's 5 s keep-alive: a request after 2.5 s idle opens a fresh connection, so no retry is needed."""
    import time

    from autotts.executor.backends.openai_backend import KEEPALIVE_EXPIRY_S

    server = _ClosingServer()
    client = OpenAIBackend("tiny", server.url, retries=0)
    assert client.count_tokens("a") == 3
    time.sleep(KEEPALIVE_EXPIRY_S + 0.5)
    assert client.count_tokens("b") == 3  # a reused connection would be dropped: "cannot connect" with no retries
    assert server.connections == 2
