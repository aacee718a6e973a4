"""Fetch the public AutoTTS replay stores into ``<root>/<model>/<dataset>.json.gz``, verified by SHA-256.

The stores are the replay files of the reference implementation of "LLMs
Improving LLMs: Agentic Discovery for Test-Time Scaling", kept in the GitHub
repository ``zhengkid/AutoTTS`` (branch ``main``) as plain JSON at
``efficient_reasoning_controller/test_environment/<model>/<dataset>.json``.

    python scripts/download_data.py [--root DIR] [--models ...] [--datasets aime24 aime25 hmmt25] [--base-url URL]

Each AIME file is checked against the SHA-256 of its JSON recorded below (taken from
the stores this project was built and tested with); HMMT25 has no recorded sum, so it
is downloaded on request (``--datasets hmmt25``) with a warning that it is unverified.
Every file is also validated as a store (`autotts.store.autotts_json.read_records`),
then written gzipped. Verified files already there are skipped; a transfer that
breaks off stays in ``<dataset>.json.part`` and the next run resumes it (HTTP Range)
or, if the server does not resume, starts it again. Each failure (network, checksum,
invalid store) is one line on stderr; the other files still download, and the exit
status is 2 if any failed. ``--base-url`` points at any folder laid out like
``test_environment/`` (a mirror, a local ``http.server``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from autotts.errors import AutottsError
from autotts.store.autotts_json import read_records

DEFAULT_BASE_URL = ("https://raw.githubusercontent.com/zhengkid/AutoTTS/main/"
                    "efficient_reasoning_controller/test_environment")
MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
DATASETS = ("aime24", "aime25")          # fetched by default
KNOWN_DATASETS = DATASETS + ("hmmt25",)  # hmmt25 on request, unverified
CHUNK = 1 << 16

# SHA-256 of the decompressed JSON of ../shared/data/autotts/<model>/<dataset>.json.gz (upstream's
# <model>/<dataset>.json byte for byte). HMMT25 was never part of that data: no sum is recorded for it.
SHA256 = {
    ("Qwen3-0.6B", "aime24"): "6b4297405b494c84afb05b337af315c617513eb2580ed327ca7040b760988a7d",
    ("Qwen3-0.6B", "aime25"): "33f65695ecc78fb777f53bead2128ba1249772b3608c6a22bd4e674488d453e0",
    ("Qwen3-1.7B", "aime24"): "5d6c9a63e26c7cf60181c53b67adc7017db146bf2ff1e3b9784673cb97313ad1",
    ("Qwen3-1.7B", "aime25"): "77bfb8e8589d0c0da3ccb6d5852c37bf23273e047664a5086d492896a5ae2496",
    ("Qwen3-4B", "aime24"): "d99ce8711c60605b7555a7fc6e66cc5ae0abe7ce6b36bf4e712802d26aa7ffdd",
    ("Qwen3-4B", "aime25"): "977f56022b0cd225bd0233aff1f7b39740c45ec79693475ada8c766ee4097a3f",
    ("Qwen3-8B", "aime24"): "be725bdacc64712088d5c947b9b869471ad659c8465c3e5b6e9ff5191bfd0128",
    ("Qwen3-8B", "aime25"): "969bba7bb0276f66d421d069e078e20a9b3ff4a59977393a2733a97ca6e4566c",
}


class FetchError(AutottsError):
    """A file that could not be fetched, does not match its recorded sum, or is not a valid store."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Path(args.root or os.environ.get("AUTOTTS_DATA") or "data/autotts")
    failed = 0
    for model in args.models:
        for dataset in args.datasets:
            try:
                print(fetch_store(args.base_url, root, model, dataset, args.force, args.timeout), flush=True)
            except AutottsError as err:
                print(f"error: {model}/{dataset}: {err}", file=sys.stderr, flush=True)
                failed += 1
    return 2 if failed else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", help="data root (default: $AUTOTTS_DATA, else ./data/autotts)")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL,
                   help=f"folder with <model>/<dataset>.json (default {DEFAULT_BASE_URL})")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS),
                   help=f"default {' '.join(DATASETS)}; also hmmt25 (no recorded checksum: unverified)")
    p.add_argument("--force", action="store_true", help="fetch again even if a verified file is there")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    return p


def fetch_store(base_url: str, root: Path, model: str, dataset: str, force: bool = False,
                timeout: float = 30.0) -> str:
    """Fetch, verify, validate and store one file; returns a one-line report (raises `FetchError`)."""
    dest = root / model / f"{dataset}.json.gz"
    expected = SHA256.get((model, dataset))
    if dest.is_file() and not force:
        have = _have(dest, expected)
        if have:
            return have
    url = f"{base_url.rstrip('/')}/{model}/{dataset}.json"
    part = root / model / f"{dataset}.json.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    resumed = _download(url, part, timeout)
    body = _json_bytes(part.read_bytes(), url)
    digest = hashlib.sha256(body).hexdigest()
    if expected is not None and digest != expected:
        part.unlink()
        if resumed:  # the kept part may not belong to this file: one clean restart
            return fetch_store(base_url, root, model, dataset, True, timeout)
        raise FetchError(f"checksum mismatch for {url}: sha256 {digest[:16]}..., expected {expected[:16]}... "
                         "(file changed upstream or corrupted in transfer)")
    try:
        _write_store(body, dest, url)
    finally:
        part.unlink()
    if expected is None:
        print(f"warning: {model}/{dataset}: no recorded SHA-256 for this file, downloaded unverified "
              f"(sha256 {digest})", file=sys.stderr, flush=True)
        return f"fetched {url} -> {dest} (unverified)"
    return f"fetched {url} -> {dest} (sha256 verified)"


def _have(dest: Path, expected: str | None) -> str | None:
    """A report if `dest` is already good (its sum matches, or it is a valid store where no sum exists)."""
    try:
        body = gzip.decompress(dest.read_bytes())
    except (OSError, EOFError, zlib.error):
        return None
    if expected is not None:
        return f"have {dest} (sha256 verified)" if hashlib.sha256(body).hexdigest() == expected else None
    try:
        read_records(dest)
    except AutottsError:
        return None
    return f"have {dest} (unverified: no recorded sum)"


def _download(url: str, part: Path, timeout: float) -> bool:
    """Bring `part` to the whole body of `url`, resuming from what it holds; True if it resumed."""
    start = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resumed = start > 0 and resp.status == 206
            total = _total(resp, start if resumed else 0)
            with open(part, "ab" if resumed else "wb") as fh:
                while chunk := resp.read(CHUNK):
                    fh.write(chunk)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # nothing left to send: the part is already whole
            return True
        raise FetchError(f"cannot fetch {url} (HTTP {err.code} {err.reason}); {_hint(part)}") from None
    except urllib.error.URLError as err:
        raise FetchError(f"cannot fetch {url} ({err.reason}); {_hint(part)}") from None
    except (OSError, ValueError, http.client.HTTPException) as err:  # timeouts, resets, cut-off bodies
        raise FetchError(f"cannot fetch {url} ({type(err).__name__}: {err}); {_kept(part)}") from None
    if total is not None and part.stat().st_size < total:
        raise FetchError(f"cannot fetch {url} (transfer broke off at {part.stat().st_size} of {total} bytes); "
                         f"{_kept(part)}")
    return resumed


def _total(resp, offset: int) -> int | None:
    length = resp.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _kept(part: Path) -> str:
    size = part.stat().st_size if part.is_file() else 0
    return f"kept {size} bytes in {part}; run again to resume"


def _hint(part: Path) -> str:
    return (f"download it by hand into {part.parent}/ (gzip optional), or pass --base-url pointing at a "
            "reachable copy")


def _json_bytes(raw: bytes, url: str) -> bytes:
    """The JSON text of a download (mirrors may serve it gzipped)."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise FetchError(f"{url}: corrupt gzip stream ({err})") from None


def _write_store(body: bytes, dest: Path, url: str) -> None:
    """Validate `body` as a store, then write it gzipped, atomically."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        tmp.write_bytes(gzip.compress(body, mtime=0))
        try:
            read_records(tmp)
        except AutottsError as err:
            raise FetchError(f"{url} is not a valid AutoTTS store: {str(err).split(': ', 1)[-1]}") from None
        tmp.chmod(0o644)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
