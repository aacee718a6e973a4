"""Questions files: JSONL, one ``{"question": str, "gold_answer": str}`` per line ("answer" also names the gold)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from autotts.errors import AutottsError


@dataclass(frozen=True)
class Question:
    text: str
    gold: str  # as written in the file (canonicalise before comparing)
    line: int


def read_questions(path: str | Path) -> list[Question]:
    """Parse a questions file; a bad line raises one error naming ``file:line`` and what was expected."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AutottsError(f"{path}: no such questions file") from None
    except UnicodeDecodeError as err:
        raise AutottsError(f"{path}: cannot read questions file: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise AutottsError(f"{path}: cannot read questions file ({err.strerror or err})") from None
    out = [_question(path, i, line) for i, line in enumerate(lines, 1) if line.strip()]
    if not out:
        raise AutottsError(f"{path}: no questions (expected one JSON object per line)")
    return out


def _question(path: Path, lineno: int, line: str) -> Question:
    where = f"{path}:{lineno}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise AutottsError(f"{where}: invalid JSON ({err.msg} at column {err.colno}); expected an object "
                           '{"question": ..., "gold_answer": ...}') from None
    if not isinstance(obj, dict):
        raise AutottsError(f"{where}: expected a JSON object with 'question' and 'gold_answer', "
                           f"got {type(obj).__name__}")
    text = obj.get("question")
    if not isinstance(text, str) or not text.strip():
        raise AutottsError(f"{where}: expected a non-empty string 'question', got {_show(text)}")
    gold = obj.get("gold_answer", obj.get("answer"))
    if isinstance(gold, bool) or not isinstance(gold, (str, int, float)) \
            or isinstance(gold, float) and not math.isfinite(gold):
        raise AutottsError(f"{where}: expected 'gold_answer' (or 'answer') as a string or finite number, "
                           f"got {_show(gold)}")
    return Question(text=text, gold=str(gold), line=lineno)


def _show(x: object) -> str:
    text = "missing" if x is None else json.dumps(x, ensure_ascii=False) if not isinstance(x, float) else repr(x)
    return text if len(text) <= 40 else text[:37] + "..."
