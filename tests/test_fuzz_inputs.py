"""Fuzz every kind of input file a user hands autotts: each command works or exits 2 with one line.

Valid files of each kind (replay store JSON and compact .pt, questions JSONL, an export's
manifest.json, controller.pt (TorchScript) and controller.pt2 (torch.export), a discovery checkpoint,
train.py's overrides) are mutated by
hypothesis (tests/fuzz_mutations.py: flipped types, deleted and duplicated keys, huge,
negative and non-finite numbers, truncation, random bytes) and handed to the real command,
in-process: ``autotts.cli.main`` and train.py's `run_config`. A mutated input must either work
(exit 0) or give exit code 2 and exactly one stderr line naming the file (or the setting);
any other exception fails the test. The last test prints how many inputs of each kind were
tried and how they ended; a few real subprocesses show that no traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch
from fuzz_mutations import BYTE_OPS, VALUES, byte_damage, json_mutation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from online_support import write_questions
from train_support import ROOT, export_weights, python, subprocess_env, train_cfg

from autotts.cli import main as cli
from autotts.controllers.learned import DEFAULT_GUARDS, GuardSpec
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.discovery.overrides import check_overrides
from autotts.discovery.train import run_config
from autotts.store import save_compact, to_records
from autotts.store.synthetic import synthetic_store

COUNTS: dict[str, Counter] = {}
FUZZ = dict(derandomize=True, deadline=None, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                   HealthCheck.data_too_large, HealthCheck.filter_too_much])
EVAL_STORE = "synthetic:questions=2,branches=8,seed=3"
MICRO = ["+experiment=smoke", "trainer.generations=1", "trainer.validate_every=1", "trainer.progress_bar=false",
         "logger=none", "store.search=['synthetic:questions=2,branches=8,seed=1']",
         "store.validation=['synthetic:questions=2,branches=8,seed=101']", "search.popsize=2",
         "objective.episodes_per_store=2", "objective.betas=1", "validation.betas=[0.5]", "validation.seeds=1",
         "monotone.seeds=1", "env.guards.4.params.r=12"]
# An error names a field, a setting, a question or a line: field 'x', question 3, file:2:, key=value, a[1][0].
NAMES_FIELD = re.compile(r"field '|question \d+|:\d+:|[\w.]+=|\w\[\d+\]|'\w+'|\bguard|format|JSON|gzip|UTF-8|"
                         r"compact|checkpoint|no such|empty|no questions")


def handled(kind: str, rc: int, err: str, names: tuple[str, ...], field: bool = True) -> None:
    """Count the outcome; a refusal must be exit 2 and one line that names the input (`names`) and, for an
    edit of its structure (`field`), the field or setting."""
    COUNTS.setdefault(kind, Counter())["inputs"] += 1
    if rc == 0:
        COUNTS[kind]["worked"] += 1
        return
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err[-2000:])
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert any(n in lines[0] for n in names), (names, lines[0])
    assert not field or NAMES_FIELD.search(lines[0]), lines[0]
    COUNTS[kind]["refused (exit 2, one line)"] += 1


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli(argv)
    return rc, capsys.readouterr().err


def run_train(capsys, overrides: list[str], run_dir: Path, **extra: object) -> tuple[int, str]:
    """train.py in-process: the override check, then `run_config` (what Hydra's entry calls)."""
    capsys.readouterr()
    try:
        check_overrides(str(ROOT / "conf"), "config", overrides)
    except SystemExit as stop:
        return int(stop.code), capsys.readouterr().err
    rc = run_config({**train_cfg(*overrides), **extra}, run_dir)
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def store_doc() -> list:
    return to_records(synthetic_store(questions=2, branches=6, seed=5))


@pytest.fixture(scope="module")
def export(work) -> Path:
    guards = DEFAULT_GUARDS[:-1] + (GuardSpec("max_rounds", {"r": 12}),)
    return export_weights(initial_weights(PolicyShape(), seed=3, scale=0.5), work / "export", guards=guards)


@pytest.fixture(scope="module")
def checkpoint(work) -> Path:
    return _micro_run(work / "first")


def _micro_run(run_dir: Path) -> Path:
    assert run_config(train_cfg(*MICRO), run_dir) == 0
    return run_dir / "checkpoints" / "last.ckpt"


# ---- replay stores ------------------------------------------------------------------------------

@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_replay_store_json(data, store_doc, work, capsys) -> None:
    op, path, raw = data.draw(json_mutation(store_doc))
    file = work / "store.json"
    file.write_bytes(raw)
    rc, err = run_cli(capsys, ["eval", "--store", str(file), "--controller", "sc,cmc", "--knob", "4",
                               "--beta", "0.5", "--seeds", "2"])
    handled("replay store JSON", rc, err, (str(file),), op not in BYTE_OPS)


@settings(max_examples=30, **FUZZ)
@given(data=st.data())
def test_replay_store_compact(data, work, capsys) -> None:
    store = synthetic_store(questions=2, branches=6, seed=5)
    file = work / "store.pt"
    save_compact(store, file)
    payload = torch.load(file, weights_only=True)
    how = data.draw(st.sampled_from(["bytes", "tensor value", "tensor dtype", "tensor shape", "delete", "type"]))
    if how == "bytes":
        file.write_bytes(data.draw(byte_damage(file.read_bytes())))
    else:
        key = data.draw(st.sampled_from(sorted(payload["tensors"]) + ["vocab", "questions", "meta", "format"]))
        tensors = payload["tensors"]
        if key in tensors and how == "tensor value":
            flat = tensors[key].reshape(-1).to(torch.int64)
            flat[data.draw(st.integers(0, flat.numel() - 1))] = data.draw(
                st.sampled_from([-(2**40), -7, -2, -1, 0, 10**6, 2**31 - 1, 2**40, 10**13]))
            tensors[key] = flat.reshape(tensors[key].shape)
        elif key in tensors and how == "tensor dtype":
            tensors[key] = tensors[key].to(data.draw(st.sampled_from([torch.float32, torch.bool, torch.int8])))
        elif key in tensors and how == "tensor shape":
            tensors[key] = tensors[key].reshape(-1)[: max(1, tensors[key].numel() - 1)]
        elif how == "delete":
            (tensors if key in tensors else payload).pop(key)
        else:
            (tensors if key in tensors else payload)[key] = data.draw(st.sampled_from(VALUES))
        torch.save(payload, file)
    rc, err = run_cli(capsys, ["eval", "--store", str(file), "--controller", "sc", "--knob", "4", "--seeds", "2"])
    handled("replay store .pt", rc, err, (str(file),), how != "bytes")


# ---- questions JSONL ----------------------------------------------------------------------------

@settings(max_examples=24, **FUZZ)
@given(data=st.data())
def test_questions_jsonl(data, work, model_dir, capsys) -> None:
    questions = [{"question": "What is 2 + 3 ?", "gold_answer": "5"}, {"question": "Half of 1 ?", "answer": 0.5}]
    line = data.draw(st.integers(0, len(questions) - 1))
    op, path, raw = data.draw(json_mutation(questions[line]))
    file = work / "questions.jsonl"
    text = [json.dumps(q).encode() for q in questions]
    text[line] = raw.replace(b"\n", b" ")
    file.write_bytes(b"\n".join(text) + b"\n")
    small = ["--backend", "transformers", "--model", str(model_dir), "--questions", str(file), "--n", "2",
             "--delta", "8", "--max-tokens", "16"]
    if data.draw(st.booleans()):
        argv = ["run", "--controller", "sc:2", *small]
    else:
        out = work / "collected.json"
        out.unlink(missing_ok=True)
        argv = ["collect", *small, "--out", str(out), "--quiet"]
    rc, err = run_cli(capsys, argv)
    handled("questions JSONL", rc, err, (str(file),), op not in BYTE_OPS)


# ---- an export: manifest.json and controller.pt ---------------------------------------------------

@settings(max_examples=50, **FUZZ)
@given(data=st.data())
def test_export_manifest(data, export, capsys) -> None:
    manifest_file = export / "manifest.json"
    good = manifest_file.read_bytes()
    op, path, raw = data.draw(json_mutation(json.loads(good)))
    try:
        manifest_file.write_bytes(raw)
        rc, err = run_cli(capsys, ["eval", "--controller", str(export), "--store", EVAL_STORE, "--beta", "0.5",
                                   "--seeds", "1"])
    finally:
        manifest_file.write_bytes(good)
    handled("manifest.json", rc, err, (str(manifest_file), str(export)), op not in BYTE_OPS)


def _foreign_module(kind: str) -> torch.jit.ScriptModule:
    """TorchScript files that are not our controller: another network, or ours from a build with other features."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script's deprecation note
        return torch.jit.script(torch.nn.Linear(3, 2) if kind == "linear" else _Other())


class _Other(torch.nn.Module):
    """A controller-like module from a build whose heads have other shapes."""

    def forward(self, pool_x: torch.Tensor, branch_x: torch.Tensor, beta: torch.Tensor):
        return pool_x[:, :3], branch_x

    @torch.jit.export
    def vote(self, completed_x: torch.Tensor, live_x: torch.Tensor, finished: torch.Tensor) -> torch.Tensor:
        return completed_x.sum(2)


def _fuzz_program_file(data, capsys, export: Path, name: str, hows: list[str], foreign) -> None:
    """Damage `export/name` one way (`hows`; other than bytes/empty, `foreign(how, file)` writes a program
    that is not our controller), evaluate the export, restore the file, and count the outcome."""
    program_file = export / name
    good = program_file.read_bytes()
    how = data.draw(st.sampled_from(hows))
    try:
        if how == "bytes":
            program_file.write_bytes(data.draw(byte_damage(good)))
        elif how == "empty":
            program_file.write_bytes(b"")
        else:
            foreign(how, program_file)
        rc, err = run_cli(capsys, ["eval", "--controller", str(export), "--store", EVAL_STORE, "--beta", "0.5",
                                   "--seeds", "1"])
    finally:
        program_file.write_bytes(good)
    handled(name, rc, err, (str(program_file), str(export)), field=False)


@settings(max_examples=16, **FUZZ)
@given(data=st.data())
def test_export_controller_pt(data, export_pt_only, capsys) -> None:
    """TorchScript, in an export without a .pt2 (a .pt2 beside it would be loaded instead)."""
    _fuzz_program_file(data, capsys, export_pt_only, "controller.pt", ["bytes", "bytes", "linear", "other", "empty"],
                       lambda how, file: _foreign_module(how).save(str(file)))


@pytest.fixture(scope="module")
def export_pt_only(export, work) -> Path:
    """The same export as written before torch.export: a manifest without 'files', and only controller.pt."""
    out = work / "export_pt_only"
    out.mkdir()
    manifest = json.loads((export / "manifest.json").read_text())
    manifest.pop("files", None)
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "controller.pt").write_bytes((export / "controller.pt").read_bytes())
    return out


class _Linear(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2] * 2


@settings(max_examples=16, **FUZZ)
@given(data=st.data())
def test_export_controller_pt2(data, export, capsys) -> None:
    """The torch.export program, which eval/run load first: damaged bytes, empty, or another program."""
    _fuzz_program_file(data, capsys, export, "controller.pt2", ["bytes", "bytes", "bytes", "other", "empty"],
                       lambda how, file: torch.export.save(torch.export.export(_Linear(), (torch.zeros(2, 3),)),
                                                           str(file)))


# ---- train.py: checkpoints and overrides --------------------------------------------------------

@settings(max_examples=16, **FUZZ)
@given(data=st.data())
def test_checkpoint(data, checkpoint, work, capsys) -> None:
    file = work / "mutated.ckpt"
    how = data.draw(st.sampled_from(["bytes", "bytes", "state field", "delete", "not ours"]))
    if how == "bytes":
        file.write_bytes(data.draw(byte_damage(checkpoint.read_bytes())))
    else:
        ckpt = torch.load(checkpoint, weights_only=False)
        if how == "not ours":
            ckpt = data.draw(st.sampled_from([{"state_dict": {}}, [1, 2], {"autotts": "x"}]))
        else:
            state = ckpt["autotts"]
            target, key = data.draw(st.sampled_from([(state, k) for k in state] + [(ckpt, k) for k in
                                                                                  ("loops", "epoch", "state_dict")]))
            if how == "delete":
                del target[key]
            else:
                target[key] = data.draw(st.sampled_from(VALUES + (b"not a pickle", torch.zeros(3))))
        torch.save(ckpt, file)
    key = data.draw(st.sampled_from(["ckpt_path", "init"]))
    run_dir = work / f"ckpt-run-{COUNTS.get('checkpoint', Counter())['inputs']}"
    rc, err = run_train(capsys, MICRO, run_dir, **{key: str(file)})
    handled("checkpoint", rc, err, (str(file),), how != "bytes")


def _leaves(cfg: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out


BAD_OVERRIDES = ("-3", "abc", "nan", "inf", "-inf", "1e30", "1000000000000000000000000000000", "null", "[]", "{}",
                 "true", "''", "0", "-1", "[1,abc]", "{a:1}")


@settings(max_examples=32, **FUZZ)
@given(data=st.data())
def test_hydra_overrides(data, work, capsys) -> None:
    keys = sorted(k for k in _leaves(train_cfg(*MICRO)) if not k.startswith("hydra"))
    how = data.draw(st.sampled_from(["value", "value", "value", "unknown key", "twice"]))
    key = data.draw(st.sampled_from(keys))
    value = data.draw(st.sampled_from(BAD_OVERRIDES))
    extra = {"value": [f"{key}={value}"], "unknown key": [f"{key}.nope={value}"],
             "twice": [f"{key}={value}", f"{key}=abc"]}[how]
    run_dir = work / f"override-run-{COUNTS.get('Hydra overrides', Counter())['inputs']}"
    rc, err = run_train(capsys, MICRO + extra, run_dir)
    handled("Hydra overrides", rc, err, tuple(e.split("=")[0] for e in extra) + ("train.py: error",))


# ---- real processes: no traceback reaches the user ---------------------------------------------

def _one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


@pytest.mark.skipif(not os.environ.get("AUTOTTS_DATA"), reason="needs the public stores (AUTOTTS_DATA)")
def test_a_token_count_of_10_to_the_30_is_one_line_from_autotts_eval(work) -> None:
    import gzip
    records = json.loads(gzip.decompress((Path(os.environ["AUTOTTS_DATA"]) / "Qwen3-8B" / "aime25.json.gz")
                                         .read_bytes()))
    records[3]["each_branch"][5][1] = 10**30
    file = work / "huge.json"
    file.write_text(json.dumps(records))
    proc = subprocess.run([python(), "-m", "autotts.cli", "eval", "--store", str(file), "--controller", "sc",
                           "--knob", "64"], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    line = _one_line(proc)
    assert line == (f"autotts eval: error: {file}: question 3: field 'each_branch[5][1]': expected a non-negative "
                    "integer token count (at most 10^12), got 1000000000000000000000000000000")
    print(line)


def test_a_string_delta_in_the_manifest_is_one_line_from_autotts_run(work, model_dir) -> None:
    export = export_weights(initial_weights(PolicyShape(), seed=3), work / "string-delta")
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["delta"] = "500"
    (export / "manifest.json").write_text(json.dumps(manifest))
    questions = write_questions(work / "q.jsonl")
    base = [python(), "-m", "autotts.cli"]
    run = subprocess.run(base + ["run", "--controller", str(export), "--backend", "transformers", "--model",
                                 str(model_dir), "--questions", str(questions), "--delta", "500", "--n", "2"],
                         capture_output=True, text=True, env=subprocess_env(), timeout=180)
    expected = (f"{export}/manifest.json: field 'delta': expected a positive integer interval in tokens "
                "(at most 10^9), got \"500\"")
    assert _one_line(run) == f"autotts run: error: {expected}"
    print(expected)


def test_train_py_refuses_bad_overrides_and_a_truncated_checkpoint_in_one_line(work) -> None:
    truncated = work / "truncated.ckpt"
    truncated.write_bytes(b"PK\x03\x04" + bytes(100))
    for args, expected in ((["search.popsize=-3"], "search.popsize=-3: expected >= 2"),
                           ([f"ckpt_path={truncated}"], f"ckpt_path={truncated}: not a checkpoint")):
        proc = subprocess.run([python(), str(ROOT / "train.py"), "+experiment=smoke", *args], capture_output=True,
                              text=True, env=subprocess_env(), cwd=str(work), timeout=180)
        assert expected in _one_line(proc)


def test_zz_every_kind_was_fuzzed_and_handled(capsys) -> None:
    """The counts per kind (run after the fuzz tests above; prints them, and writes $AUTOTTS_FUZZ_COUNTS)."""
    kinds = ["replay store JSON", "replay store .pt", "questions JSONL", "manifest.json", "controller.pt",
             "controller.pt2", "checkpoint", "Hydra overrides"]
    if not all(k in COUNTS for k in kinds):
        pytest.skip("run the whole module: the counts come from the fuzz tests above")
    table = {k: dict(COUNTS[k]) for k in kinds}
    with capsys.disabled():
        print("\nmutated inputs per kind (all handled: worked, or exit 2 with one line):")
        for kind, c in table.items():
            print(f"  {kind:18s} {c['inputs']:4d} inputs: {c.get('worked', 0):3d} worked, "
                  f"{c.get('refused (exit 2, one line)', 0):3d} refused (exit 2, one line)")
    if os.environ.get("AUTOTTS_FUZZ_COUNTS"):
        Path(os.environ["AUTOTTS_FUZZ_COUNTS"]).write_text(json.dumps(table, indent=1))
    assert all(c["inputs"] > 0 and c.get("refused (exit 2, one line)", 0) > 0 for c in table.values())
