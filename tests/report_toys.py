"""Hand-made sweep results with known figures, shared by the report tests."""

from __future__ import annotations

import numpy as np

from autotts.evaluate.sweep import SettingResult

Q = 40


def setting(method: str, knob: float, correct_share: float, tokens: float, seq: float = float("nan")) -> SettingResult:
    """A setting whose first `correct_share` of the questions are answered right, costing ~`tokens` each
    (`seq` sequential tokens; NaN = not measured, as in old results files)."""
    right = np.arange(Q) < round(correct_share * Q)
    acc = 100.0 * right
    tok = np.full(Q, tokens) * (1.0 + 0.1 * (np.arange(Q) % 3))
    return SettingResult(method, knob, float(acc.mean()), float(tok.mean()), Q, 0.01, acc, tok, seq)


def sweep() -> list[SettingResult]:
    """SC@1/8/64 and CMC β=0/1; CMC β=1 matches SC@64's 60 % at less than a third of its tokens."""
    return [setting("sc", 1, 0.3, 1e4), setting("sc", 8, 0.5, 8e4), setting("sc", 64, 0.6, 6.4e5),
            setting("cmc", 0.0, 0.4, 2e4), setting("cmc", 1.0, 0.6, 2e5)]


def write_toy_store(path, questions: int = 8, branches: int = 64, seed: int = 0):
    """A small AutoTTS JSON store with random branches (gold '7'; 'No' = no answer yet) at `path`."""
    import random

    from autotts.store.autotts_json import write_records
    rng = random.Random(seed)
    records = []
    for q in range(questions):
        each = []
        for _ in range(branches):
            probes = ["No"] + [rng.choice(["No", "7", "7", "9", "12"]) for _ in range(rng.randint(0, 9))]
            final = rng.choice(["7", "7", "9", "12"]) if q % 4 else rng.choice(["9", "12"])
            each.append([probes, 500 * len(probes) + rng.randint(-400, 400), final])
        records.append({"question": f"toy question {q}", "gold_answer": "7", "probe_freq": 500,
                        "each_branch": each, "final_answers_trace": [b[2] for b in each]})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_records(records, path)
    return path
