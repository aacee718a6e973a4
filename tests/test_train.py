"""`python train.py +experiment=smoke` end to end (Hydra, Lightning, EvoTorch, W&B offline, export),
exact resume from a checkpoint, and one-line errors for bad configs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from train_support import ROOT, python, subprocess_env, train_cfg
from wandb_records import history

from autotts.artifact.manifest import FORMAT, REQUIRED, feature_groups
from autotts.discovery.knob import knob_rule
from autotts.discovery.search import center_of, load_searcher
from autotts.discovery.train import fit
from autotts.store import load_store

SMOKE = ["+experiment=smoke", "trainer.progress_bar=false"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One CLI smoke run shared by the tests below (the run is the expensive part)."""
    run_dir = tmp_path_factory.mktemp("smoke")
    proc = subprocess.run([python(), "train.py", *SMOKE, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, run_dir


def test_smoke_run_prints_the_export_dir_last_and_writes_a_complete_manifest(smoke) -> None:
    proc, run_dir = smoke
    export = run_dir / "export"
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == str(export)
    assert "4 generations in" in lines[-5]
    assert ": monotone; β=1 " in lines[-4] or "NOT monotone" in lines[-4]
    assert lines[-3].startswith("  synthetic mean: worst β step")
    assert lines[-2].startswith("  knob rule (tokens rise, no β step or β=1 loses > 0.5 points; ")
    assert (export / "controller.pt").is_file()
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["format"] == FORMAT and set(REQUIRED) <= set(manifest)
    assert manifest["features"] == feature_groups() and manifest["delta"] == 500
    cfg = train_cfg(*SMOKE)
    assert [s["spec"] for s in manifest["training_stores"]] == cfg["store"]["search"]
    for record in manifest["training_stores"] + manifest["validation_stores"]:
        assert record["fingerprint"] == load_store(record["spec"]).fingerprint
    assert [v["generation"] for v in manifest["validation_curve"]] == [0, 2, 4]
    scores = [v["score"] for v in manifest["validation_curve"]]
    assert manifest["best"]["validation_score"] == max(scores)
    assert manifest["best"]["generation"] == scores.index(max(scores)) * 2
    assert manifest["guards"] == [{"name": g["name"], "params": dict(g["params"])} for g in cfg["env"]["guards"]]
    mono = manifest["monotone_check"]
    assert len(mono["betas"]) == 11 and isinstance(mono["monotone"], bool)
    for sweep in mono["stores"].values():
        tokens = sweep["tokens"]
        assert sweep["monotone"] == all(a <= b for a, b in zip(tokens, tokens[1:]))
    knob = mono["knob"]  # the knob rule, recomputed here from the recorded sweep
    assert knob == knob_rule(mono["betas"], mono["stores"], {name: "synthetic" for name in mono["stores"]})
    assert lines[-2].endswith("holds") == knob["holds"] and isinstance(manifest["best"]["validation_knob"], bool)
    assert (run_dir / "plots" / "curve.png").stat().st_size > 1000


def test_wandb_offline_run_has_the_logged_keys(smoke) -> None:
    _, run_dir = smoke
    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    rows = history(files[0])
    train = [r for r in rows if "train/fitness_mean" in r]
    assert [r["trainer/global_step"] for r in train] == [0, 1, 2, 3]
    for key in ("train/fitness_max", "train/accuracy", "train/tokens_rel", "train/stdev", "train/monotone_drop"):
        assert all(key in r for r in train), key
    val = [r for r in rows if "val/score" in r]
    assert [r["trainer/global_step"] for r in val] == [0, 2, 4] and all("val/tokens@beta=0.5" in r for r in val)
    keys = {k for r in rows for k in r}
    assert {"val/beta_sweep/_type", "final/monotone", "final/monotone_sweep/_type", "final/curve/_type"} <= keys
    assert next(r for r in rows if "final/curve/_type" in r)["final/curve/format"] == "png"


def test_export_loads_with_plain_torch_in_a_process_without_autotts(smoke, tmp_path) -> None:
    _, run_dir = smoke
    code = (  # the venv has autotts installed (editable): block it, so any import of it would fail
        "import sys\nsys.modules['autotts'] = None\nimport torch\n"
        f"m = torch.jit.load({str(run_dir / 'export' / 'controller.pt')!r})\n"
        "ep, br = m(torch.zeros(5, 11), torch.zeros(5, 7, 6), torch.full((5,), 0.5))\n"
        "v = m.vote(torch.zeros(5, 7, 3), torch.zeros(5, 7, 2), torch.zeros(5, 7, dtype=torch.bool))\n"
        "print(tuple(ep.shape), tuple(br.shape), tuple(v.shape))\n")
    proc = subprocess.run([python(), "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "(5, 3, 2) (5, 7, 3, 2) (5, 7)"
    blocked = subprocess.run([python(), "-I", "-c", "import sys\nsys.modules['autotts'] = None\nimport autotts"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert blocked.returncode != 0 and "import of autotts halted" in blocked.stderr  # the block is real


def test_eval_of_the_export_reproduces_the_validation_curve(smoke) -> None:
    """`autotts eval --controller EXPORT` on the validation store = the in-memory validation of the best weights."""
    _, run_dir = smoke
    manifest = json.loads((run_dir / "export" / "manifest.json").read_text())
    best = next(v for v in manifest["validation_curve"] if v["generation"] == manifest["best"]["generation"])
    store = manifest["validation_stores"][0]["spec"]
    betas = ",".join(str(p["beta"]) for p in best["curve"])
    proc = subprocess.run([python(), "-m", "autotts.cli", "eval", "--controller", str(run_dir / "export"), "--store",
                           store, "--beta", betas, "--seeds", str(manifest["validation_protocol"]["seeds"]), "--json"],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["beta"], r["accuracy"], r["tokens"]) for r in rows] == \
        [(p["beta"], p["accuracy"], p["tokens"]) for p in best["curve"]]


def test_resume_from_a_checkpoint_reproduces_the_uninterrupted_run(smoke, tmp_path) -> None:
    """Two generations, then resume to four: every generation's fitness and the final centre are bitwise equal."""
    _, run_dir = smoke
    full = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["autotts"]
    assert full["generation"] == 4
    cfg = train_cfg(*SMOKE, "logger=none")
    first = fit(dict(cfg, trainer=dict(cfg["trainer"], generations=2)), tmp_path / "first")
    assert first.generations == 2
    resumed = fit(dict(cfg, ckpt_path=str(first.checkpoint)), tmp_path / "resumed")
    assert resumed.generations == 4
    assert [h["fitness"] for h in resumed.history] == [h["fitness"] for h in full["history"]]
    assert [h["generation"] for h in resumed.history] == [0, 1, 2, 3]
    again = torch.load(resumed.checkpoint, weights_only=False)["autotts"]
    assert torch.equal(center_of(load_searcher(again["searcher"])), center_of(load_searcher(full["searcher"])))
    assert torch.equal(again["best"], full["best"])


def test_restarts_start_each_segment_from_its_own_start_and_resume_exactly(tmp_path) -> None:
    """search.restarts=2 over 4 generations: generations 2-3 search around restart 1's start (its own
    imitation seed), the validations say which segment they scored, and a run stopped at the boundary
    resumes to the same generations."""
    from autotts.discovery.settings import settings_from
    from autotts.discovery.train import _load_stores, _start_weights
    from autotts.discovery.search import restart_seed

    cfg = train_cfg(*SMOKE, "logger=none", "search.restarts=2", "search.center_lr=1e-9", "imitation.enabled=true",
                    "imitation.steps=20", "imitation.episodes_per_store=8")
    full = fit(cfg, tmp_path / "full")
    state = torch.load(full.checkpoint, weights_only=False)["autotts"]
    assert [(v["generation"], v["restart"]) for v in state["validations"]] == [(0, 0), (2, 0), (4, 1)]
    settings = settings_from(cfg)
    search, _ = _load_stores(settings)
    first, second = _start_weights(settings, search), _start_weights(settings, search, restart_seed(settings.seed, 1))
    center = center_of(load_searcher(state["searcher"]))  # the centre hardly moves (center_lr 1e-9)
    assert torch.allclose(center, second, atol=1e-5) and not torch.allclose(center, first, atol=1e-3)
    stopped = fit(dict(cfg, trainer=dict(cfg["trainer"], generations=2)), tmp_path / "stopped")
    resumed = fit(dict(cfg, ckpt_path=str(stopped.checkpoint)), tmp_path / "resumed")
    again = torch.load(resumed.checkpoint, weights_only=False)["autotts"]
    assert [h["fitness"] for h in again["history"]] == [h["fitness"] for h in state["history"]]


def _one_line_error(*args: str) -> str:
    proc = subprocess.run([python(), "train.py", *args], cwd=ROOT, env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, (proc.stdout[-1000:], proc.stderr[-2000:])
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("train.py: error: ")
    return err


@pytest.mark.parametrize("args, expected", [
    (["foo=1"], "Could not override 'foo'"),
    (["store=nope"], "Could not find 'store/nope'"),
    (["+experiment=smoke", "search.popsize=lots"], "search.popsize='lots': expected an integer"),
    (["+experiment=smoke", "store.search=[no-such-model/aime24]"], "no-such-model/aime24: no such store file"),
    (["+experiment=smoke", "ckpt_path=train.py"], "ckpt_path=train.py: not a checkpoint"),
    (["+experiment=math", "store.hold_out=Qwen3-9B"], "store.hold_out='Qwen3-9B': expected one of Qwen3-0.6B"),
    (["+experiment=math", "store.valid_split=aime24"], "store.valid_split=aime24: must differ"),
    (["+experiment=math_scratch", "imitation.teachers=[asc]"], "imitation.teachers=['asc']: expected"),
    (["+experiment=math", "objective.reference=asc"], "objective.reference='asc': expected ''"),
    (["+experiment=smoke", "logger=-3"], "logger=-3: Config group override must be a string"),
])
def test_bad_config_is_one_line_and_exit_code_2(args, expected) -> None:
    assert expected in _one_line_error(*args)


def test_time_budget_stops_in_time_to_validate_and_export_and_the_run_resumes_exactly(smoke, tmp_path) -> None:
    """A budget stop mid-way between validations still validates and exports; resuming it matches the full run."""
    _, run_dir = smoke
    full = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["autotts"]
    cfg = train_cfg(*SMOKE, "logger=none", "trainer.max_minutes=0.0001", "trainer.reserve_minutes=0")
    stopped = fit(cfg, tmp_path / "stopped")
    assert stopped.generations == 1 and [v["generation"] for v in stopped.validations] == [0, 1]
    assert (stopped.export_dir / "controller.pt").is_file()
    resumed = fit(dict(cfg, ckpt_path=str(stopped.checkpoint), trainer=dict(cfg["trainer"], max_minutes=0)),
                  tmp_path / "resumed")
    assert [h["fitness"] for h in resumed.history] == [h["fitness"] for h in full["history"]]
    assert [v["generation"] for v in resumed.validations] == [0, 1, 2, 4]
    elapsed = [v["elapsed"] for v in resumed.validations]  # the resumed clock goes on from the stopped run's
    assert elapsed == sorted(elapsed) and resumed.seconds > stopped.seconds, (elapsed, stopped.seconds)
    finished = fit(dict(cfg, ckpt_path=str(resumed.checkpoint), trainer=dict(cfg["trainer"], max_minutes=0)),
                   tmp_path / "finished")  # nothing left to search: validate-once guard, export again
    assert finished.generations == 4 and len(finished.history) == 4 and len(finished.validations) == 4


@pytest.mark.parametrize("algorithm", ["snes", "cmaes", "ga"])
def test_every_search_algorithm_runs_validates_and_exports(tmp_path, algorithm) -> None:
    cfg = train_cfg(*SMOKE, "logger=none", f"search={algorithm}", "trainer.generations=1", "trainer.validate_every=1")
    result = fit(cfg, tmp_path)
    assert result.generations == 1 and [v["generation"] for v in result.validations] == [0, 1]
    manifest = json.loads((result.export_dir / "manifest.json").read_text())
    assert manifest["search"]["algorithm"] == algorithm
