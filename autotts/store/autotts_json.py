"""Read, validate and write AutoTTS replay files (`.json` / `.json.gz`).

Validation is strict and its errors are one line naming the file, the question
index and the field, because a silently misread store gives silently wrong
accuracy figures.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from pathlib import Path
from typing import Any

from autotts.errors import StoreError

REQUIRED = ("gold_answer", "probe_freq", "each_branch")

# Bounds that keep every int64 sum the env forms (128 branches x 30 questions x 100 seeds of 10^12 is
# ~4·10^17 < 2^63) exact, and float64 means of per-question costs exact to the token (< 2^53).
MAX_TOKENS = 10**12   # tokens of one branch, and Δ x probes (what probing the whole branch charges)
MAX_DELTA = 10**9     # probe interval Δ in tokens


def read_records(path: str | Path) -> list[dict]:
    """Parse and validate an AutoTTS file; raises `StoreError` on any defect."""
    path = Path(path)
    data = _parse(path)
    if not isinstance(data, list):
        raise StoreError(str(path), f"expected a JSON list of questions at the top level, got {_kind(data)}")
    if not data:
        raise StoreError(str(path), "the file holds no questions (empty list)")
    for qi, rec in enumerate(data):
        validate_record(str(path), qi, rec)
    return data


def _parse(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(str(path), "no such file") from None
    except OSError as err:
        raise StoreError(str(path), f"cannot read: {err.strerror or err}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise StoreError(str(path), f"truncated or corrupt gzip stream ({err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StoreError(str(path), f"not UTF-8 text (byte {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise StoreError(str(path), f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None


def validate_record(path: str, qi: int, rec: Any) -> None:
    """Check one question object; the error names the question index and the field."""
    if not isinstance(rec, dict):
        raise StoreError(path, f"expected an object, got {_kind(rec)}", qi)
    for key in REQUIRED:
        if key not in rec or rec[key] is None:
            what = "gold answer missing" if key == "gold_answer" else "missing"
            raise StoreError(path, what, qi, key)
    if "question" in rec and not isinstance(rec["question"], str):
        raise StoreError(path, f"expected a string, got {_kind(rec['question'])}", qi, "question")
    if not isinstance(rec["gold_answer"], str):
        raise StoreError(path, f"expected a string, got {_kind(rec['gold_answer'])}", qi, "gold_answer")
    pf = rec["probe_freq"]
    if not _is_int(pf) or not 0 < pf <= MAX_DELTA:
        raise StoreError(path, f"expected a positive integer interval in tokens (at most {power(MAX_DELTA)}), "
                         f"got {_show(pf)}", qi, "probe_freq")
    branches = rec["each_branch"]
    if not isinstance(branches, list):
        raise StoreError(path, f"expected a list of branches, got {_kind(branches)}", qi, "each_branch")
    if not branches:
        raise StoreError(path, "empty branch list (a question needs at least one branch)", qi, "each_branch")
    for j, br in enumerate(branches):
        _validate_branch(path, qi, j, br, pf)
    trace = rec.get("final_answers_trace")
    if trace is not None:
        _validate_trace(path, qi, trace, branches)


def _validate_branch(path: str, qi: int, j: int, br: Any, delta: int) -> None:
    field = f"each_branch[{j}]"
    if not isinstance(br, list) or len(br) != 3:
        raise StoreError(path, f"expected [probe_list, branch_tokens, final_answer], got {_show(br)}", qi, field)
    plist, tokens, fin = br
    if not isinstance(plist, list):
        raise StoreError(path, f"expected a list of probe answers, got {_kind(plist)}", qi, f"{field}[0]")
    for k, a in enumerate(plist):
        if not isinstance(a, str):
            raise StoreError(path, f"expected a string answer, got {_show(a)}", qi, f"{field}[0][{k}]")
    if delta * len(plist) > MAX_TOKENS:
        raise StoreError(path, f"{len(plist)} probes of {delta} tokens exceed {power(MAX_TOKENS)} tokens per branch",
                         qi, f"{field}[0]")
    if not _is_int(tokens) or not 0 <= tokens <= MAX_TOKENS:
        raise StoreError(path, f"expected a non-negative integer token count (at most {power(MAX_TOKENS)}), "
                         f"got {_show(tokens)}", qi, f"{field}[1]")
    if not isinstance(fin, str):
        raise StoreError(path, f"expected a string final answer, got {_show(fin)}", qi, f"{field}[2]")


def _validate_trace(path: str, qi: int, trace: Any, branches: list) -> None:
    if not isinstance(trace, list) or len(trace) != len(branches):
        raise StoreError(path, f"expected a list of {len(branches)} final answers, got {_show(trace)}",
                         qi, "final_answers_trace")
    for j, (a, br) in enumerate(zip(trace, branches)):
        if a != br[2]:
            raise StoreError(path, f"{_show(a)} differs from each_branch[{j}][2] = {_show(br[2])}",
                             qi, f"final_answers_trace[{j}]")


def power(bound: int) -> str:
    """A power-of-ten bound as users read it (10^12)."""
    return f"10^{len(str(bound)) - 1}"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _kind(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(x), type(x).__name__)


def _show(x: Any) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)  # nan / inf / -inf
    text = json.dumps(x, ensure_ascii=False) if not isinstance(x, float) else repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def write_records(records: list[dict], path: str | Path) -> None:
    """Write AutoTTS JSON (gzip when the name ends in .gz) atomically."""
    path = Path(path)
    text = json.dumps(records, ensure_ascii=False)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".gz":
        with gzip.open(tmp, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
