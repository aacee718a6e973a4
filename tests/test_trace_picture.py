"""Width–depth trace pictures: the board rebuilt from trace records matches the env, and the figure shows it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from matplotlib.image import imread

from autotts.cli import main
from autotts.controllers.baselines import make_baseline
from autotts.env.state import STATUS_NAMES
from autotts.evaluate.plots import save_png
from autotts.evaluate.runner import evaluate, protocol_episodes
from autotts.evaluate.trace import TraceRecorder
from autotts.evaluate.trace_episode import single_episode, trace_episode
from autotts.evaluate.trace_picture import timeline, trace_figure
from autotts.store import load_store

from report_toys import write_toy_store


class BoardRecorder(TraceRecorder):
    """A TraceRecorder that also keeps the true status and answer of every slot after each round."""

    def __init__(self, store, episodes):
        super().__init__(store, episodes, [0])
        self.boards = []

    def on_state(self, state, rows):
        super().on_state(state, rows)
        if 0 in rows.tolist() and not bool(state.obs.done[rows.tolist().index(0)]):
            i = rows.tolist().index(0)
            q = int(self.episodes.question[0])
            self.boards.append([(STATUS_NAMES[s], self.store.answer(q, a))
                                for s, a in zip(state.obs.status[i].tolist(), state.obs.answer[i].tolist())])


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return load_store(str(write_toy_store(tmp_path_factory.mktemp("s") / "toy-model" / "toyset.json", seed=3)))


def _check_board(store, question, seed, name, knob) -> list[str]:
    """Rebuild the board from the records, compare it with the env's after every round; final statuses."""
    episode = single_episode(store, question=question, seed=seed)
    rec = BoardRecorder(store, episode)
    result, _ = evaluate(store, episode, make_baseline(name, knob), recorder=rec)
    t = timeline(rec.records)
    assert t.rounds == len(rec.boards) - 1  # boards include the state after reset
    assert len(t.slots) == int(result.opened[0])
    for r, board in enumerate(rec.boards[1:]):
        for i, slot in enumerate(t.slots):
            status, answer = board[slot]
            assert t.status[i][r] == status
            assert t.answer[i][r] == (answer if status != "unopened" else None)
    assert t.result == store.answer(question, int(result.answer[0])) and t.tokens == int(result.tokens[0])
    assert t.correct == bool(result.correct[0])
    return [row[-1] for row in t.status]


@pytest.mark.parametrize("name, knob", [("parallel_probe", 8), ("cmc", 0.6), ("sc", 8)])
def test_board_rebuilt_from_records_matches_the_env(toy, name, knob):
    final = _check_board(toy, 1, 2, name, knob)
    assert final.count("finished") >= 1


@pytest.mark.skipif(not os.environ.get("AUTOTTS_DATA"), reason="public stores: set AUTOTTS_DATA")
def test_board_with_pruned_branches_matches_the_env():
    final = _check_board(load_store("Qwen3-0.6B/aime24"), 3, 1, "parallel_probe", 64)
    assert final.count("pruned") > 5 and final.count("finished") > 5


def test_figure_draws_the_board_marks_and_votes(toy, tmp_path):
    episode = single_episode(toy, question=1, seed=2)
    rec = TraceRecorder(toy, episode, [0])
    evaluate(toy, episode, make_baseline("parallel_probe", 8), recorder=rec)
    t = timeline(rec.records)
    fig = trace_figure(rec.records, title="toy", top=2)
    vote_ax, board_ax = fig.axes[:2]
    assert board_ax.images[0].get_array().shape[:2] == (len(t.slots), t.rounds)
    marks = {c.get_gid(): len(c.get_offsets()) for c in board_ax.collections}
    final = [row[-1] for row in t.status]
    assert marks["mark:opened"] == len(t.slots)
    assert marks.get("mark:finished", 0) == final.count("finished")
    assert marks.get("mark:pruned", 0) == final.count("pruned")
    assert any(line.get_gid() == "stop" for line in board_ax.get_lines())
    votes = {line.get_gid(): line for line in vote_ax.get_lines()}
    assert "vote:7" in votes  # gold is always drawn
    assert 2 <= len(votes) <= 3
    assert np.array_equal(votes["vote:7"].get_ydata(), t.votes().get("7", np.zeros(t.rounds)))
    img = imread(save_png(fig, tmp_path / "trace.png", dpi=80))
    assert img.shape[0] > 200 and (img[..., :3].min(-1) < 0.9).mean() > 0.05
    assert (tmp_path / "trace.png").stat().st_size < 150_000


def test_timeline_rejects_mixed_episodes(toy):
    episodes = protocol_episodes(toy, seeds=1)
    rec = TraceRecorder(toy, episodes, [0, 1])
    evaluate(toy, episodes, make_baseline("sc", 2), recorder=rec)
    with pytest.raises(Exception, match="exactly one episode"):
        timeline(rec.records)


def test_single_episode_is_the_protocols_episode(toy):
    full = protocol_episodes(toy, "subsets", seeds=4, subset_size=16)
    one = single_episode(toy, question=5, seed=3, protocol="subsets", subset_size=16)
    k = int(((full.question == 5) & (full.seed == 3)).nonzero())
    assert one.order.tolist() == [full.order[k].tolist()]


def test_trace_command(toy, tmp_path, capsys):
    out, jsonl = tmp_path / "t.png", tmp_path / "t.jsonl"
    rc = main(["trace", "--store", toy.source, "--question", "2", "--seed", "1", "--controller", "cmc",
               "--beta", "0.3", "--out", str(out), "--jsonl", str(jsonl)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert printed.splitlines()[0] == "toy-model/toyset · question 2 · seed 1 · CMC β=0.3"
    assert "STOP ->" in printed and printed.strip().endswith(str(out))
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert lines[-1]["stop"] and all(x["controller"] == "cmc" and x["question"] == 2 for x in lines)
    assert imread(out).shape[1] > 300


@pytest.mark.parametrize("argv, message", [(["--question", "99"], "--question 99: toy-model/toyset has questions 0..7"),
                                           (["--question", "0", "--seed", "-1"], "--seed -1")])
def test_trace_bad_flags(toy, capsys, argv, message):
    rc = main(["trace", "--store", toy.source, "--controller", "sc", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not os.environ.get("AUTOTTS_DATA"), reason="public stores: set AUTOTTS_DATA")
def test_traced_episode_reproduces_the_protocol_rollout():
    """The traced (question, seed) episode spends and answers exactly what it does inside the full evaluation."""
    records, label = trace_episode("Qwen3-0.6B/aime24", question=3, seed=1, controller="cmc", beta=0.5)
    store = load_store("Qwen3-0.6B/aime24")
    episodes = protocol_episodes(store, seeds=2)
    result, _ = evaluate(store, episodes, make_baseline("cmc", 0.5))
    k = int(((episodes.question == 3) & (episodes.seed == 1)).nonzero())
    t = timeline(records)
    assert label == "Qwen3-0.6B/aime24 · question 3 · seed 1 · CMC β=0.5"
    assert t.tokens == int(result.tokens[k]) and t.result == store.answer(3, int(result.answer[k]))
