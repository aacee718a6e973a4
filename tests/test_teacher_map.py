"""The export's teacher switch: which β run CMC, the switched curve, and the export that carries it.

`choose_beta_map` keeps the policy only where it beat CMC at CMC(β)'s tokens on every
validation split; a run with `monotone.teacher_switch` exports that map, and the export,
loaded in a fresh process by `autotts eval`, runs each β as the map says.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from train_support import ROOT, SMALL_STORE, beta_switch_weights, export_weights, python, subprocess_env, train_cfg

from autotts.controllers.switch import BetaMap
from autotts.discovery.teacher_map import choose_beta_map, matched_beta, switched_sweeps
from autotts.discovery.train import fit, switch_line
from autotts.discovery.validation import Sweep

GRID = tuple(i / 10 for i in range(11))
CMC_TOKENS = tuple(100.0 * (i + 1) for i in range(11))
CMC_ACC = tuple(50.0 + i for i in range(11))


def _ours(gain_at: dict[int, float], cheaper: float = 0.95) -> Sweep:
    """A policy curve at `cheaper` x CMC's tokens; at its point k, CMC(k)'s accuracy + gain (0 by default)."""
    return Sweep("ours", GRID, tuple(CMC_ACC[k] + gain_at.get(k, 0.0) for k in range(11)),
                 tuple(cheaper * t for t in CMC_TOKENS))


def test_cmc_runs_below_the_first_beta_the_policy_wins_on_every_split_and_again_once_above_its_top() -> None:
    cmc = [Sweep("a", GRID, CMC_ACC, CMC_TOKENS), Sweep("b", GRID, CMC_ACC, CMC_TOKENS)]
    # At CMC(k)'s tokens ours lies between its points k and k + 1 (weight 5(k+1)/95 on k + 1).
    behind_low = {k: (-3.0 if k < 3 else 3.0) for k in range(11)}
    late = {k: (-3.0 if k < 4 else 3.0) for k in range(11)}
    beta_map, rows = choose_beta_map([_ours(behind_low), _ours(late)], cmc, ["aime", "shifted"])
    # split "shifted" is still behind at CMC(0.3): the policy starts at β = 0.4, where both lead
    assert [r["wins"] for r in rows][:5] == [False, False, False, False, True]
    assert list(beta_map.programs) == ["cmc"] * 4 + ["policy"] * 7   # ours' top (+3) stays above CMC's
    start = 0.1 * (500 - 95) / 95                                     # ours' tokens 95(k+1) = CMC(0.4)'s 500
    assert beta_map.inner[4] == pytest.approx(start, abs=1e-6) and beta_map.inner[10] == 1.0
    assert beta_map.inner[7] == pytest.approx(start + (1 - start) * 3 / 6, abs=1e-6)
    assert beta_map.inner[:4] == GRID[:4]                             # CMC points run CMC at their own β
    assert rows[3]["margins"]["shifted"] == pytest.approx(53 + 7 * 20 / 95 - 3 - 53, abs=1e-3)
    assert matched_beta([_ours({})], [94.0]) == 0.0 and matched_beta([_ours({})], [1046.0]) is None
    # every store must spend the target: the dearest store's β, not the mean's
    assert matched_beta([_ours({}), _ours({}, cheaper=0.5)], [500.0, 500.0]) == pytest.approx(0.1 * (500 - 50) / 50)


def test_cmc_runs_again_from_the_first_beta_where_it_is_above_the_policys_top_and_dearer() -> None:
    cmc = [Sweep("a", GRID, CMC_ACC, CMC_TOKENS)]
    gains = {k: 3.0 for k in range(10)}
    gains[10] = -3.0                                                  # ours' top: 57%, CMC(0.7)'s accuracy
    beta_map, _ = choose_beta_map([_ours(gains)], cmc, ["aime"])
    # CMC(0.7) reaches 57% but is cheaper than ours' top (800 < 1045 tokens); CMC(1) is dearer and above it
    assert list(beta_map.programs) == ["policy"] * 10 + ["cmc"] and beta_map.inner[9] == 1.0
    # on two stores CMC(1) must be above ours' top on each: a store where ours' top beats it keeps the policy
    strong = {**gains, 10: 30.0}
    beta_map, _ = choose_beta_map([_ours(gains), _ours(strong)], cmc * 2, ["aime", "aime"])
    assert list(beta_map.programs) == ["policy"] * 11
    # a policy that cannot spend CMC(β_k0)'s tokens (all of it is cheaper than CMC(0)) runs at its top, once
    cheap = Sweep("ours", GRID, tuple(a + 5 for a in CMC_ACC), tuple(0.05 * t for t in CMC_TOKENS))
    beta_map, _ = choose_beta_map([cheap], cmc, ["aime"])
    assert list(beta_map.programs) == ["policy"] + ["cmc"] * 10 and beta_map.inner[0] == 1.0


def test_a_policy_below_cmc_everywhere_is_all_cmc_and_the_switched_curve_takes_each_programs_points() -> None:
    cmc = [Sweep("a", GRID, CMC_ACC, CMC_TOKENS)]
    beta_map, _ = choose_beta_map([_ours({k: -1.0 for k in range(11)}, cheaper=0.9)], cmc, ["aime"])
    assert set(beta_map.programs) == {"cmc"} and beta_map.inner == GRID
    mixed = BetaMap(GRID, ("cmc",) * 5 + ("policy",) * 2 + ("cmc",) * 4, GRID)
    policy = [Sweep("a", (0.4, 0.6), (70.0, 71.0), (555.0, 666.0))]
    got = switched_sweeps(mixed, policy, cmc)[0]
    assert got.accuracy[5:7] == (70.0, 71.0) and got.tokens[5:7] == (555.0, 666.0)
    assert got.accuracy[:5] == CMC_ACC[:5] and got.accuracy[7:] == CMC_ACC[7:]


def _eval(controller: str, betas: str, store: str, seeds: int) -> list[dict]:
    proc = subprocess.run([python(), "-m", "autotts.cli", "eval", "--controller", controller, "--store", store,
                           "--beta", betas, "--seeds", str(seeds), "--json"],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


SMOKE = ("+experiment=smoke", "logger=none", "trainer.progress_bar=false")


@pytest.fixture(scope="module")
def switched(tmp_path_factory):
    """A smoke run with the switch on (its export directory)."""
    return fit(train_cfg(*SMOKE, "monotone.teacher_switch=true"), tmp_path_factory.mktemp("switched")).export_dir


def test_a_run_with_the_switch_exports_its_map_and_eval_reproduces_the_switched_curve(switched) -> None:
    manifest = json.loads((switched / "manifest.json").read_text())
    check = manifest["monotone_check"]
    assert check["switch"]["used"] and manifest["beta_map"] == check["switch"]["beta_map"]
    assert "teacher switch" in switch_line(check["switch"])
    (name, curve), = check["stores"].items()
    rows = _eval(str(switched), ",".join(map(str, check["betas"])), manifest["validation_stores"][0]["spec"],
                 check["seeds"])
    assert [(r["accuracy"], r["tokens"]) for r in rows] == list(zip(curve["accuracy"], curve["tokens"]))


def test_the_script_adds_the_same_switch_to_an_export_made_without_it(switched, tmp_path) -> None:
    plain = fit(train_cfg(*SMOKE), tmp_path / "plain").export_dir
    seeds = json.loads((plain / "manifest.json").read_text())["monotone_check"]["seeds"]
    proc = subprocess.run([python(), "scripts/teacher_switch.py", "--controller", str(plain), "--out",
                           str(tmp_path / "added"), "--seeds", str(seeds)],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    added = json.loads((tmp_path / "added" / "manifest.json").read_text())
    want = json.loads((switched / "manifest.json").read_text())
    assert added["beta_map"] == want["beta_map"]
    assert added["monotone_check"]["stores"] == want["monotone_check"]["stores"]
    again = subprocess.run([python(), "scripts/teacher_switch.py", "--controller", str(tmp_path / "added"), "--out",
                            str(tmp_path / "twice")], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 2 and "has a beta_map already" in again.stderr and "Traceback" not in again.stderr


def test_an_exported_map_runs_cmc_and_the_policy_at_their_own_beta_in_a_fresh_process(tmp_path) -> None:
    plain = export_weights(beta_switch_weights(stop_above=0.7), tmp_path / "plain")
    switched = export_weights(beta_switch_weights(stop_above=0.7), tmp_path / "switched")
    manifest = json.loads((switched / "manifest.json").read_text())
    manifest["beta_map"] = BetaMap((0.0, 0.5, 1.0), ("cmc", "policy", "policy"), (0.2, 0.1, 0.6)).record()
    (switched / "manifest.json").write_text(json.dumps(manifest))
    got = _eval(str(switched), "0,1", SMALL_STORE, 3)
    want = _eval("cmc", "0.2", SMALL_STORE, 3) + _eval(str(plain), "0.6", SMALL_STORE, 3)
    assert [(r["accuracy"], r["tokens"], r["seq_tokens"]) for r in got] == \
        [(r["accuracy"], r["tokens"], r["seq_tokens"]) for r in want]
    explain = subprocess.run([python(), "-m", "autotts.cli", "explain", str(switched), "--store", SMALL_STORE,
                              "--seeds", "1"], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                             timeout=300)
    assert explain.returncode == 0, explain.stderr[-2000:]
    assert "β=0: CMC(0.2), β=0.5: policy at β=0.1" in explain.stdout and "stop:" in explain.stdout
    manifest["beta_map"] = {"betas": [0, 1], "programs": ["policy", "sc"], "inner": [0, 1]}
    (switched / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run([python(), "-m", "autotts.cli", "eval", "--controller", str(switched),
                           "--store", SMALL_STORE],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "beta_map.programs" in proc.stderr and "Traceback" not in proc.stderr
