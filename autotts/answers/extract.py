"""Answer extraction from generated text (before canonicalisation, see `canonical.py`).

Two sources: the last ``\\boxed{...}`` of a finished branch's text, and the
continuation a probe decodes after its cue (which normally ends inside an
open ``\\boxed{``, so the answer is everything up to the brace that closes it).
"""

from __future__ import annotations

BOX = "\\boxed{"


def last_boxed(text: str) -> str | None:
    """Content of the last closed ``\\boxed{...}`` in `text` (nested braces allowed), else None."""
    start = text.rfind(BOX)
    while start >= 0:
        body = _until_close(text[start + len(BOX):])
        if body is not None:
            return body
        start = text.rfind(BOX, 0, start)
    return None


def probe_answer(continuation: str, cue: str) -> str:
    """The answer a probe read: up to the closing brace if the cue opened a box, else a box or the first line."""
    if cue.rstrip().endswith(BOX):
        body = _until_close(continuation)
        return continuation if body is None else body
    boxed = last_boxed(continuation)
    return boxed if boxed is not None else continuation.strip().split("\n", 1)[0]


def probe_complete(continuation: str, cue: str) -> bool:
    """True once more decoding cannot change `probe_answer` (the box is closed): lets decoding stop early."""
    if cue.rstrip().endswith(BOX):
        return _until_close(continuation) is not None
    return False


def _until_close(text: str) -> str | None:
    """Text before the brace closing an already open group, or None if it never closes."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return text[:i]
            depth -= 1
    return None
