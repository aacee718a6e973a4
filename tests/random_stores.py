"""Small hand-made random replay records with the edge cases the public stores lack.

Empty probe lists, Δ·K > L (and L = 0), single-branch questions, Δ = 1, and a
four-word answer alphabet so streaks, ties and equal probe/final answers are common.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

ALPHABET = ("1", "2", "3", "x")
DELTAS = (1, 3, 500)


def random_record(rng: random.Random, max_branches: int = 8, max_probes: int = 6) -> dict:
    """One question; every branch independently draws its probes, length and final answer."""
    delta = rng.choice(DELTAS)
    n = 1 if rng.random() < 0.15 else rng.randint(1, max_branches)
    branches = []
    for _ in range(n):
        k = 0 if rng.random() < 0.15 else rng.randint(1, max_probes)
        probes = [rng.choice(ALPHABET) for _ in range(k)]
        # Lengths around Δ·K: about half the branches are shorter than their probes claim.
        length = rng.choice([0, rng.randint(0, delta * (k + 2)), delta * k])
        branches.append([probes, length, rng.choice(ALPHABET)])
    return _record(delta, branches, rng.choice(ALPHABET))


def random_records(seed: int, questions: int = 12) -> list[dict]:
    rng = random.Random(seed)
    return [random_record(rng) for _ in range(questions)]


@st.composite
def records_strategy(draw: st.DrawFn, max_branches: int = 6, max_probes: int = 5) -> dict:
    """Hypothesis: one question with the same edge cases, shrinking towards small, short branches."""
    delta = draw(st.sampled_from(DELTAS))
    answer = st.sampled_from(ALPHABET)
    branch = st.tuples(st.lists(answer, max_size=max_probes), st.integers(0, delta * (max_probes + 2)), answer)
    branches = draw(st.lists(branch, min_size=1, max_size=max_branches))
    return _record(delta, [list(b) for b in branches], draw(answer))


def _record(delta: int, branches: list, gold: str) -> dict:
    return {"question": "synthetic", "gold_answer": gold, "probe_freq": delta, "each_branch": branches,
            "final_answers_trace": [b[2] for b in branches]}
