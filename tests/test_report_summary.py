"""Summaries of sweep results: point figures, intervals, SC@64-relative tokens, frontier comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotts.errors import AutottsError
from autotts.evaluate.summary import summarise
from autotts.evaluate.sweep import SettingResult, setting_label

from report_toys import setting, sweep

def test_curves_carry_point_figures_and_intervals_around_them():
    s = summarise(sweep(), store="toy", model="m", dataset="d", resamples=400)
    assert [c.method for c in s.curves] == ["sc", "cmc"]
    sc = s.curve("sc")
    assert sc.knobs == [1, 8, 64]
    assert np.allclose(sc.accuracy.value, [30.0, 50.0, 60.0])
    assert np.all(sc.accuracy.lo <= sc.accuracy.value) and np.all(sc.accuracy.value <= sc.accuracy.hi)
    assert np.all(sc.accuracy.hi - sc.accuracy.lo > 10)  # 40 questions: wide
    assert s.anchor == (60.0, sc.tokens.value[2])


def test_tokens_relative_to_sc64():
    s = summarise(sweep(), resamples=200)
    rel = s.curve("cmc").relative
    assert np.allclose(rel.value, [2e4 / 6.4e5, 2e5 / 6.4e5])
    assert np.allclose(s.curve("sc").relative.lo[2], 1.0) and np.allclose(s.curve("sc").relative.hi[2], 1.0)


def test_reach_and_matched_comparisons():
    s = summarise(sweep(), resamples=200)
    reach = {r.method: r for r in s.reach}
    assert math.isclose(reach["cmc"].value, 2e5 / 6.4e5)  # CMC β=1 matches SC@64's 60 % at 2e5 tokens
    assert math.isclose(reach["sc"].value, 1.0)
    gain = {(m.method, m.baseline): m for m in s.matched}
    # SC@1 (1e4 tokens) is cheaper than CMC's cheapest (2e4): not compared. At SC@8's 8e4 tokens CMC reads
    # 40 + 20/3 (linear in tokens); at SC@64's 6.4e5, above CMC's dearest, CMC β=1's 60 against 60.
    expect = (40 + 20 * (8e4 - 2e4) / (2e5 - 2e4) - 50 + 0.0) / 2
    assert math.isclose(gain[("cmc", "sc")].value, expect) and gain[("cmc", "sc")].points == 2
    assert gain[("cmc", "sc")].lo <= expect <= gain[("cmc", "sc")].hi


def test_rows_are_plain_and_complete():
    s = summarise(sweep(), store="toy", resamples=100)
    rows = s.table_rows()
    assert len(rows) == 5 and rows[2]["setting"] == "SC@64" and rows[2]["tokens_vs_sc64"] == 1.0
    assert {"accuracy_lo", "accuracy_hi", "tokens_lo", "tokens_hi", "tokens_vs_sc64_lo"} <= set(rows[0])
    assert all(isinstance(v, (str, float, int)) for r in rows for v in r.values() if v is not None)
    assert len(s.reach_rows()) == 2 and len(s.matched_rows()) == 2


def test_without_the_anchor_there_is_no_relative_column():
    s = summarise([r for r in sweep() if r.knob != 64], resamples=50)
    assert s.anchor is None and s.reach == [] and s.curve("sc").relative is None
    assert "tokens_vs_sc64" not in s.table_rows()[0]


def test_bad_inputs_are_user_errors():
    with pytest.raises(AutottsError):
        summarise([])
    short = SettingResult("sc", 1, 0.0, 1.0, 3, 0.0, np.zeros(3), np.ones(3))
    with pytest.raises(AutottsError, match="different question sets"):
        summarise([short, setting("sc", 2, 0.5, 1.0)])


def test_setting_labels():
    assert setting_label("sc", 64.0) == "SC@64"
    assert setting_label("parallel_probe", 16.0) == "Parallel-Probe (16)"
    assert setting_label("cmc", 0.5) == "CMC β=0.5"
    assert setting_label("runs/exp1/export/", 0.25) == "export β=0.25"


def test_markdown_formats_never_reached_and_intervals():
    from autotts.evaluate.report_markdown import fmt_ratio, fmt_tokens_ci, md_table
    assert fmt_ratio(0.5712, 0.43, 0.691) == "0.57× [0.43, 0.69]"
    assert fmt_ratio(math.inf, 0.33, math.inf) == "never [0.33, never]"
    assert fmt_tokens_ci(1_054_110.6, 38_800, math.inf) == "1.05M [38.8k, never]"
    assert md_table(["a", "b"], [["x", "1"]]).splitlines() == ["| a | b |", "| --- | --: |", "| x | 1 |"]
