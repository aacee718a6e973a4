"""Property tests of the store loader: valid records round-trip exactly; one corruption -> the right error."""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotts.errors import StoreError
from autotts.store import load_store, to_records
from autotts.store.autotts_json import write_records

# a small pool (so answers repeat, as real probes do) with unicode, spaces and empty strings
answers = (st.sampled_from(["0", "1", "42", "ERR", "No", "x + 1", "√2", "答案", "", " ", "\\frac{1}{2}"])
           | st.text(max_size=6))
branch = st.tuples(st.lists(answers, max_size=6), st.integers(0, 10**7), answers).map(list)


@st.composite
def record(draw) -> dict:
    each = draw(st.lists(branch, min_size=1, max_size=6))
    return {"question": draw(st.text(max_size=10)), "gold_answer": draw(answers),
            "probe_freq": draw(st.integers(1, 2000)), "each_branch": each,
            "final_answers_trace": [b[2] for b in each]}


records = st.lists(record(), min_size=1, max_size=4)
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(recs: list[dict], suffix: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"store{suffix}"
        write_records(recs, path)
        return load_store(path)


@PROPS
@given(recs=records, suffix=st.sampled_from([".json", ".json.gz"]))
def test_valid_records_round_trip_exactly(recs, suffix):
    store = _load(recs, suffix)
    assert to_records(store) == recs
    for q, rec in enumerate(recs):
        assert store.vocab[q][int(store.gold[q])] == rec["gold_answer"]
        assert int(store.n_final_ids[q]) == len({b[2] for b in rec["each_branch"]})


# corruptions of one question: (field it breaks, how); `j` picks a branch, `k` a probe
def _corruptions(rec: dict, j: int, k: int) -> list[tuple[str, callable]]:
    def put(path, value):
        def apply(r):
            target = r
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        return apply

    def drop(key):
        return lambda r: r.pop(key)

    def tweak_trace(r):
        r["final_answers_trace"][j] = r["final_answers_trace"][j] + "#"

    out = [
        ("gold_answer", drop("gold_answer")), ("gold_answer", put(["gold_answer"], None)),
        ("gold_answer", put(["gold_answer"], 3)), ("probe_freq", drop("probe_freq")),
        ("probe_freq", put(["probe_freq"], 0)), ("probe_freq", put(["probe_freq"], -1)),
        ("probe_freq", put(["probe_freq"], 2.5)), ("probe_freq", put(["probe_freq"], "500")),
        ("each_branch", drop("each_branch")), ("each_branch", put(["each_branch"], [])),
        ("each_branch", put(["each_branch"], {"a": 1})), ("question", put(["question"], 5)),
        (f"each_branch[{j}]", put(["each_branch", j], "oops")),
        (f"each_branch[{j}]", put(["each_branch", j], [[], 1])),
        (f"each_branch[{j}][0]", put(["each_branch", j, 0], "a")),
        (f"each_branch[{j}][1]", put(["each_branch", j, 1], -1)),
        (f"each_branch[{j}][1]", put(["each_branch", j, 1], 12.5)),
        (f"each_branch[{j}][1]", put(["each_branch", j, 1], "12")),
        (f"each_branch[{j}][1]", put(["each_branch", j, 1], math.nan)),
        (f"each_branch[{j}][1]", put(["each_branch", j, 1], math.inf)),
        (f"each_branch[{j}][1]", put(["each_branch", j, 1], None)),
        (f"each_branch[{j}][2]", put(["each_branch", j, 2], 7)),
        (f"final_answers_trace[{j}]", tweak_trace),
        ("final_answers_trace", put(["final_answers_trace"], rec["final_answers_trace"] + ["extra"])),
    ]
    plist = rec["each_branch"][j][0]
    if plist:
        out.append((f"each_branch[{j}][0][{k % len(plist)}]", put(["each_branch", j, 0, k % len(plist)], None)))
    return out


@PROPS
@given(recs=records, data=st.data())
def test_one_corruption_names_its_question_and_field(recs, data):
    qi = data.draw(st.integers(0, len(recs) - 1), label="question")
    j = data.draw(st.integers(0, len(recs[qi]["each_branch"]) - 1), label="branch")
    k = data.draw(st.integers(0, 5), label="probe")
    field, corrupt = data.draw(st.sampled_from(_corruptions(recs[qi], j, k)), label="corruption")
    bad = copy.deepcopy(recs)
    corrupt(bad[qi])
    try:
        _load(bad, ".json")
    except StoreError as err:
        assert (err.question, err.field) == (qi, field), str(err)
        assert f": question {qi}: field '{field}': " in str(err) and "\n" not in str(err)
    else:
        raise AssertionError(f"no StoreError for {field} corruption of question {qi}")
