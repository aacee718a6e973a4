"""Replay store loading: the public stores, the compact format, and one-line errors on bad input."""

from __future__ import annotations

import copy
import gzip
import json
import os
import time
from pathlib import Path

import pytest
import torch

from autotts.errors import StoreError
from autotts.store import PAD, ReplayStore, build_store, discover, load_compact, load_store, save_compact, to_records
from autotts.store.autotts_json import read_records, write_records
from autotts.store.io import model_and_dataset

DATA = os.environ.get("AUTOTTS_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="AUTOTTS_DATA is not set (the public stores)")

# Content fingerprints of the public stores as built before build_store was vectorised: must never change.
PUBLIC_FINGERPRINTS = {
    ("Qwen3-0.6B", "aime24"): "6c78a2969432811f", ("Qwen3-0.6B", "aime25"): "6d5e26697f5e5d67",
    ("Qwen3-1.7B", "aime24"): "686e19c2e5011e2b", ("Qwen3-1.7B", "aime25"): "c663d9767da847d7",
    ("Qwen3-4B", "aime24"): "a65f25594739b7f3", ("Qwen3-4B", "aime25"): "2e076927e6842c94",
    ("Qwen3-8B", "aime24"): "d9c920f381b15331", ("Qwen3-8B", "aime25"): "751deed9a41a636d",
}


@pytest.fixture(scope="module")
def public() -> list[tuple[Path, list[dict], ReplayStore]]:
    """Each public store: its path, its records, and the store loaded by its ``model/dataset`` name."""
    return [(p, read_records(p), load_store("/".join(model_and_dataset(p)))) for p in discover()]


@needs_data
def test_all_public_stores_load_with_expected_shapes_and_fingerprints(public):
    assert {model_and_dataset(p) for p, _, _ in public} == set(PUBLIC_FINGERPRINTS)
    for path, records, store in public:
        assert store.name == "/".join(model_and_dataset(path)) and store.source == str(path)
        assert store.probes.shape == (30, 128, 80)
        assert store.n_branches.tolist() == [128] * 30 and store.delta.tolist() == [500] * 30
        assert store.fingerprint == PUBLIC_FINGERPRINTS[model_and_dataset(path)]
        assert [store.vocab[q][int(store.gold[q])] for q in range(30)] == [r["gold_answer"] for r in records]
        assert bool((store.final < store.n_final_ids[:, None]).all())  # finals take the first ids
        assert int(store.n_probes.min()) >= 1 and bool(((store.probes != PAD).sum(-1) == store.n_probes).all())


@needs_data
def test_public_stores_round_trip_to_the_exact_records(public):
    for path, records, store in public:
        assert to_records(store) == records, path


@needs_data
def test_compact_round_trip_keeps_the_fingerprint(public, tmp_path):
    for path, _, store in public:
        out = tmp_path / ("-".join(model_and_dataset(path)) + ".pt")
        save_compact(store, out)
        start = time.perf_counter()
        back = load_store(out)
        elapsed = time.perf_counter() - start
        assert back.fingerprint == store.fingerprint and back.vocab == store.vocab
        assert (back.model, back.dataset, back.questions) == (store.model, store.dataset, store.questions)
        print(f"compact load {store.name}: {elapsed * 1000:.1f} ms")


def _record(qi: int, branches: int = 3) -> dict:
    each = [[["1", "ERR", str(qi)], 1200 + j, str(qi + j % 2)] for j in range(branches)]
    return {"question": f"q{qi}", "gold_answer": str(qi), "probe_freq": 500,
            "each_branch": each, "final_answers_trace": [b[2] for b in each]}


def _valid() -> list[dict]:
    return [_record(qi) for qi in range(3)]


def _set(path: list, value):
    def mutate(records: list[dict]) -> None:
        target = records[1]
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return mutate


_DELETE = object()

# (name, mutation of question 1, field named in the error, words the message must contain)
BAD_RECORDS = [
    ("missing key", _set(["probe_freq"], _DELETE), "probe_freq", "missing"),
    ("gold missing", _set(["gold_answer"], _DELETE), "gold_answer", "gold answer missing"),
    ("gold null", _set(["gold_answer"], None), "gold_answer", "gold answer missing"),
    ("gold wrong type", _set(["gold_answer"], 7), "gold_answer", "an integer"),
    ("branches wrong type", _set(["each_branch"], "abc"), "each_branch", "a string"),
    ("empty branch list", _set(["each_branch"], []), "each_branch", "empty branch list"),
    ("branch not a triple", _set(["each_branch", 2], ["1", 5]), "each_branch[2]", "expected [probe_list"),
    ("negative tokens", _set(["each_branch", 2, 1], -5), "each_branch[2][1]", "-5"),
    ("fractional tokens", _set(["each_branch", 2, 1], 12.5), "each_branch[2][1]", "12.5"),
    ("string tokens", _set(["each_branch", 2, 1], "12"), "each_branch[2][1]", '"12"'),
    ("NaN tokens", _set(["each_branch", 2, 1], float("nan")), "each_branch[2][1]", "nan"),
    ("infinite tokens", _set(["each_branch", 2, 1], float("inf")), "each_branch[2][1]", "inf"),
    ("boolean tokens", _set(["each_branch", 2, 1], True), "each_branch[2][1]", "true"),
    ("zero probe_freq", _set(["probe_freq"], 0), "probe_freq", "positive integer"),
    ("negative probe_freq", _set(["probe_freq"], -500), "probe_freq", "-500"),
    ("null probe answer", _set(["each_branch", 0, 0, 1], None), "each_branch[0][0][1]", "null"),
    ("null final", _set(["each_branch", 1, 2], None), "each_branch[1][2]", "null"),
    ("trace disagrees", _set(["final_answers_trace", 2], "999"), "final_answers_trace[2]", '"999" differs'),
    ("trace too short", _set(["final_answers_trace"], ["1"]), "final_answers_trace", "3 final answers"),
]


@pytest.mark.parametrize("name,mutate,field,words", BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_bad_record_gives_one_line_naming_file_question_and_field(tmp_path, name, mutate, field, words, suffix):
    records = _valid()
    mutate(records)
    path = tmp_path / f"bad{suffix}"
    write_records(records, path)
    with pytest.raises(StoreError) as info:
        load_store(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: question 1: field '{field}': ")
    assert words in msg
    assert (info.value.question, info.value.field) == (1, field)


def test_nan_literal_in_the_file_text_is_rejected(tmp_path):
    path = tmp_path / "nan.json"
    text = json.dumps(_valid()).replace('"probe_freq": 500', '"probe_freq": NaN', 1)
    path.write_text(text)
    with pytest.raises(StoreError, match=r"nan.json: question 0: field 'probe_freq': .*nan"):
        load_store(path)


def test_bad_json_names_file_and_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"gold_answer": "1",\n "probe_freq": }]')
    with pytest.raises(StoreError, match=r"broken.json: invalid JSON at line 2 column 16"):
        load_store(path)


def test_truncated_gzip_names_file(tmp_path):
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(json.dumps(_valid()).encode())[:-20])
    with pytest.raises(StoreError, match=r"cut.json.gz: truncated or corrupt gzip stream"):
        load_store(path)


@pytest.mark.parametrize("top,words", [({"a": 1}, "JSON list of questions"), ([], "no questions"),
                                       ([_record(0), 5], "question 1: expected an object")])
def test_bad_top_level(tmp_path, top, words):
    path = tmp_path / "top.json"
    path.write_text(json.dumps(top))
    with pytest.raises(StoreError, match=words):
        load_store(path)


def test_missing_file_and_unknown_name_are_store_errors(tmp_path):
    with pytest.raises(StoreError, match="no such store file"):
        load_store(tmp_path / "absent.json")
    with pytest.raises(StoreError, match="no such store file"):
        load_store("NoSuchModel/aime24")


def test_odd_but_valid_store_loads_and_round_trips(tmp_path):
    records = [
        {"question": "√2 问题", "gold_answer": "√2", "probe_freq": 250,
         "each_branch": [[["答案 一", "√2", "😀"], 700, "√2"], [[], 30, "x + 1"], [["x + 1"], 0, "答案 一"]],
         "final_answers_trace": ["√2", "x + 1", "答案 一"]},
        {"question": "single branch", "gold_answer": "never said", "probe_freq": 1,
         "each_branch": [[["a b", "a b"], 2, "a b"]], "final_answers_trace": ["a b"]},
    ]
    path = tmp_path / "odd.json.gz"
    write_records(records, path)
    store = load_store(path)
    assert to_records(store) == records
    assert store.probes.shape == (2, 3, 3) and store.n_branches.tolist() == [3, 1]
    assert store.n_probes[0].tolist() == [3, 0, 1] and bool((store.probes[0, 1] == PAD).all())
    assert store.answer(0, int(store.gold[0])) == "√2" and store.answer(1, int(store.gold[1])) == "never said"
    assert int(store.gold[1]) == len(store.vocab[1]) - 1  # a gold nobody answered gets the last id
    assert store.final[1, 1:].tolist() == [PAD, PAD]  # padding branches


def test_records_without_optional_keys_load(tmp_path):
    records = [{k: v for k, v in _record(0).items() if k not in ("question", "final_answers_trace")}]
    path = tmp_path / "minimal.json"
    write_records(records, path)
    store = load_store(path)
    assert store.questions == [""]
    assert to_records(store)[0]["each_branch"] == records[0]["each_branch"]


def test_build_store_vocabulary_order_and_padding():
    records = [_record(0, branches=2), _record(1, branches=4)]
    records[0]["each_branch"][1][0] = []
    store = build_store(copy.deepcopy(records))
    assert store.vocab[0] == ["0", "1", "ERR"]  # finals first, then probe-only answers, gold already present
    assert store.n_final_ids.tolist() == [2, 2]
    assert store.probes.shape == (2, 4, 3) and store.probes[0, 1].tolist() == [PAD] * 3
    assert store.length[0].tolist() == [1200, 1201, 0, 0]
    assert store.probes.dtype == torch.long and to_records(store) == records


def test_compact_rejects_other_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"format": "something-else"}, path)
    with pytest.raises(StoreError, match="not a compact autotts store"):
        load_compact(path)
    path.write_bytes(b"garbage")
    with pytest.raises(StoreError, match="not a compact autotts store"):
        load_compact(path)


@pytest.mark.parametrize("mutate,field", [(_set(["each_branch", 0, 1], -5), "each_branch[0][1]"),
                                          (_set(["probe_freq"], 0), "probe_freq")])
def test_eval_cli_on_a_malformed_store_exits_2_with_one_line(tmp_path, mutate, field):
    """The user-facing path: `autotts eval` prints the loader's one line, no traceback, exit code 2."""
    import subprocess
    import sys

    records = _valid()
    mutate(records)
    path = tmp_path / "bad.json.gz"
    write_records(records, path)
    proc = subprocess.run([sys.executable, "-m", "autotts.cli", "eval", "--store", str(path), "--controller", "sc",
                           "--knob", "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{path}: question 1: field '{field}'" in lines[0]
    assert proc.stdout == ""
