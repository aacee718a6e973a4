"""The resume sidecar of a collection: ``<store>.partial.jsonl``, one line per finished question.

Line 1 holds the generation options; each further line ``{"index": i,
"record": {...}}`` one finished question. The file is rewritten through a
temporary file and an atomic rename after every question, so an interrupted
collection (Ctrl-C, crash, a failing server) keeps everything it finished,
and a resumed one refuses to mix questions collected with other options.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from autotts.collect.questions import Question
from autotts.errors import AutottsError


class PartialStore:
    def __init__(self, out: str | Path, config: dict, questions: list[Question]):
        out = Path(out)
        self.path = out.with_name(out.name + ".partial.jsonl")
        self.config = config
        self.records: dict[int, dict] = {}
        if self.path.exists():
            self._load(questions)

    def add(self, index: int, record: dict) -> None:
        self.records[index] = record
        lines = [json.dumps({"config": self.config}, ensure_ascii=False)]
        lines += [json.dumps({"index": i, "record": r}, ensure_ascii=False) for i, r in sorted(self.records.items())]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def _load(self, questions: list[Question]) -> None:
        try:
            rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise AutottsError(f"{self.path}: unreadable resume file ({err}); delete it to start over") from None
        saved = rows[0].get("config") if rows and isinstance(rows[0], dict) else None
        if not isinstance(saved, dict):
            raise AutottsError(f"{self.path}: line 1: expected the collection options; delete the file to start over")
        for key, value in self.config.items():
            if saved.get(key) != value:
                raise AutottsError(f"{self.path}: collected with {key}={saved.get(key)!r}, this run asks "
                                   f"{key}={value!r}; rerun with the same options or delete the file to start over")
        for lineno, row in enumerate(rows[1:], 2):
            i = row.get("index") if isinstance(row, dict) else None
            rec = row.get("record") if isinstance(row, dict) else None
            if not isinstance(i, int) or not 0 <= i < len(questions) or not isinstance(rec, dict):
                raise AutottsError(f"{self.path}:{lineno}: expected {{\"index\": i, \"record\": {{...}}}} "
                                   f"for one of {len(questions)} questions")
            if rec.get("question") != questions[i].text:
                raise AutottsError(f"{self.path}:{lineno}: question {i} differs from line {questions[i].line} of the "
                                   "questions file; delete the resume file to start over")
            self.records[i] = rec
