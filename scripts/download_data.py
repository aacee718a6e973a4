"""Fetch the public AutoTTS replay stores into ``<root>/<model>/<dataset>.json.gz``.

The stores are the replay files of the reference implementation of "LLMs
Improving LLMs: Agentic Discovery for Test-Time Scaling" (arXiv 2605.08083),
kept in its GitHub repository as ``test_environment/<model>/<dataset>.json``.
Each file is validated (`autotts.store.autotts_json.read_records`) before it is
written, and gzipped if it came as plain JSON.

    python scripts/download_data.py [--root DIR] [--base-url URL] [--models ...] [--datasets ...]

``--base-url`` points at any folder laid out like ``test_environment/`` (a
mirror, a local ``http.server``). The default below is the upstream raw-file
root as this project knows it; it could not be checked from the project's
machines (they have no network), so pass ``--base-url`` if it has moved.
On any failure the script prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from autotts.errors import AutottsError
from autotts.store.autotts_json import read_records

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/AutoTTS/AutoTTS/main/test_environment"
MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
DATASETS = ("aime24", "aime25")


class FetchError(AutottsError):
    """A file that could not be fetched or is not a valid store."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Path(args.root or os.environ.get("AUTOTTS_DATA") or "data/autotts")
    try:
        for model in args.models:
            for dataset in args.datasets:
                print(fetch_store(args.base_url, root, model, dataset, args.force, args.timeout))
    except AutottsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", help="data root (default: $AUTOTTS_DATA, else ./data/autotts)")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"folder with <model>/<dataset>.json (default {DEFAULT_BASE_URL})")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), help="e.g. aime24 aime25 hmmt25")
    p.add_argument("--force", action="store_true", help="fetch again even if the file exists")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    return p


def fetch_store(base_url: str, root: Path, model: str, dataset: str, force: bool = False,
                timeout: float = 30.0) -> str:
    """Fetch, validate and store one file; returns a one-line report."""
    dest = root / model / f"{dataset}.json.gz"
    if dest.is_file() and not force:
        return f"have {dest}"
    url = f"{base_url.rstrip('/')}/{model}/{dataset}.json"
    body = _get(url, timeout, f"download test_environment/{model}/{dataset}.json from the AutoTTS GitHub "
                              f"repository by hand into {dest.parent}/ (gzip optional), or pass --base-url "
                              "pointing at a reachable copy")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, suffix=".json.gz.part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body if body[:2] == b"\x1f\x8b" else gzip.compress(body, mtime=0))
        try:
            questions = len(read_records(tmp))
        except AutottsError as err:
            raise FetchError(f"{url} is not a valid AutoTTS store: {str(err).split(': ', 1)[-1]}") from None
        tmp.chmod(0o644)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return f"fetched {url} -> {dest} ({questions} questions)"


def _get(url: str, timeout: float, hint: str) -> bytes:
    """The body of `url`; any failure becomes one line: the URL, why, and the `hint` of what to do instead."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as err:
        why = f"HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        why = str(err.reason)
    except (OSError, ValueError) as err:  # timeouts, resets, a malformed URL
        why = str(err) or type(err).__name__
    raise FetchError(f"cannot fetch {url} ({why}); {hint}")


if __name__ == "__main__":
    sys.exit(main())
