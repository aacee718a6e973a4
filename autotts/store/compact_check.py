"""Validation of a compact ``.pt`` store's payload: the same ranges as the JSON loader, on tensors.

A ``.pt`` file is only ever written by `save_compact`, but it is still a file a user
hands us: one edited, truncated or from another build must fail in one line naming
the file, the question and the field, as a JSON store does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from autotts.errors import StoreError
from autotts.store.autotts_json import MAX_DELTA, MAX_TOKENS, power
from autotts.store.replay_store import PAD, TENSOR_FIELDS

# Dimensions of each tensor: Q questions, N branch rows, K probe columns.
DIMS = {"probes": "QNK", "n_probes": "QN", "length": "QN", "final": "QN",
        "n_branches": "Q", "delta": "Q", "gold": "Q", "n_final_ids": "Q"}
INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def checked_payload(path: str, payload: Any) -> tuple[dict[str, Tensor], list[list[str]], list[str], dict]:
    """(int64 tensors, vocabularies, questions, meta) of a `save_compact` payload, or a one-line `StoreError`."""
    for key, kind in (("tensors", dict), ("vocab", list), ("questions", list), ("meta", dict)):
        if not isinstance(payload.get(key), kind):
            raise StoreError(path, f"expected {kind.__name__} in the compact payload", field=key)
    tensors = _tensors(path, payload["tensors"])
    q = tensors["delta"].shape[0]
    vocab, questions, meta = payload["vocab"], payload["questions"], payload["meta"]
    _strings(path, "vocab", vocab, q)
    if len(questions) != q or not all(isinstance(t, str) for t in questions):
        raise StoreError(path, f"expected {q} question strings", field="questions")
    for key in ("model", "dataset"):
        if not isinstance(meta.get(key), str):
            raise StoreError(path, f"expected a string, got {type(meta.get(key)).__name__}", field=f"meta.{key}")
    _ranges(path, tensors, torch.tensor([len(v) for v in vocab], dtype=torch.long))
    return tensors, vocab, questions, meta


def _tensors(path: str, raw: dict) -> dict[str, Tensor]:
    sizes: dict[str, int] = {}
    out = {}
    for name in TENSOR_FIELDS:
        t = raw.get(name)
        if not isinstance(t, Tensor) or t.dtype not in INT_DTYPES:
            got = t.dtype if isinstance(t, Tensor) else type(t).__name__
            raise StoreError(path, f"expected an integer tensor, got {got}", field=name)
        dims = DIMS[name]
        if t.dim() != len(dims):
            raise StoreError(path, f"expected {len(dims)} dimensions ({','.join(dims)}), got shape {list(t.shape)}",
                             field=name)
        for d, n in zip(dims, t.shape):
            if sizes.setdefault(d, int(n)) != n:
                raise StoreError(path, f"dimension {d} is {n}, other tensors have {sizes[d]}", field=name)
        out[name] = t.to(torch.long)
    if sizes["Q"] < 1 or sizes["N"] < 1:
        raise StoreError(path, f"expected at least one question and one branch, got shape {list(raw['probes'].shape)}",
                         field="probes")
    return out


def _strings(path: str, key: str, vocab: list, q: int) -> None:
    if len(vocab) != q:
        raise StoreError(path, f"expected {q} vocabularies, got {len(vocab)}", field=key)
    for qi, words in enumerate(vocab):
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise StoreError(path, "expected a non-empty list of answer strings", qi, key)


def _ranges(path: str, t: dict[str, Tensor], vocab_size: Tensor) -> None:
    """Every value within what the JSON loader accepts; padding where `build_store` puts it."""
    n_rows, k_cols = t["probes"].shape[1:]
    real = torch.arange(n_rows)[None, :] < t["n_branches"][:, None]
    k = torch.arange(k_cols)[None, None, :]
    v = vocab_size[:, None]
    recorded = real[:, :, None] & (k < t["n_probes"][:, :, None])
    probe_ok = torch.where(recorded, (t["probes"] >= 0) & (t["probes"] < v[:, :, None]), t["probes"] == PAD)
    checks = [
        ("n_branches", (t["n_branches"] >= 1) & (t["n_branches"] <= n_rows), f"expected 1..{n_rows} branches"),
        ("delta", (t["delta"] >= 1) & (t["delta"] <= MAX_DELTA), f"expected 1..{power(MAX_DELTA)} tokens"),
        ("n_final_ids", (t["n_final_ids"] >= 1) & (t["n_final_ids"] <= vocab_size),
         "expected 1..vocabulary size"),
        ("gold", (t["gold"] >= 0) & (t["gold"] < vocab_size), "expected an id in the vocabulary"),
        ("length", ~real | ((t["length"] >= 0) & (t["length"] <= MAX_TOKENS)),
         f"expected 0..{power(MAX_TOKENS)} tokens per branch"),
        ("n_probes", ~real | ((t["n_probes"] >= 0) & (t["n_probes"] <= k_cols)
                              & (t["n_probes"] * t["delta"][:, None] <= MAX_TOKENS)),
         f"expected 0..{k_cols} probes, at most {power(MAX_TOKENS)} tokens of them"),
        ("final", ~real | ((t["final"] >= 0) & (t["final"] < t["n_final_ids"][:, None])),
         "expected a final-answer id (below n_final_ids)"),
        ("probes", probe_ok, "expected vocabulary ids for recorded probes and -1 beyond"),
    ]
    for name, ok, expected in checks:
        bad = ~ok.reshape(ok.shape[0], -1).all(1)
        if bool(bad.any()):
            qi = int(bad.nonzero()[0])
            raise StoreError(path, f"{expected}, got {_first_bad(t[name][qi], ok[qi])}", qi, name)


def _first_bad(values: Tensor, ok: Tensor) -> int:
    return int(values.reshape(-1)[(~ok).reshape(-1).nonzero()[0]])
