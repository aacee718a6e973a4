"""The serve scheduler without a server: batched rounds across requests equal `run_online`, joins, leaves, limits.

The backend is the real tiny local model (in process); requests are submitted
at different rounds, so the batched `act` sees a changing set of episodes.
"""

from __future__ import annotations

import pytest
import torch
from online_support import QUESTIONS
from train_support import export_weights

from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.env.state import index_tree
from autotts.executor.backends.transformers_backend import TransformersBackend
from autotts.executor.controllers import controller_from_spec
from autotts.executor.intervals import IntervalReader, Probe
from autotts.executor.live_env import LiveEnv, LiveQuestion
from autotts.executor.runtime import run_online
from autotts.serve.scheduler import Cancelled, DeadlineExceeded, Episode, QueueFull, Scheduler, Settings, cat_tree

N, DELTA, MAX_TOKENS = 8, 16, 64
TEXTS = [q["question"] for q in QUESTIONS] + ["Let us compute the sum of two numbers .", "Find x so that x = 3 ."]


class Counting:
    """The real backend, counting the calls that generate tokens (to see that branches stop)."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def extend(self, branches, budgets):
        self.calls += 1
        return self.inner.extend(branches, budgets)


@pytest.fixture(scope="module")
def backend(model_dir):
    return Counting(TransformersBackend(str(model_dir)))


def _make_controllers(tmp_path_factory):
    export = export_weights(initial_weights(PolicyShape(), seed=3, scale=0.5),
                            tmp_path_factory.mktemp("export") / "c", delta=DELTA)
    policy = controller_from_spec(str(export), 0.5, DELTA)
    return {"policy": lambda beta: policy, "esc:8": lambda beta: controller_from_spec("esc:8"),
            "pp:4": lambda beta: controller_from_spec("pp:4"), "cmc": lambda beta: controller_from_spec("cmc", beta)}


@pytest.fixture(scope="module")
def controllers(tmp_path_factory):
    return _make_controllers(tmp_path_factory)


def _scheduler(backend, controllers, **kw) -> Scheduler:
    return Scheduler(backend, controllers, Settings(n=N, delta=DELTA, max_tokens=MAX_TOKENS, **kw))


def _alone(backend, controller, text: str, beta: float):
    reader = IntervalReader(backend, DELTA, MAX_TOKENS, Probe())
    env = LiveEnv(reader, [LiveQuestion(text, text)], N, controller.slots)
    return run_online(controller, env, beta).questions[0]


def _strip(trace: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("episode", "question")} for r in trace]


def test_batched_rounds_with_staggered_joins_equal_each_request_run_alone(backend, controllers) -> None:
    sched = _scheduler(backend, controllers)
    plan = [("policy", 0.2), ("policy", 0.9), ("esc:8", 0.5), ("pp:4", 0.5), ("cmc", 0.3), ("cmc", 0.8)]
    tickets = []
    for i, (name, beta) in enumerate(plan):
        tickets.append(sched.submit(Episode(TEXTS[i % len(TEXTS)], TEXTS[i % len(TEXTS)], name, beta)))
        sched.round()  # each request joins a round later than the one before
    rounds = 0
    while not all(t.future.done() for t in tickets):
        sched.round()
        rounds += 1
        assert rounds < 200
    for t, (name, beta) in zip(tickets, plan):
        got = t.future.result()
        want = _alone(backend, controllers[name](beta), t.episode.question, beta)
        assert (got.result.answer, got.result.tokens, got.result.branch_tokens, got.result.rounds) == \
            (want.answer, want.tokens, want.branch_tokens, want.rounds), (name, beta)
        assert _strip(got.result.trace) == _strip(want.trace)
        assert 0 < got.result.seq_tokens <= got.result.tokens
        assert got.result.answer is None or got.result.answer in got.text
    assert sched.gauges() == {"live_requests": 0, "queued_requests": 0, "live_branches": 0}


def test_requests_of_one_controller_are_decided_in_one_call_per_round(backend, controllers) -> None:
    sched = _scheduler(backend, controllers)
    tickets = [sched.submit(Episode(t, t, "policy", beta)) for t, beta in zip(TEXTS, (0.1, 0.5, 0.9, 0.3, 0.7))]
    while not all(t.future.done() for t in tickets):
        sched.round()
    assert sched.stats.controller_calls == sched.stats.rounds
    assert sum(t.future.result().result.rounds for t in tickets) > sched.stats.rounds


def test_a_cancelled_request_stops_its_branches_and_leaves(backend, controllers) -> None:
    sched = _scheduler(backend, controllers)
    keep = sched.submit(Episode(TEXTS[0], TEXTS[0], "cmc", 1.0))
    gone = sched.submit(Episode(TEXTS[1], TEXTS[1], "cmc", 1.0))
    sched.round()
    assert sched.gauges()["live_branches"] > 0
    gone.cancel()
    calls = backend.calls
    sched.round()  # `gone` makes no upstream call in this round and leaves after it
    with pytest.raises(Cancelled):
        gone.future.result(timeout=0)
    assert sched.gauges()["live_requests"] <= 1
    while not keep.future.done():
        sched.round()
    assert keep.future.result().result.tokens > 0 and backend.calls > calls
    assert sched.gauges()["live_branches"] == 0


def test_queue_bound_deadline_and_unknown_controller(backend, controllers) -> None:
    sched = _scheduler(backend, controllers, max_live=1, max_queue=1)
    first = sched.submit(Episode(TEXTS[0], TEXTS[0], "pp:4"))  # takes the free live slot at the next round
    sched.submit(Episode(TEXTS[1], TEXTS[1], "pp:4"))  # before any round: waits, not a 429
    with pytest.raises(QueueFull, match="1 requests are waiting"):
        sched.submit(Episode(TEXTS[2], TEXTS[2], "pp:4"))
    sched.round()
    assert sched.gauges()["live_requests"] == 1 and sched.gauges()["queued_requests"] == 1 and not first.future.done()
    with pytest.raises(QueueFull, match="waiting"):
        sched.submit(Episode(TEXTS[2], TEXTS[2], "pp:4"))
    with pytest.raises(Exception, match="not served here"):
        sched.submit(Episode(TEXTS[1], TEXTS[1], "sc:3"))
    sched2 = _scheduler(backend, controllers)
    late = sched2.submit(Episode(TEXTS[1], TEXTS[1], "pp:4", timeout_s=0.0))
    sched2.round()
    with pytest.raises(DeadlineExceeded, match="deadline of 0s"):
        late.future.result(timeout=0)
    assert sched2.gauges()["live_branches"] == 0


def test_the_loop_thread_answers_and_drains_on_stop(backend, controllers) -> None:
    sched = _scheduler(backend, controllers)
    sched.start()
    tickets = [sched.submit(Episode(t, t, "esc:8")) for t in TEXTS[:3]]
    sched.stop(drain=True, timeout=120)
    assert all(t.future.result(timeout=0).result.tokens > 0 for t in tickets)
    with pytest.raises(QueueFull, match="shutting down"):
        sched.submit(Episode(TEXTS[0], TEXTS[0], "esc:8"))


def test_on_finish_runs_before_the_reply_is_visible(backend, controllers) -> None:
    """The serve routes record the trace in on_finish: a client that fetches it right after its reply must find it."""
    sched = _scheduler(backend, controllers)
    seen = []
    sched.on_finish = lambda ticket, answer, err: seen.append((ticket.future.done(), answer is None, err is None))
    ok = sched.submit(Episode(TEXTS[0], TEXTS[0], "pp:4"))
    late = sched.submit(Episode(TEXTS[1], TEXTS[1], "pp:4", timeout_s=0.0))
    while not (ok.future.done() and late.future.done()):
        sched.round()
    assert sorted(seen) == [(False, False, True), (False, True, False)]


def test_cat_tree_is_the_inverse_of_index_tree() -> None:
    tree = {"a": torch.arange(6).view(3, 2), "b": (torch.ones(3), torch.tensor(7)), "c": None}
    rows = [index_tree(tree, torch.tensor([i])) for i in range(3)]
    back = cat_tree(rows)
    assert torch.equal(back["a"], tree["a"]) and torch.equal(back["b"][0], tree["b"][0])
    assert int(back["b"][1]) == 7 and back["c"] is None


def test_chosen_slot_prefers_the_first_finished_branch_with_the_answer(backend, controllers) -> None:
    sched = _scheduler(backend, controllers)
    t = sched.submit(Episode(TEXTS[0], TEXTS[0], "esc:8"))
    while not t.future.done():
        sched.round()
    ans = t.future.result()
    assert ans.branch in ans.result.branch_tokens
    finished = [r for r in ans.result.trace for b in r["branches"] if b["branch"] == ans.branch
                and b["status"] == "finished"]
    assert finished and all(b["answer"] == ans.result.answer for r in finished for b in r["branches"]
                            if b["branch"] == ans.branch and b["status"] == "finished")
