"""Load stores from any supported path or name, and save the compact format.

Compact format (``.pt``): int32 (int64 where values need it) tensors + vocabularies in one ``torch.save``
file with a format tag; it loads in milliseconds (no JSON parsing).
Names resolve against ``AUTOTTS_DATA``: ``<root>/<model>/<dataset>.json[.gz]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from autotts.errors import AutottsError, StoreError
from autotts.store.autotts_json import read_records
from autotts.store.compact_check import checked_payload
from autotts.store.replay_store import TENSOR_FIELDS, ReplayStore, build_store

COMPACT_FORMAT = "autotts-store-v1"
DATA_ENV = "AUTOTTS_DATA"
SUFFIXES = (".json.gz", ".json", ".pt")


def load_store(spec: str | Path) -> ReplayStore:
    """Load a store from a path (.json, .json.gz, .pt), a ``model/dataset`` name, ``synthetic[:k=v,...]``
    or ``shifted:MODEL[,seed=N]`` (the synthetic stores fitted to a harder benchmark, `autotts.store.shifted`)."""
    text = str(spec)
    if text.startswith("synthetic"):
        from autotts.store.synthetic import synthetic_from_spec
        return synthetic_from_spec(text)
    if text.startswith("shifted:"):
        from autotts.store.shifted import shifted_from_spec
        return shifted_from_spec(text)
    path = resolve_path(text)
    if path.name.endswith(".pt"):
        return load_compact(path)
    model, dataset = model_and_dataset(path)
    return build_store(read_records(path), model=model, dataset=dataset, source=str(path))


def resolve_path(spec: str) -> Path:
    """A file path as given, else ``<AUTOTTS_DATA>/<spec>{.json.gz,.json,.pt}``."""
    path = Path(spec)
    if path.is_file():
        return path
    root = os.environ.get(DATA_ENV)
    if root and not path.is_absolute():
        for suffix in ("",) + SUFFIXES:
            cand = Path(root) / (spec + suffix)
            if cand.is_file():
                return cand
    hint = f" (also looked under {DATA_ENV}={root})" if root else f" (set {DATA_ENV} to look up model/dataset names)"
    raise StoreError(spec, "no such store file" + hint)


def model_and_dataset(path: Path) -> tuple[str, str]:
    """``.../<model>/<dataset>.json.gz`` -> (model, dataset)."""
    stem = path.name
    for suffix in SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return path.parent.name or "unknown", stem


def discover(root: str | Path | None = None) -> list[Path]:
    """All stores under a data root (default ``$AUTOTTS_DATA``), sorted by model then dataset."""
    root = root or os.environ.get(DATA_ENV)
    if not root:
        raise AutottsError(f"no data root: set {DATA_ENV} or pass a path "
                           "(scripts/download_data.py fetches the public stores)")
    base = Path(root)
    if not base.is_dir():
        raise AutottsError(f"{DATA_ENV}={root}: not a directory")
    found: dict[tuple[str, str], Path] = {}
    for suffix in SUFFIXES:  # prefer .json.gz, then .json, then .pt for the same name
        for p in sorted(base.glob(f"*/*{suffix}")):
            found.setdefault(model_and_dataset(p), p)
    return [found[k] for k in sorted(found)]


def save_compact(store: ReplayStore, path: str | Path) -> None:
    """Save a store in the compact ``.pt`` format (atomic write)."""
    path = Path(path)
    payload = {
        "format": COMPACT_FORMAT,
        "tensors": {k: _narrow(getattr(store, k).cpu()) for k in TENSOR_FIELDS},
        "vocab": store.vocab,
        "questions": store.questions,
        "meta": {"model": store.model, "dataset": store.dataset, "source": store.source},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def _narrow(t: torch.Tensor) -> torch.Tensor:
    """int32 when every value fits (all public stores), else int64: token counts may pass 2^31."""
    fits = t.numel() == 0 or (int(t.min()) >= -2**31 and int(t.max()) < 2**31)
    return t.to(torch.int32 if fits else torch.int64)


def load_compact(path: str | Path) -> ReplayStore:
    """Load a store saved by `save_compact`."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise StoreError(str(path), f"not a compact autotts store ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != COMPACT_FORMAT:
        raise StoreError(str(path), f"not a compact autotts store (expected format '{COMPACT_FORMAT}')")
    tensors, vocab, questions, meta = checked_payload(str(path), payload)
    return ReplayStore(**tensors, vocab=vocab, questions=questions,
                       model=meta["model"], dataset=meta["dataset"], source=str(path))
