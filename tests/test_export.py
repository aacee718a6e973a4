"""The exported TorchScript controller decides exactly as the in-memory policy, in replay and online."""

from __future__ import annotations

import json

import pytest
import torch
from online_support import one_thread, tiny_model_dir, write_questions
from train_support import SMALL_STORE, beta_switch_weights, export_weights

from autotts.artifact.export import load_controller
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


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_export_reproduces_in_memory_decisions_on_validation_episodes(tmp_path, name) -> None:
    weights = POLICIES[name]()
    exported = load_controller(export_weights(weights, tmp_path / "export", guards=GUARDS))
    store = load_store(SMALL_STORE)
    episodes = protocol_episodes(store, "reference", 2)
    beta = torch.tensor(BETAS).repeat_interleave(len(episodes))
    all_eps = concat_episodes([episodes] * len(BETAS))
    ours = rollout(store, all_eps, policy_controller(weights, guards=GUARDS), context={"beta": beta})
    theirs = rollout(store, all_eps, exported, context={"beta": beta})
    for field in ("answer", "tokens", "rounds", "opened"):
        assert torch.equal(getattr(ours, field), getattr(theirs, field)), field
    assert ours.rounds.float().mean() > 1 and len(set(ours.tokens.tolist())) > 3  # decisions that matter
    i, n = 1, len(episodes)  # a fixed β (eval's path) is the same as β in the context
    fixed = rollout(store, episodes, exported.with_beta(BETAS[i]))
    assert torch.equal(fixed.tokens, ours.tokens[i * n:(i + 1) * n])


def test_eval_settings_use_the_manifest_beta_grid(tmp_path) -> None:
    path = export_weights(POLICIES["random"](), tmp_path / "export")
    betas = [b for _, _, b in controller_settings(str(path), None, None)]
    assert betas == [0.0, 0.5, 1.0]
    assert [b for _, _, b in controller_settings(str(path), None, [0.25])] == [0.25]


def test_load_errors_are_one_line(tmp_path) -> None:
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
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "controller.pt").write_bytes(b"not torchscript")
    with pytest.raises(AutottsError, match="not a TorchScript controller"):
        load_controller(path)


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
