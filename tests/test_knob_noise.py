"""scripts/knob_noise.py on a small synthetic store: the gap it prints is the sweep's, and bad input is one line."""

from __future__ import annotations

import re

from script_support import load_script

STORE = "synthetic:questions=6,branches=32,seed=1"


def test_the_gap_over_all_seeds_is_the_difference_of_the_two_betas_accuracies(capsys):
    from autotts.controllers.baselines import make_baseline
    from autotts.env.episodes import reference_episodes
    from autotts.env.rollout import rollout
    from autotts.store.io import load_store
    assert load_script("knob_noise").main(["--controller", "cmc", "--stores", STORE, "--betas", "0.2",
                                           "--seeds", "6", "--check-seeds", "3"]) == 0
    line = capsys.readouterr().out.strip()
    got = re.search(r"gap ([+-][\d.]+) ± ([\d.]+) \(3 seeds\), ([+-][\d.]+) ± ([\d.]+) \(6 seeds\)", line)
    store = load_store(STORE)
    ep = reference_episodes(store, seeds=6)
    acc = {b: float(rollout(store, ep, make_baseline("cmc", b)).correct.double().mean() * 100) for b in (0.2, 1.0)}
    assert abs(float(got.group(3)) - (acc[1.0] - acc[0.2])) < 0.006       # printed with two decimals
    first = reference_episodes(store, seeds=3)                             # the first 3 shuffles of the 6
    acc3 = {b: float(rollout(store, first, make_baseline("cmc", b)).correct.double().mean() * 100) for b in (0.2, 1.0)}
    assert abs(float(got.group(1)) - (acc3[1.0] - acc3[0.2])) < 0.006


def test_bad_betas_and_seed_counts_are_one_line_errors(capsys):
    assert load_script("knob_noise").main(["--controller", "cmc", "--stores", STORE, "--betas", "1.0"]) == 2
    assert load_script("knob_noise").main(["--controller", "cmc", "--stores", STORE, "--check-seeds", "200"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --betas '1.0': expected comma-separated numbers in [0, 1)",
                   "error: --check-seeds 200: expected 1 .. --seeds (100)"]
