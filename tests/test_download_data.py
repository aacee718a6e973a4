"""scripts/download_data.py against a real HTTP server on 127.0.0.1 serving synthetic stores."""

from __future__ import annotations

import gzip
import importlib.util
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autotts.store import load_store, to_records
from autotts.store.autotts_json import write_records
from autotts.store.synthetic import synthetic_store

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "download_data.py"


def _script():
    spec = importlib.util.spec_from_file_location("download_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture()
def served(tmp_path):
    """An upstream-like folder on a local HTTP server: plain JSON, pre-gzipped JSON and a broken file."""
    upstream = tmp_path / "upstream"
    stores = {("ModelA", "aime24"): synthetic_store(questions=3, branches=8, seed=1),
              ("ModelB", "aime24"): synthetic_store(questions=2, branches=4, seed=2)}
    for (model, dataset), store in stores.items():
        (upstream / model).mkdir(parents=True)
        write_records(to_records(store), upstream / model / f"{dataset}.json")
    gz = upstream / "ModelB" / "aime24.json.gz"  # serve gzip bytes under the .json name
    write_records(to_records(stores[("ModelB", "aime24")]), gz)
    gz.replace(upstream / "ModelB" / "aime24.json")
    (upstream / "ModelA" / "broken.json").write_text('[{"gold_answer": ')
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(upstream)))
    thread = threading.Thread(target=partial(server.serve_forever, poll_interval=0.05), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", stores
    server.shutdown()
    server.server_close()


def test_fetches_gzips_and_validates(served, tmp_path, capsys):
    url, stores = served
    root = tmp_path / "data"
    rc = _script().main(["--base-url", url, "--root", str(root), "--models", "ModelA", "ModelB",
                         "--datasets", "aime24"])
    assert rc == 0
    for (model, dataset), store in stores.items():
        path = root / model / f"{dataset}.json.gz"
        assert path.read_bytes()[:2] == b"\x1f\x8b"
        gzip.decompress(path.read_bytes())  # one gzip layer, not two
        assert load_store(path).fingerprint == store.fingerprint
    assert capsys.readouterr().out.count("fetched ") == 2
    rc = _script().main(["--base-url", url, "--root", str(root), "--models", "ModelA", "--datasets", "aime24"])
    assert rc == 0 and capsys.readouterr().out.startswith("have ")


def test_root_defaults_to_autotts_data(served, tmp_path, monkeypatch):
    url, stores = served
    monkeypatch.setenv("AUTOTTS_DATA", str(tmp_path / "env-root"))
    assert _script().main(["--base-url", url, "--models", "ModelA", "--datasets", "aime24"]) == 0
    assert (tmp_path / "env-root" / "ModelA" / "aime24.json.gz").is_file()


@pytest.mark.parametrize("dataset,words", [("missing", "HTTP 404"), ("broken", "is not a valid AutoTTS store")])
def test_bad_upstream_file_is_one_line_and_leaves_nothing(served, tmp_path, capsys, dataset, words):
    url, _ = served
    root = tmp_path / "data"
    rc = _script().main(["--base-url", url, "--root", str(root), "--models", "ModelA", "--datasets", dataset])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"{url}ModelA/{dataset}.json" in err and words in err
    assert not list(root.rglob("*.json.gz*"))


def test_unreachable_server_exits_2_with_one_line():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--base-url", "http://127.0.0.1:9/", "--root", "unused",
                           "--models", "Qwen3-4B", "--datasets", "aime24", "--timeout", "5"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "http://127.0.0.1:9/Qwen3-4B/aime24.json" in lines[0] and "--base-url" in lines[0]
    assert "by hand" in lines[0] and "Traceback" not in proc.stderr
