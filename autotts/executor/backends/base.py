"""The LLM backend interface: open branches, extend them by a token budget, probe them, count tokens.

A backend only generates text; the interval semantics (what Δ means, when a
branch ends, what a probe reveals) live in `autotts.executor.intervals`, so
collection and online runs cannot disagree about them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

SEED_STRIDE = 1_000_003


@dataclass
class Branch:
    """One reasoning branch as a backend grows it."""

    prompt: str
    seed: int
    tokens: int = 0    # tokens generated so far; the end-of-sequence token counts
    eos: bool = False  # generation ended with the end-of-sequence token
    state: Any = None  # backend-private: token ids + KV cache, or the generated text


@dataclass(frozen=True)
class Sampling:
    """How branch tokens are drawn (probes always decode greedily)."""

    temperature: float = 1.0
    top_p: float = 1.0


class Backend(Protocol):
    name: str

    def open(self, prompt: str, seeds: Sequence[int]) -> list[Branch]:
        """Fresh branches of `prompt`, one per seed (nothing generated yet)."""

    def extend(self, branches: Sequence[Branch], budgets: Sequence[int]) -> None:
        """Generate up to `budgets[i]` more tokens for branch i (fewer if it emits EOS), in one batch."""

    def probe(self, branches: Sequence[Branch], cue: str, max_tokens: int,
              done: Callable[[str], bool] | None = None) -> list[str]:
        """Greedy continuations of each branch's text + `cue` (the branches themselves are unchanged).

        `done(text)` may end a row's decoding early once more tokens cannot change its answer.
        """

    def text(self, branch: Branch) -> str:
        """The branch's generated text (without the end-of-sequence token)."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under the model's tokenizer."""

    def release(self, branches: Sequence[Branch]) -> None:
        """Free per-branch state (e.g. KV caches) of branches that will not be extended or probed again."""


def branch_seed(base_seed: int, question: str, j: int) -> int:
    """Seed of branch j of a question: fixed by (base seed, question text, j) alone.

    It does not depend on which branches share a batch or in which order they
    open, so a replay store and an online run draw the same branch j. The
    question's text enters through crc32 so questions do not share noise.
    """
    return ((base_seed * SEED_STRIDE + zlib.crc32(question.encode("utf-8"))) * SEED_STRIDE + j) % (1 << 63)
