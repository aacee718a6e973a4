"""The exported controller (torch.export .pt2 and TorchScript .pt) decides exactly as the in-memory policy.

Compared decision by decision on validation episodes (a public AIME25 store when
AUTOTTS_DATA is set, a synthetic store always), in a fresh process without
autotts, and online through `autotts run`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import fields

import pytest
import torch
from online_support import one_thread, tiny_model_dir, write_questions
from train_support import SMALL_STORE, beta_switch_weights, export_weights

from autotts.artifact.export import ProgramPolicy, export_program, load_controller
from autotts.cli import build_parser
from autotts.cli import main as cli
from autotts.collect.questions import read_questions
from autotts.controllers.learned import DEFAULT_GUARDS, GuardSpec, policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.env.episodes import concat_episodes
from autotts.env.rollout import rollout
from autotts.errors import AutottsError
from autotts.evaluate.cli_eval import controller_settings
from autotts.evaluate.runner import protocol_episodes
from autotts.executor.controllers import controller_from_spec
from autotts.executor.live_env import LiveEnv, LiveQuestion
from autotts.executor.options import format_prompt, reader_from_args
from autotts.executor.runtime import run_online
from autotts.store import load_store

BETAS = [0.0, 0.3, 0.7, 1.0]
GUARDS = DEFAULT_GUARDS[:-1] + (GuardSpec("max_rounds", {"r": 25}),)  # shorter episodes: a faster test
POLICIES = {"random": lambda: initial_weights(PolicyShape(), seed=3, scale=0.5),
            "beta_switch": lambda: beta_switch_weights(stop_above=0.5)}
# validation episodes: AIME25 of a public store (never searched on) when the data is here, a synthetic store always
STORES = [SMALL_STORE] + (["Qwen3-8B/aime25"] if os.environ.get("AUTOTTS_DATA") else [])


class Recorded:
    """A controller that keeps every action it takes (the decisions compared one by one)."""

    def __init__(self, controller) -> None:
        self.controller, self.actions = controller, []
        self.slots, self.reasons = controller.slots, controller.reasons

    def init(self, obs, context=None):
        return self.controller.init(obs, context)

    def act(self, obs, memory):
        action, memory = self.controller.act(obs, memory)
        self.actions.append(action)
        return action, memory


def assert_same_decisions(ours: Recorded, theirs: Recorded) -> int:
    """Every field of every round's action equal; returns the number of (round, episode) decisions compared."""
    assert len(ours.actions) == len(theirs.actions)
    for r, (a, b) in enumerate(zip(ours.actions, theirs.actions)):
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if isinstance(x, dict):
                assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), (r, f.name)
            else:
                assert (x is None and y is None) or torch.equal(x, y), (r, f.name)
    return sum(a.stop.numel() for a in ours.actions)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_pt2_pt_and_in_memory_policy_take_the_same_decisions_on_validation_episodes(tmp_path, name) -> None:
    weights = POLICIES[name]()
    path = export_weights(weights, tmp_path / "export", guards=GUARDS)
    program, script = load_controller(path), load_controller(path, file="controller.pt")
    assert isinstance(program.module, ProgramPolicy) and isinstance(script.module, torch.jit.ScriptModule)
    for spec in STORES:
        store = load_store(spec)
        episodes = protocol_episodes(store, "reference", 2)
        beta = torch.tensor(BETAS).repeat_interleave(len(episodes))
        all_eps = concat_episodes([episodes] * len(BETAS))
        runs = {k: Recorded(c) for k, c in (("memory", policy_controller(weights, guards=GUARDS)),
                                             ("pt2", program), ("pt", script))}
        results = {k: rollout(store, all_eps, c, context={"beta": beta}) for k, c in runs.items()}
        decisions = [assert_same_decisions(runs["memory"], runs[k]) for k in ("pt2", "pt")]
        print(f"{spec}: {decisions[0]} decisions, .pt2 = .pt = in-memory")
        ours = results["memory"]
        for k in ("pt2", "pt"):
            for field in ("answer", "tokens", "rounds", "opened"):
                assert torch.equal(getattr(ours, field), getattr(results[k], field)), (k, field)
        assert ours.rounds.float().mean() > 1 and len(set(ours.tokens.tolist())) > 3  # decisions that matter
    i, n = 1, len(episodes)  # a fixed β (eval's path) is the same as β in the context
    fixed = rollout(store, episodes, program.with_beta(BETAS[i]))
    assert torch.equal(fixed.tokens, ours.tokens[i * n:(i + 1) * n])


FRESH = """\
import sys
sys.modules["autotts"] = None  # the venv has autotts installed (editable): any import of it now fails
import torch
program = torch.export.load("export/controller.pt2").module()
calls = torch.load("calls.pt", weights_only=True)
outputs = [tuple(program(*inputs)) for inputs, _ in calls]
torch.save(outputs, "fresh.pt")
assert not any(m == "autotts" or m.startswith("autotts.") for m, v in sys.modules.items() if v is not None)
print(len(outputs))
"""


def test_pt2_runs_in_a_fresh_process_without_autotts(tmp_path) -> None:
    """torch.export.load alone, outside the repo, on the inputs a validation rollout gave it: the same outputs."""
    weights = POLICIES["random"]()
    ctrl = load_controller(export_weights(weights, tmp_path / "export", guards=GUARDS))
    calls: list = []
    module = ctrl.module.module

    def record(*inputs):
        out = module(*inputs)
        calls.append(([x.clone() for x in inputs], [y.clone() for y in out]))
        return out
    ctrl.module.module = record
    store = load_store(SMALL_STORE)
    for seeds, beta in ((3, 0.3), (1, 0.8)):
        rollout(store, protocol_episodes(store, "reference", seeds), ctrl.with_beta(beta))
    shape, generator = PolicyShape(), torch.Generator().manual_seed(0)
    for e, b, c in ((1, 7, 3), (5, 2, 9)):  # other numbers of branches and voting branches than the controller's
        record(torch.randn(e, shape.n_pool, generator=generator),
               torch.randn(e, b, shape.n_branch, generator=generator),
               torch.rand(e, generator=generator), torch.randn(e, c, shape.n_completed, generator=generator),
               torch.randn(e, c, shape.n_live, generator=generator), torch.rand(e, c, generator=generator) > 0.5)
    assert len({c[0][0].shape[0] for c in calls}) > 2 and len({c[0][1].shape[1] for c in calls}) > 2
    torch.save(calls, tmp_path / "calls.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([sys.executable, "-I", "-c", FRESH], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) == len(calls)
    fresh = torch.load(tmp_path / "fresh.pt", weights_only=True)
    for (_, want), got in zip(calls, fresh):
        assert all(torch.equal(w, g) for w, g in zip(want, got))


def test_export_and_load_print_no_deprecation_warning(tmp_path) -> None:
    """TorchScript's deprecation is filtered where we keep it on purpose; any other warning would surface here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = export_weights(POLICIES["random"](), tmp_path / "export")
        load_controller(path)
        load_controller(path, file="controller.pt")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["files"] == {"torchscript": "controller.pt", "torch_export": "controller.pt2"}


def test_eval_settings_use_the_manifest_beta_grid(tmp_path) -> None:
    path = export_weights(POLICIES["random"](), tmp_path / "export")
    betas = [b for _, _, b in controller_settings(str(path), None, None)]
    assert betas == [0.0, 0.5, 1.0]
    assert [b for _, _, b in controller_settings(str(path), None, [0.25])] == [0.25]


def test_load_errors_are_one_line(tmp_path, capfd) -> None:
    path = export_weights(POLICIES["random"](), tmp_path / "export")
    manifest = json.loads((path / "manifest.json").read_text())
    for mutate, expected in ((lambda m: m["guards"].append({"name": "nope", "params": {}}), "unknown guard 'nope'"),
                             (lambda m: m["features"]["live"].append("age"), "manifest has extra feature 'age'"),
                             (lambda m: m["actions"].pop("burst"), "'actions' must hold")):
        bad = json.loads(json.dumps(manifest))
        mutate(bad)
        (path / "manifest.json").write_text(json.dumps(bad))
        with pytest.raises(AutottsError, match=expected) as err:
            load_controller(path)
        assert "\n" not in str(err.value)
    for files, expected in (({"torchscript": "../controller.pt"}, "field 'files': expected"),
                            ({"torchscript": "controller.pt", "onnx": "controller.onnx"}, "field 'files': expected"),
                            ("controller.pt", "field 'files': expected")):
        (path / "manifest.json").write_text(json.dumps({**manifest, "files": files}))
        with pytest.raises(AutottsError, match=expected):
            load_controller(path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    good = (path / "controller.pt2").read_bytes()
    (path / "controller.pt2").write_bytes(good[: len(good) // 2])
    with pytest.raises(AutottsError, match="controller.pt2: not a torch.export controller .*central directory") as err:
        load_controller(path)
    assert "\n" not in str(err.value) and "Traceback" not in capfd.readouterr().err  # torch's logged traceback held
    (path / "controller.pt2").unlink()
    with pytest.raises(AutottsError, match="field 'files' names controller.pt2 but it is missing"):
        load_controller(path)
    other = PolicyShape(n_pool=PolicyShape().n_pool - 1)  # a program for other features (another version)
    torch.export.save(export_program(initial_weights(other, seed=1), other), str(path / "controller.pt2"))
    with pytest.raises(AutottsError, match=r"feature widths \(10, 6, 3, 2\), expected .* \(11, 6, 3, 2\) features"):
        load_controller(path)
    (path / "controller.pt2").write_bytes(good)
    (path / "controller.pt").write_bytes(b"not torchscript")
    with pytest.raises(AutottsError, match="not a TorchScript controller"):
        load_controller(path, file="controller.pt")


def test_an_export_from_before_torch_export_loads_its_torchscript(tmp_path) -> None:
    path = export_weights(POLICIES["random"](), tmp_path / "export")
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["files"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "controller.pt2").unlink()
    assert isinstance(load_controller(path).module, torch.jit.ScriptModule)
    with pytest.raises(AutottsError, match="no controller.pt2 in this export"):
        load_controller(path, file="controller.pt2")


def test_delta_mismatch_with_the_store_is_refused(tmp_path) -> None:
    ctrl = load_controller(export_weights(POLICIES["random"](), tmp_path / "export", delta=400))
    store = load_store(SMALL_STORE)
    with pytest.raises(AutottsError, match="trained with delta=400 tokens, but the store has delta=500"):
        rollout(store, protocol_episodes(store, "reference", 1), ctrl)


def test_autotts_run_with_the_export_matches_the_in_memory_policy_online(tmp_path_factory, capsys) -> None:
    """`autotts run --controller EXPORT` against the tiny local model = run_online with the in-memory policy."""
    weights = POLICIES["random"]()
    tmp = tmp_path_factory.mktemp("run")
    export = export_weights(weights, tmp / "export", delta=16)
    questions = write_questions(tmp / "q.jsonl")
    model = tiny_model_dir(tmp_path_factory)
    argv = ["run", "--controller", str(export), "--model", str(model), "--questions", str(questions), "--n", "4",
            "--delta", "16", "--max-tokens", "48", "--beta", "0.3", "--json"]
    with one_thread():
        assert cli(argv) == 0
        got = json.loads(capsys.readouterr().out)["questions"]
        args = build_parser().parse_args(argv)
        ctrl = policy_controller(weights)
        live = [LiveQuestion(q.text, format_prompt(args.prompt_template, q.text)) for q in read_questions(questions)]
        env = LiveEnv(reader_from_args(args), live, args.n, ctrl.slots, args.shuffle_seed, args.seed)
        want = [q.to_dict() for q in run_online(ctrl, env, 0.3).questions]
    assert [(q["answer"], q["tokens"], q["rounds"]) for q in got] == \
        [(q["answer"], q["tokens"], q["rounds"]) for q in want]
    assert sum(q["tokens"] for q in got) > 0
    assert controller_from_spec(str(export), beta=0.3, delta=16).beta == 0.3
