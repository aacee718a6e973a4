"""Collect a replay store from a live model: every branch of every question read interval by interval.

Branch j of a question is generated with ``branch_seed(seed, question, j)``
and read with the same `IntervalReader` the online runtime uses, so a
controller replayed on the store spends, question by question, exactly the
tokens it would spend online with the same seeds and shuffle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from autotts.answers.canonical import canonical
from autotts.collect.partial import PartialStore
from autotts.collect.questions import Question
from autotts.executor.backends.base import branch_seed
from autotts.executor.intervals import TO_END, IntervalReader
from autotts.store.autotts_json import write_records

OnQuestion = Callable[[int, dict], None]  # called after each finished question (index, record)


def collect_question(reader: IntervalReader, question: Question, prompt: str, n: int, seed: int) -> dict:
    """The AutoTTS record of one question: n branches read to their ends."""
    tracks = reader.open(prompt, [branch_seed(seed, question.text, j) for j in range(n)])
    reader.reveal(tracks, [TO_END] * n)
    branches = [[list(t.probes), t.tokens, t.final] for t in tracks]
    return {"question": question.text, "gold_answer": canonical(question.gold), "probe_freq": reader.delta,
            "each_branch": branches, "final_answers_trace": [b[2] for b in branches]}


def collect(reader: IntervalReader, questions: list[Question], prompts: list[str], n: int, seed: int,
            out: str | Path, partial: PartialStore, on_question: OnQuestion | None = None) -> list[dict]:
    """Collect every question not already in `partial` (the resume sidecar), then write `out`, drop the sidecar."""
    for i, (q, prompt) in enumerate(zip(questions, prompts)):
        if i not in partial.records:
            partial.add(i, collect_question(reader, q, prompt, n, seed))
        if on_question is not None:
            on_question(i, partial.records[i])
    records = [partial.records[i] for i in range(len(questions))]
    write_records(records, out)
    partial.remove()
    return records
