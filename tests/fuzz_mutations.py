"""Mutations of valid input files for tests/test_fuzz_inputs.py (not a test module).

Two families: edits of a parsed JSON document (a value's type flipped, a key deleted or
written twice, huge, negative and non-finite numbers) and damage to the bytes of any
file (truncation, random bytes). Hypothesis draws which node, which edit and which
value, so every mutation is reproducible from the seed and shrinks to a small case.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from hypothesis import strategies as st

# What a flipped or edited value becomes: other types, huge and negative numbers, NaN and infinities.
VALUES: tuple[Any, ...] = ("x", "", "500", 0, -1, -3, 1, 10**30, -10**30, 2**63, 1.5, math.nan, math.inf,
                           -math.inf, True, False, None, [], {}, [1, "a"], {"a": 1})
JSON_OPS = ("replace", "delete", "duplicate")
BYTE_OPS = ("truncate", "random_bytes")
Path = tuple[Any, ...]


def json_paths(doc: Any, limit: int = 400) -> list[Path]:
    """Paths to every node of `doc` (breadth first, at most `limit`): keys and list indices."""
    out: list[Path] = []
    queue: list[tuple[Path, Any]] = [((), doc)]
    while queue and len(out) < limit:
        path, node = queue.pop(0)
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            out.append(path + (key,))
            queue.append((path + (key,), child))
    return out


def get(doc: Any, path: Path) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def replaced(doc: Any, path: Path, value: Any) -> Any:
    out = copy.deepcopy(doc)
    get(out, path[:-1])[path[-1]] = value
    return out


def deleted(doc: Any, path: Path) -> Any:
    out = copy.deepcopy(doc)
    del get(out, path[:-1])[path[-1]]
    return out


def duplicated_key_text(doc: Any, path: Path, value: Any, first: bool) -> str:
    """JSON text in which the object key at `path` appears twice: once with `value`, once as it was."""
    marker = "\u0000dup\u0000"
    text = json.dumps(replaced(doc, path, marker))
    key = json.dumps(path[-1])
    old, new = json.dumps(get(doc, path)), json.dumps(value)
    pair = f"{key}: {new}, {key}: {old}" if first else f"{key}: {old}, {key}: {new}"
    return text.replace(f"{key}: {json.dumps(marker)}", pair, 1)


def shape(path: Path) -> Path:
    """A path with list indices blanked: every branch's token count has one shape."""
    return tuple("*" if isinstance(k, int) else k for k in path)


@st.composite
def json_path(draw, doc: Any) -> Path:
    """A node of `doc`: first a shape (each field kind equally likely), then one node of that shape."""
    by_shape: dict[Path, list[Path]] = {}
    for path in json_paths(doc, limit=4000):
        by_shape.setdefault(shape(path), []).append(path)
    shapes = sorted(by_shape, key=str)
    nodes = by_shape[shapes[draw(st.integers(0, len(shapes) - 1))]]
    return nodes[draw(st.integers(0, len(nodes) - 1))]


@st.composite
def json_mutation(draw, doc: Any) -> tuple[str, Path, bytes]:
    """(op, path, mutated bytes) of a JSON document: an edit at a node, or damage to its text."""
    text = json.dumps(doc).encode()
    op = draw(st.sampled_from(JSON_OPS + BYTE_OPS))
    if op in BYTE_OPS:
        return op, (), draw(byte_damage(text, op))
    path = draw(json_path(doc))
    value = draw(st.sampled_from(VALUES))
    if op == "duplicate" and isinstance(path[-1], str):
        return op, path, duplicated_key_text(doc, path, value, draw(st.booleans())).encode()
    if op == "delete":
        return op, path, json.dumps(deleted(doc, path)).encode()
    return "replace", path, json.dumps(replaced(doc, path, value)).encode()


@st.composite
def byte_damage(draw, raw: bytes, op: str | None = None) -> bytes:
    """`raw` cut short, or with a run of random bytes written over it."""
    op = op or draw(st.sampled_from(BYTE_OPS))
    if op == "truncate":
        return raw[:draw(st.integers(0, max(0, len(raw) - 1)))]
    start = draw(st.integers(0, max(0, len(raw) - 1)))
    noise = draw(st.binary(min_size=1, max_size=64))
    return raw[:start] + noise + raw[start + len(noise):]
