"""scripts/download_data.py against a real HTTP server on 127.0.0.1 serving the upstream layout.

The served folder is built from the public stores (``$AUTOTTS_DATA``, decompressed: upstream keeps
plain JSON), plus a corrupted copy, a cut-off transfer and missing files. The server honours
``Range`` (as GitHub's raw host does), can cut a body short once, and can ignore ``Range``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from script_support import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "download_data.py"
DATA = os.environ.get("AUTOTTS_DATA")
pytestmark = pytest.mark.skipif(not DATA, reason="needs the public stores (AUTOTTS_DATA)")
PAIRS = [("Qwen3-4B", "aime24"), ("Qwen3-8B", "aime25")]


class Upstream:
    """A folder served over HTTP/1.1 with Range support; `cut` paths lose the end of their body once."""

    def __init__(self, folder: Path):
        self.folder, self.cut, self.ignore_range = folder, set(), False
        self.ranges: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=partial(self.server.serve_forever, poll_interval=0.05), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                path = upstream.folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                body, start = path.read_bytes(), 0
                asked = self.headers.get("Range")
                if asked and not upstream.ignore_range:
                    upstream.ranges.append(asked)
                    start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
                    if start >= len(body):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.path in upstream.cut:  # announce the whole body, send a third, hang up
                    upstream.cut.discard(self.path)
                    self.wfile.write(body[start:start + len(body) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args) -> None:
                pass

        return Handler

    def __enter__(self) -> "Upstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def upstream(tmp_path):
    folder = tmp_path / "test_environment"
    for model, dataset in PAIRS + [("Qwen3-0.6B", "aime24")]:
        (folder / model).mkdir(parents=True, exist_ok=True)
        (folder / model / f"{dataset}.json").write_bytes(_shared(model, dataset))
    corrupt = bytearray(_shared("Qwen3-0.6B", "aime24"))
    corrupt[1000] ^= 1  # one flipped bit: still valid JSON, wrong sum
    (folder / "Qwen3-0.6B" / "aime24.json").write_bytes(bytes(corrupt))
    hmmt = (folder / "Qwen3-4B" / "hmmt25.json")
    hmmt.write_bytes(_shared("Qwen3-4B", "aime25"))  # stands in for HMMT25: any valid store
    with Upstream(folder) as server:
        yield server


def _shared(model: str, dataset: str) -> bytes:
    return gzip.decompress((Path(DATA) / model / f"{dataset}.json.gz").read_bytes())


def _run(server: Upstream, root: Path, models: list[str], datasets: list[str], capsys) -> tuple[int, str, str]:
    rc = load_script("download_data").main(["--base-url", server.url, "--root", str(root), "--models", *models,
                                            "--datasets", *datasets, "--timeout", "10"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_recorded_sums_are_those_of_the_shared_stores() -> None:
    script = load_script("download_data")
    assert sorted(script.SHA256) == sorted((m, d) for m in script.MODELS for d in script.DATASETS)
    for (model, dataset), digest in script.SHA256.items():
        assert hashlib.sha256(_shared(model, dataset)).hexdigest() == digest
    assert script.DEFAULT_BASE_URL == ("https://raw.githubusercontent.com/zhengkid/AutoTTS/main/"
                                       "efficient_reasoning_controller/test_environment")
    assert "hmmt25" in script.KNOWN_DATASETS and not any(d == "hmmt25" for _, d in script.SHA256)


def test_fetches_verifies_gzips_and_skips_what_it_has(upstream, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    rc, out, err = _run(upstream, root, ["Qwen3-4B", "Qwen3-8B"], ["aime24", "aime25"], capsys)
    # Qwen3-4B/aime25 and Qwen3-8B/aime24 are not served: one line each, the others still arrive
    assert rc == 2 and out.count("(sha256 verified)") == 2
    lines = err.splitlines()
    assert len(lines) == 2 and all("HTTP 404" in line for line in lines)
    assert lines[0].startswith("error: Qwen3-4B/aime25: cannot fetch ") and "Qwen3-8B/aime24" in lines[1]
    for model, dataset in PAIRS:
        path = root / model / f"{dataset}.json.gz"
        assert gzip.decompress(path.read_bytes()) == _shared(model, dataset)  # one gzip layer, the exact bytes
    assert not list(root.rglob("*.part")) and not list(root.rglob("*.tmp"))
    rc, out, err = _run(upstream, root, ["Qwen3-4B"], ["aime24"], capsys)
    assert rc == 0 and out.startswith("have ") and "(sha256 verified)" in out and err == ""


def test_a_checksum_mismatch_is_one_line_and_leaves_nothing(upstream, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    rc, out, err = _run(upstream, root, ["Qwen3-0.6B"], ["aime24"], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "checksum mismatch" in err and "Qwen3-0.6B/aime24.json" in err
    assert not list(root.rglob("*.json*"))


def test_an_interrupted_transfer_resumes_from_its_part_file(upstream, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    upstream.cut.add("/Qwen3-8B/aime25.json")
    rc, out, err = _run(upstream, root, ["Qwen3-8B"], ["aime25"], capsys)
    part = root / "Qwen3-8B" / "aime25.json.part"
    size = len(_shared("Qwen3-8B", "aime25"))
    assert rc == 2 and err.count("\n") == 1 and "run again to resume" in err
    assert part.stat().st_size == size // 3 and not (root / "Qwen3-8B" / "aime25.json.gz").exists()
    rc, out, err = _run(upstream, root, ["Qwen3-8B"], ["aime25"], capsys)
    assert rc == 0 and "(sha256 verified)" in out and err == ""
    assert upstream.ranges == [f"bytes={size // 3}-"] and not part.exists()
    assert gzip.decompress((root / "Qwen3-8B" / "aime25.json.gz").read_bytes()) == _shared("Qwen3-8B", "aime25")


def test_a_server_that_ignores_range_restarts_the_file_cleanly(upstream, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    part = root / "Qwen3-4B" / "aime24.json.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from some other file")
    upstream.ignore_range = True
    rc, out, err = _run(upstream, root, ["Qwen3-4B"], ["aime24"], capsys)
    assert rc == 0 and "(sha256 verified)" in out and not part.exists()
    assert gzip.decompress((root / "Qwen3-4B" / "aime24.json.gz").read_bytes()) == _shared("Qwen3-4B", "aime24")


def test_a_stale_part_that_resumes_into_a_wrong_file_restarts_once(upstream, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    body = _shared("Qwen3-4B", "aime24")
    part = root / "Qwen3-4B" / "aime24.json.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"X" * 100)  # wrong first 100 bytes: the resumed file fails its sum
    rc, out, err = _run(upstream, root, ["Qwen3-4B"], ["aime24"], capsys)
    assert rc == 0 and "(sha256 verified)" in out and err == ""
    assert upstream.ranges == ["bytes=100-"]
    assert gzip.decompress((root / "Qwen3-4B" / "aime24.json.gz").read_bytes()) == body


def test_hmmt25_downloads_on_request_with_a_warning_that_it_is_unverified(upstream, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    rc, out, err = _run(upstream, root, ["Qwen3-4B"], ["hmmt25"], capsys)
    assert rc == 0 and "(unverified)" in out
    assert err.count("\n") == 1 and err.startswith("warning: Qwen3-4B/hmmt25: no recorded SHA-256")
    assert (root / "Qwen3-4B" / "hmmt25.json.gz").is_file()
    rc, out, err = _run(upstream, root, ["Qwen3-4B"], ["hmmt25"], capsys)
    assert rc == 0 and out.startswith("have ") and "unverified" in out


def test_unreachable_server_exits_2_with_one_line_and_no_traceback(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--base-url", "http://127.0.0.1:9/", "--root",
                           str(tmp_path / "unused"), "--models", "Qwen3-4B", "--datasets", "aime24", "--timeout", "5"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "http://127.0.0.1:9/Qwen3-4B/aime24.json" in lines[0] and "--base-url" in lines[0]
