"""scripts/compare_cmc.py end to end on small synthetic stores: CMC against itself is a zero paired difference."""

from __future__ import annotations

import pytest
from script_support import load_script

STORES = ["synthetic:questions=6,branches=32,seed=1", "synthetic:questions=6,branches=32,seed=2"]


def test_cmc_against_itself_dominates_with_zero_width_and_misses_the_margin(capsys):
    rc = load_script("compare_cmc").main(["--controller", "cmc", "--stores", *STORES, "--seeds", "3",
                                          "--resamples", "100"])
    out = capsys.readouterr().out
    assert rc == 1  # +0.00 is not the +1.0 margin
    assert "dominance: ours >= CMC(β) at CMC(β)'s tokens for every β -> PASS" in out
    assert "margin: at CMC(0.5)'s" in out and " +0.00 [ +0.00,  +0.00] >= +1.0 -> FAIL" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:3] in {f"{b / 10:.1f}"[:3] for b in range(11)}]
    assert len(rows) == 11 and all(r[1] == r[3] and r[2] == r[4] for r in rows)  # ours' curve is CMC's
    assert "lower 95% bound > -1.0 at every CMC β, least +0.00 -> PASS" in out


def test_noninferiority_line_is_information_and_a_superiority_margin_fails_everywhere(capsys):
    argv = ["--controller", "cmc", "--stores", STORES[0], "--seeds", "2", "--resamples", "50"]
    rc = load_script("compare_cmc").main([*argv, "--noninferiority", "-0.5"])
    out = capsys.readouterr().out
    assert rc == 1  # from the margin line (+0.00 < +1.0), as without the option
    assert "lower 95% bound > +0.5 at every CMC β, least +0.00 -> FAIL (at β = 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, " \
           "0.7, 0.8, 0.9, 1)" in out


@pytest.mark.parametrize("argv, words", [(["--split", "hmmt"], "--split 'hmmt'"),
                                         (["--stores", "nope.json"], "nope.json")])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    assert load_script("compare_cmc").main(["--controller", "cmc", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
