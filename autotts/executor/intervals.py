"""The interval protocol on a live model: the ONE definition of what Δ, a probe and a branch's end mean.

A branch of total length L tokens (ending at EOS, which counts, or at the
max-token cap) read with interval Δ has K = ceil(L/Δ) - 1 probes: the answer
read after each full Δ-token interval that did NOT end the branch. Reading
the interval that ends it reveals the final answer (the last ``\\boxed{}`` of
its text, else a probe of the finished text). So the replay costs (open or
advance = Δ, finish = L - KΔ, full read = L) are exactly the tokens generated
here; collection records these tracks and the online runtime reveals them on
demand, which is why replay and online runs agree token for token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from autotts.answers.canonical import canonical
from autotts.answers.extract import last_boxed, probe_answer, probe_complete
from autotts.errors import AutottsError
from autotts.executor.backends.base import Backend, Branch

DEFAULT_CUE = "\n\nFinal answer: \\boxed{"
TO_END = 1 << 30  # a probe target no branch reaches: read to the end


@dataclass(frozen=True)
class Probe:
    """How an answer is read from a partial branch: append `cue`, decode up to `max_tokens` greedily."""

    cue: str = DEFAULT_CUE
    max_tokens: int = 16


@dataclass
class Track:
    """A branch as the interval protocol has revealed it so far."""

    branch: Branch
    probes: list[str] = field(default_factory=list)  # canonical answers after each non-final interval
    final: str | None = None                        # canonical final answer once ended

    @property
    def ended(self) -> bool:
        return self.final is not None

    @property
    def tokens(self) -> int:
        return self.branch.tokens


class IntervalReader:
    """Reveals branches interval by interval through a backend, batching every branch that needs work."""

    def __init__(self, backend: Backend, delta: int, max_tokens: int, probe: Probe = Probe()):
        if delta <= 0 or max_tokens <= 0:
            raise AutottsError(f"--delta and --max-tokens must be positive (got {delta} and {max_tokens})")
        if probe.max_tokens <= 0:
            raise AutottsError(f"--probe-tokens must be positive (got {probe.max_tokens})")
        self.backend, self.delta, self.max_tokens, self.probe = backend, int(delta), int(max_tokens), probe
        self.busy_s = 0.0  # wall time spent in the backend (for overhead reports)

    def open(self, prompt: str, seeds: Sequence[int]) -> list[Track]:
        t0 = time.perf_counter()
        tracks = [Track(b) for b in self.backend.open(prompt, seeds)]
        self.busy_s += time.perf_counter() - t0
        return tracks

    def reveal(self, tracks: Sequence[Track], targets: Sequence[int]) -> None:
        """Read until track i holds `targets[i]` probes or has ended (`TO_END` reads it to the end)."""
        while True:
            todo = [t for t, goal in zip(tracks, targets) if not t.ended and len(t.probes) < goal]
            if not todo:
                return
            self.next_interval(todo)

    def next_interval(self, tracks: Sequence[Track]) -> None:
        """Generate one interval of every track, then probe those that go on and close those that ended."""
        t0 = time.perf_counter()
        branches = [t.branch for t in tracks]
        self.backend.extend(branches, [min(self.delta, self.max_tokens - b.tokens) for b in branches])
        ended = [t for t in tracks if t.branch.eos or t.branch.tokens >= self.max_tokens]
        going = [t for t in tracks if not (t.branch.eos or t.branch.tokens >= self.max_tokens)]
        for t, answer in zip(going, self._read([t.branch for t in going])):
            t.probes.append(answer)
        self._close(ended)
        self.busy_s += time.perf_counter() - t0

    def _close(self, tracks: list[Track]) -> None:
        """Final answers: the last box of the text, else what a probe of the finished text reads."""
        texts = {id(t): last_boxed(self.backend.text(t.branch)) for t in tracks}
        unboxed = [t for t in tracks if texts[id(t)] is None]
        for t, answer in zip(unboxed, self._read([t.branch for t in unboxed])):
            t.final = answer
        for t in tracks:
            if t.final is None:
                t.final = canonical(texts[id(t)])
        self.backend.release([t.branch for t in tracks])

    def release(self, tracks: Sequence[Track]) -> None:
        """Free the backend state of tracks that will not be read again (stopped questions, pruned branches)."""
        self.backend.release([t.branch for t in tracks])

    def _read(self, branches: list[Branch]) -> list[str]:
        if not branches:
            return []
        cue = self.probe.cue
        texts = self.backend.probe(branches, cue, self.probe.max_tokens, lambda s: probe_complete(s, cue))
        return [canonical(probe_answer(s, cue)) for s in texts]
