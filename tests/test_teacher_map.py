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


def test_the_policy_runs_only_where_it_beat_cmc_on_every_split_and_at_cmc_tokens() -> None:
    cmc = [Sweep("a", GRID, CMC_ACC, CMC_TOKENS), Sweep("b", GRID, CMC_ACC, CMC_TOKENS)]
    ours = [_ours({k: 3.0 for k in range(11)}), _ours({k: (-3.0 if k in (6, 7) else 3.0) for k in range(11)})]
    beta_map, rows = choose_beta_map(ours, cmc, ["aime", "shifted"])
    # At CMC(k)'s tokens ours lies between its points k and k + 1 (weight 5(k+1)/95 on k + 1): split "shifted"
    # loses at CMC(0.6) (both neighbours -3) and CMC(0.7) (54 + 7 x 40/95 < 57); CMC(1)'s tokens are beyond ours.
    assert list(beta_map.programs) == ["policy"] * 6 + ["cmc"] * 2 + ["policy"] * 2 + ["cmc"]
    assert rows[6]["margins"]["shifted"] < 0 < rows[6]["margins"]["aime"]
    assert rows[5]["margins"]["shifted"] == pytest.approx(3.0 - 5.0 * 30 / 95, abs=1e-4)  # CMC rises 1 a step
    # inner β: ours' mean tokens 95(k+1) equal CMC(0.3)'s 400 at (400 - 95) / 95 grid steps
    assert beta_map.inner[3] == pytest.approx(0.1 * 305 / 95, abs=1e-6)
    assert beta_map.inner[6] == 0.6 and beta_map.inner[10] == 1.0      # CMC points run CMC at their own β
    assert matched_beta(ours, 95.0) == 0.0 and matched_beta(ours, 94.0) is None


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
    proc = subprocess.run([python(), "-m", "autotts.cli", "eval", "--controller", str(switched), "--store", SMALL_STORE],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "beta_map.programs" in proc.stderr and "Traceback" not in proc.stderr
