"""Answer canonicalisation: the ONE place that decides when two answers are the same.

Votes, replay stores and online runs compare answers as strings, so every
answer (probe, final, gold) passes through `canonical` first: equivalent
answers (``0.5``, ``\\frac{1}{2}``, ``1/2``; ``\\sqrt{18}``, ``3\\sqrt 2``) become
one string and vote together. Parsing uses math-verify (LaTeX -> sympy),
then sympy's evaluated form; decimals become exact rationals; anything that
does not parse as mathematics keeps its text with whitespace normalised.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

_WORD = re.compile(r"(?<!\\)\b[A-Za-z]{2,}\b")  # a word that is not a LaTeX command
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_SPACE = re.compile(r"\s+")


def canonical(answer: str | None) -> str:
    """The canonical string of an answer ('' for none)."""
    if answer is None:
        return ""
    return _canonical(answer.strip())


@lru_cache(maxsize=65536)
def _canonical(text: str) -> str:
    plain = _SPACE.sub(" ", text.strip().strip("$").strip())
    if not plain:
        return ""
    expr = _parse(plain)
    if expr is None:
        return plain
    if getattr(expr, "free_symbols", None) and _WORD.search(_TEXT_CMD.sub(r"\1", plain)):
        return plain  # words, not algebra: math-verify would read "answer" as a*n*s*w*e*r
    return _to_string(expr)


def _parse(text: str):
    """First sympy object math-verify reads from ``\\boxed{text}``, or None."""
    from math_verify import parse
    from math_verify.parser import LatexExtractionConfig

    # math-verify's timeout uses SIGALRM, which only the main thread may arm.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:
        found = parse("\\boxed{" + text + "}", extraction_config=[LatexExtractionConfig()],
                      parsing_timeout=timeout)
    except Exception:  # math-verify raises many types on odd input; unparsable means "keep the text"
        return None
    return next((x for x in found if not isinstance(x, str)), None)


def _to_string(expr) -> str:
    """sympy's evaluated form (math-verify leaves e.g. sqrt(18) unevaluated), floats as exact rationals."""
    import sympy

    try:
        expr = sympy.sympify(sympy.srepr(expr))
    except Exception:  # sympy cannot rebuild every object it prints; the unevaluated form is still canonical
        pass
    if isinstance(expr, sympy.Float):
        expr = sympy.Rational(str(expr)).limit_denominator(10**12)
    return sympy.sstr(expr)
