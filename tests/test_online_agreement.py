"""Replay and online runs agree question by question: answers, token costs (total, per branch and
sequential), traces.

A store is collected from the tiny model (3 questions x 8 branches, delta 16,
at most 96 tokens per branch); then each controller is (a) replayed on the
store with `autotts.env.rollout` and (b) run online against the same model
with the same branch seeds and shuffle. Both are traced by the same recorder,
so any difference in what was revealed, charged or decided shows up.
"""

from __future__ import annotations

import math

import pytest
import torch
from online_support import QUESTIONS, CompletionServer, write_questions

from autotts.cli import main as cli
from autotts.collect.questions import read_questions
from autotts.controllers.learned import policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.controllers.rules import Decision, Rule, RuleEngine, RuleProgram, default_answer
from autotts.env.episodes import Episodes, python_shuffle
from autotts.env.rollout import rollout
from autotts.env.state import ACTIVE, FINISH, Observation
from autotts.executor.backends.base import Sampling
from autotts.executor.backends.openai_backend import OpenAIBackend
from autotts.executor.backends.transformers_backend import TransformersBackend
from autotts.executor.controllers import controller_from_spec
from autotts.executor.intervals import IntervalReader, Probe
from autotts.executor.live_env import LiveEnv, LiveQuestion
from autotts.evaluate.trace import TraceRecorder
from autotts.executor.runtime import run_online
from autotts.store import load_store
from autotts.store.autotts_json import read_records

N, DELTA, MAX_TOKENS = 8, 16, 96
SPECS = ["sc:8", "sc:3", "asc:8", "esc:8", "pp:4", "pp:8", "cmc:0.0", "cmc:0.5", "cmc:1.0", "walker", "policy",
         "switch:cmc", "switch:policy"]


class ProbeWalker(RuleProgram):
    """A test program that walks every live path: probe-opens, advance 1 and 2, FINISH, prune, late opens,
    and a stop that leaves branches unfinished (PP / CMC join this test when they land on main)."""

    slots = 6

    def __init__(self):
        self.rules = (Rule("enough_rounds", self._enough), Rule("walk", self._walk), Rule("widen", self._widen))

    def _enough(self, obs: Observation, mem, derived, d: Decision) -> None:
        d.set_stop(obs.round >= 5, default_answer(obs))

    def _walk(self, obs: Observation, mem, derived, d: Decision) -> None:
        slot = torch.arange(obs.slots)[None, :]
        active = obs.status == ACTIVE
        d.set_branch(active & (slot % 3 == 0), advance=1)
        d.set_branch(active & (slot % 3 == 1), advance=2)
        d.set_branch(active & (slot == 2) & (obs.round[:, None] >= 2), advance=FINISH)
        d.set_branch(active & (slot == 5) & (obs.round[:, None] >= 3), prune=True)

    def _widen(self, obs: Observation, mem, derived, d: Decision) -> None:
        d.set_open(obs.n_open < self.slots, torch.where(obs.round == 0, 3, 1))


def make_controller(spec: str):
    if spec in ("eager", "stop_head"):  # want to stop before opening: the open_before_stop guard opens one
        from test_open_before_stop import eager_controller
        return eager_controller(spec)
    if spec == "walker":
        return RuleEngine(ProbeWalker())
    if spec == "policy":  # the learned-controller path: features -> Beta heads -> rules -> guards
        return policy_controller(initial_weights(PolicyShape(), seed=2, scale=0.5))
    if spec.startswith("switch:"):  # the teacher switch at β = 0.5: CMC(0.7), or the policy at its β = 0.8
        from autotts.controllers.switch import BetaMap, TeacherSwitch
        middle = spec.split(":")[1]
        beta_map = BetaMap((0.0, 0.5, 1.0), ("policy", middle, "cmc"), (0.2, 0.7 if middle == "cmc" else 0.8, 1.0))
        return TeacherSwitch(make_controller("policy"), beta_map)
    return controller_from_spec(spec)


@pytest.fixture(scope="module")
def questions_file(tmp_path_factory):
    return write_questions(tmp_path_factory.mktemp("q") / "questions.jsonl")


@pytest.fixture(scope="module")
def store_path(model_dir, questions_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "tiny.json"
    rc = cli(["collect", "--backend", "transformers", "--model", str(model_dir), "--questions", str(questions_file),
              "--n", str(N), "--delta", str(DELTA), "--max-tokens", str(MAX_TOKENS), "--out", str(out), "--quiet"])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def reader(model_dir) -> IntervalReader:
    return IntervalReader(TransformersBackend(str(model_dir)), DELTA, MAX_TOKENS)


def replay(store, spec: str, shuffle_seed: int, n: int = N) -> list[dict]:
    """Per question: answer string, tokens, sequential tokens, rounds, tokens per branch (from the trace), trace."""
    controller = make_controller(spec)
    q = store.num_questions
    order = torch.tensor([list(python_shuffle(n, shuffle_seed))] * q)
    episodes = Episodes(torch.arange(q), order, torch.full((q,), n), torch.full((q,), shuffle_seed))
    recorder = TraceRecorder(store, episodes, range(q))
    result = rollout(store, episodes, controller, recorder=recorder)
    out = []
    for e in range(q):
        trace = [{k: v for k, v in r.items() if k != "gold"} for r in recorder.records if r["episode"] == e]
        spent: dict[str, int] = {}
        waited = 0  # the critical path read off the trace: per round, the largest charge to one branch
        for record in trace:
            for b in record["branches"]:
                spent[str(b["branch"])] = spent.get(str(b["branch"]), 0) + b["cost"]
            waited += max([b["cost"] for b in record["branches"]], default=0)
        assert int(result.seq_tokens[e]) == waited, (spec, e)
        out.append({"answer": store.answer(e, int(result.answer[e])), "tokens": int(result.tokens[e]),
                    "seq_tokens": waited, "rounds": int(result.rounds[e]), "branch_tokens": spent, "trace": trace})
    return out


def online(reader: IntervalReader, questions_file, spec: str, shuffle_seed: int, n: int = N) -> list[dict]:
    controller = make_controller(spec)
    live = [LiveQuestion(q.text, q.text) for q in read_questions(questions_file)]
    env = LiveEnv(reader, live, n, controller.slots, shuffle_seed, base_seed=0)
    return [r.to_dict() for r in run_online(controller, env).questions]


def test_store_follows_the_interval_protocol(store_path) -> None:
    records = read_records(store_path)
    assert len(records) == 3 and all(len(r["each_branch"]) == N and r["probe_freq"] == DELTA for r in records)
    lengths = [b[1] for r in records for b in r["each_branch"]]
    assert all(0 < n <= MAX_TOKENS for n in lengths) and len(set(lengths)) > 5
    for r in records:
        for probes, length, _ in r["each_branch"]:
            assert len(probes) == math.ceil(length / DELTA) - 1
    assert records[1]["gold_answer"] == "2"  # read from the "answer" alias, canonicalised


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("shuffle_seed", [0, 7])
def test_replay_and_online_agree(store_path, reader, questions_file, spec: str, shuffle_seed: int) -> None:
    store = load_store(store_path)
    expected = replay(store, spec, shuffle_seed)
    got = online(reader, questions_file, spec, shuffle_seed)
    for want, have in zip(expected, got):
        assert have["answer"] == want["answer"]
        assert have["tokens"] == want["tokens"] and have["branch_tokens"] == want["branch_tokens"]
        assert have["seq_tokens"] == want["seq_tokens"]
        assert have["rounds"] == want["rounds"]
        assert have["trace"] == want["trace"]
    assert all(ep["tokens"] > 0 and ep["trace"] for ep in got)


@pytest.mark.parametrize("spec", ["eager", "stop_head"])
def test_a_stop_before_any_branch_opens_one_online_as_in_replay(store_path, reader, questions_file, spec) -> None:
    expected = replay(load_store(store_path), spec, 0)
    got = online(reader, questions_file, spec, 0)
    assert got == expected
    assert all(ep["tokens"] > 0 and ep["answer"] is not None for ep in got)
    assert all(ep["trace"][0]["open_by"] == "guard:open_before_stop" for ep in got)


def test_agreement_covers_every_kind_of_move(store_path) -> None:
    """Guard against the agreement test passing vacuously: together the specs open, probe, read partially,
    finish, read fully and prune, and stop with unfinished branches."""
    store = load_store(store_path)
    moves, statuses = set(), set()
    for spec in ("walker", "cmc:0.5", "sc:3"):
        for ep in replay(store, spec, 0):
            for record in ep["trace"]:
                for b in record["branches"]:
                    moves.add(b["action"].split()[0])
                    statuses.add(b["status"])
    assert {"open", "advance", "finish", "prune"} <= moves
    assert {"active", "finished", "pruned"} <= statuses


def test_openai_backend_collects_and_runs_in_agreement(model_dir, tmp_path) -> None:
    """The same agreement through a real HTTP server and OpenAIBackend (collect and run both over HTTP).

    Smaller than the local test (the server answers one request at a time): 2 questions x 4 branches.
    """
    questions = write_questions(tmp_path / "q.jsonl", QUESTIONS[:2])
    n, max_tokens, probe_tokens = 4, 64, 4
    with CompletionServer(model_dir) as server:
        out = tmp_path / "http.json.gz"
        rc = cli(["collect", "--backend", "openai", "--model", "tiny", "--base-url", server.url, "--questions",
                  str(questions), "--n", str(n), "--delta", str(DELTA), "--max-tokens", str(max_tokens),
                  "--probe-tokens", str(probe_tokens), "--out", str(out), "--quiet", "--retries", "0"])
        assert rc == 0
        store = load_store(out)
        assert sum(len(p) for r in read_records(out) for p, _, _ in r["each_branch"]) > 0
        client = OpenAIBackend("tiny", server.url, sampling=Sampling(), retries=0, concurrency=4)
        http_reader = IntervalReader(client, DELTA, max_tokens, Probe(max_tokens=probe_tokens))
        for spec in ("asc:4", "walker"):
            assert online(http_reader, questions, spec, 3, n) == replay(store, spec, 3, n)
