"""Answer canonicalisation and extraction, questions files, controller specs and manifests (no model needed)."""

from __future__ import annotations

import json

import pytest

from autotts.answers.canonical import canonical
from autotts.answers.extract import last_boxed, probe_answer, probe_complete
from autotts.artifact.manifest import check_manifest, read_manifest
from autotts.collect.questions import read_questions
from autotts.controllers.baselines import AdaptiveConsistency, EarlyStoppingConsistency, ParallelProbe, SelfConsistency
from autotts.errors import AutottsError
from autotts.executor.backends.base import branch_seed
from autotts.executor.controllers import controller_from_spec
from autotts.executor.options import format_prompt

CUE = "\n\nFinal answer: \\boxed{"


@pytest.mark.parametrize("group", [
    ["0.5", "\\frac{1}{2}", "1/2", "\\dfrac12", "0.50", "$\\frac{1}{2}$"],
    ["2", "2.0", "02", " 2 "],
    ["\\sqrt{18}", "3\\sqrt{2}", "3 \\sqrt 2"],
    ["1000", "1,000"],
    ["x^2+1", "1+x^2"],
])
def test_equivalent_answers_share_one_canonical_string(group: list[str]) -> None:
    assert len({canonical(a) for a in group}) == 1


def test_different_answers_stay_different_and_words_stay_words() -> None:
    assert len({canonical(a) for a in ["1/2", "1/3", "2", "-2", "x+1"]}) == 5
    assert canonical("answer is   five") == "answer is five"
    assert canonical("") == "" and canonical(None) == ""


def test_boxed_and_probe_extraction() -> None:
    assert last_boxed("so \\boxed{1} then \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert last_boxed("a \\boxed{7} b \\boxed{unclosed") == "7"
    assert last_boxed("no box here") is None
    assert probe_answer(" \\frac{3}{4} } and more", CUE) == " \\frac{3}{4} "
    assert probe_answer(" 12 ", CUE) == " 12 "  # never closed: the whole continuation
    assert probe_answer("The answer is \\boxed{5}.", "Answer:") == "5"
    assert not probe_complete(" \\frac{3}{4", CUE) and probe_complete(" \\frac{3}{4}}", CUE)


def test_branch_seed_depends_on_question_and_index_only() -> None:
    assert branch_seed(0, "q", 3) == branch_seed(0, "q", 3)
    assert len({branch_seed(0, "q", j) for j in range(100)}) == 100
    assert branch_seed(0, "q", 0) != branch_seed(0, "r", 0) != branch_seed(1, "r", 0)


def test_questions_file_accepts_answer_alias_and_skips_blank_lines(tmp_path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "a?", "gold_answer": "1"}\n\n{"question": "b?", "answer": 2}\n')
    qs = read_questions(path)
    assert [(q.text, q.gold, q.line) for q in qs] == [("a?", "1", 1), ("b?", "2", 3)]


@pytest.mark.parametrize("line, expected", [
    ('{"question": "x", "gold_answer": "1"', "q.jsonl:2: invalid JSON"),
    ('["x", "1"]', "q.jsonl:2: expected a JSON object"),
    ('{"gold_answer": "1"}', "q.jsonl:2: expected a non-empty string 'question', got missing"),
    ('{"question": "x"}', "q.jsonl:2: expected 'gold_answer' (or 'answer')"),
    ('{"question": "x", "gold_answer": true}', "got true"),
])
def test_bad_questions_line_names_file_line_and_expectation(tmp_path, line: str, expected: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok", "gold_answer": "1"}\n' + line + "\n")
    with pytest.raises(AutottsError) as err:
        read_questions(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_specs_build_the_baselines_with_their_knobs() -> None:
    sc = controller_from_spec("sc:8").program
    asc = controller_from_spec("asc:16").program
    esc = controller_from_spec("esc:16").program
    pp = controller_from_spec("pp:4").program
    assert isinstance(sc, SelfConsistency) and sc.n == 8
    assert isinstance(asc, AdaptiveConsistency) and (asc.max_samples, asc.threshold) == (16, 0.95)
    assert isinstance(esc, EarlyStoppingConsistency) and (esc.max_samples, esc.window) == (16, 8)
    assert isinstance(pp, ParallelProbe) and (pp.num_chains, pp.T) == (4, 40)
    assert controller_from_spec("cmc", beta=0.3).program.beta == 0.3
    assert controller_from_spec("cmc:0.7", beta=0.3).program.beta == 0.7


@pytest.mark.parametrize("spec, expected", [
    ("best:3", "unknown controller"), ("sc:many", "knob 'many' is not a number"),
    ("asc:0", "max_samples must be a positive integer"), ("esc", "esc needs its max_samples"),
])
def test_bad_controller_spec_is_one_line(spec: str, expected: str) -> None:
    with pytest.raises(AutottsError) as err:
        controller_from_spec(spec)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_prompt_template_needs_its_placeholder() -> None:
    assert format_prompt("Q: {question}\nA: {x}", "2+2?") == "Q: 2+2?\nA: {x}"
    with pytest.raises(AutottsError, match="placeholder"):
        format_prompt("no slot", "2+2?")


def _manifest(**over) -> dict:
    base = {"format": "autotts-controller-v1", "autotts_version": "0.1.0", "delta": 500, "slots": 64,
            "features": {"pool": ["n_open", "conf"], "branch": ["depth", "streak"], "completed": ["order"]},
            "actions": {},
            "beta_range": [0, 1], "guards": [], "training_stores": [], "validation_curve": []}
    base.update(over)
    return base


NAMES = ["n_open", "conf", "depth", "streak", "order"]


def test_matching_manifest_passes() -> None:
    check_manifest(_manifest(), 500, NAMES)


@pytest.mark.parametrize("manifest, delta, names, expected", [
    ({k: v for k, v in _manifest().items() if k != "guards"}, 500, NAMES, "missing key 'guards'"),
    (_manifest(), 16, NAMES, "trained with delta=500 tokens but this run uses delta=16"),
    (_manifest(), 500, ["n_open", "conf", "depth", "run", "order"],
     "feature 3: manifest has 'streak', this build has 'run'"),
    (_manifest(), 500, NAMES + ["age"], "manifest lacks feature 'age'"),
    (_manifest(format="other"), 500, NAMES, "format 'other'"),
    (_manifest(features=["depth"]), 500, NAMES, "'features' must be"),
])
def test_manifest_mismatch_is_one_line_naming_the_cause(manifest, delta, names, expected) -> None:
    with pytest.raises(AutottsError) as err:
        check_manifest(manifest, delta, names)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_read_manifest_names_the_missing_file(tmp_path) -> None:
    (tmp_path / "controller.pt").write_bytes(b"")
    with pytest.raises(AutottsError, match="manifest.json: missing manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    assert read_manifest(tmp_path)["delta"] == 500
