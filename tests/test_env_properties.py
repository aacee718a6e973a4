"""Property tests of cost accounting over random stores and random action sequences.

Each property is checked on both the batched env (the thing under test) and the
reference env (so the oracle itself is held to the spec, not only to agreement).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotts.env.batched import reset, step
from autotts.env.episodes import Episodes
from autotts.env.reference import RefAction, ReferenceEpisode, ReferenceQuestion, stack_actions
from autotts.env.state import ACTIVE, FINISH, FINISHED, PRUNED, UNOPENED, EnvState
from autotts.store import build_store
from random_stores import records_strategy

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHUNKS = st.sampled_from([1, 1, 2, 3, FINISH])


@dataclass(frozen=True)
class Scenario:
    record: dict
    order: list[int]   # the branches the episode may open, in order
    slots: int
    actions: list[RefAction]


@dataclass(frozen=True)
class Snap:
    """What one env shows after one step (a row of the batched env, or the reference)."""

    status: list[int]
    depth: list[int]
    cost: list[int]
    total: int
    n_open: int
    done: bool


@st.composite
def ref_actions(draw: st.DrawFn, slots: int, answers: list[str], p_stop: float = 0.1) -> RefAction:
    slot = st.integers(0, slots - 1)
    return RefAction(
        stop=draw(st.floats(0, 1)) < p_stop,
        answer=draw(st.none() | st.sampled_from(answers)),
        prune=draw(st.frozensets(slot, max_size=2)),
        advance=draw(st.dictionaries(slot, CHUNKS, max_size=slots)),
        priority=draw(st.none() | st.permutations(range(slots)).map(tuple)),
        open=draw(st.integers(0, 4)),
        full_read=draw(st.booleans()),
    )


@st.composite
def scenarios(draw: st.DrawFn, p_stop: float = 0.1) -> Scenario:
    record = draw(records_strategy())
    n = len(record["each_branch"])
    order = draw(st.permutations(range(n)))[: draw(st.integers(1, n))]
    slots = draw(st.integers(1, n + 1))
    answers = sorted({record["gold_answer"]} | {b[2] for b in record["each_branch"]}
                     | {a for b in record["each_branch"] for a in b[0]})
    actions = draw(st.lists(ref_actions(slots, answers, p_stop), min_size=1, max_size=10))
    return Scenario(record, list(order), slots, actions)


def run_both(scn: Scenario) -> dict[str, list[Snap]]:
    """Snapshots after every action: index 0 is the fresh state, index t+1 follows action t."""
    store = build_store([scn.record])
    states = run_batched(scn, store)
    ref = ReferenceEpisode(ReferenceQuestion.from_record(scn.record), scn.order[: scn.slots])
    ref_snaps = [ref_snap(ref, scn.slots)]
    for act in scn.actions:
        ref.step(act)
        ref_snaps.append(ref_snap(ref, scn.slots))
        assert ref.total_cost == sum(tokens for _, tokens in ref.ledger)
        for s, c in enumerate(ref.cost(scn.slots)):
            assert c == sum(tokens for slot, tokens in ref.ledger if slot == s)
    return {"batched": [batched_snap(s, 0) for s in states], "reference": ref_snaps}


def run_batched(scn: Scenario, store, rows: list[list[RefAction]] | None = None) -> list[EnvState]:
    """States of the batched env, one episode per row of `rows` (default: the scenario's actions)."""
    rows = rows or [scn.actions]
    e = len(rows)
    episodes = Episodes(question=torch.zeros(e, dtype=torch.long), order=torch.tensor([scn.order] * e),
                        n_avail=torch.full((e,), len(scn.order)), seed=torch.zeros(e, dtype=torch.long))
    states = [reset(store, episodes, scn.slots)]
    vocabs = [store.vocab[0]] * e
    for t in range(len(rows[0])):
        states.append(step(store, states[-1], stack_actions([r[t] for r in rows], scn.slots, vocabs)))
    return states


def batched_snap(state: EnvState, row: int) -> Snap:
    o = state.obs
    return Snap(o.status[row].tolist(), o.depth[row].tolist(), o.cost[row].tolist(), int(o.total_cost[row]),
                int(o.n_open[row]), bool(o.done[row]))


def ref_snap(ref: ReferenceEpisode, slots: int) -> Snap:
    return Snap(ref.status(slots), ref.depth(slots), ref.cost(slots), ref.total_cost, ref.n_open, ref.done)


def branch_length(scn: Scenario, slot: int) -> int:
    return scn.record["each_branch"][scn.order[slot]][1]


def n_probes(scn: Scenario, slot: int) -> int:
    return len(scn.record["each_branch"][scn.order[slot]][0])


@SETTINGS
@given(scenarios())
def test_cost_never_decreases(scn: Scenario) -> None:
    for name, snaps in run_both(scn).items():
        for a, b in zip(snaps, snaps[1:]):
            assert b.total >= a.total, name
            assert all(y >= x for x, y in zip(a.cost, b.cost)), (name, a.cost, b.cost)


@SETTINGS
@given(scenarios())
def test_total_cost_is_the_sum_of_branch_charges(scn: Scenario) -> None:
    """Each slot's charge follows from its history: Δ per probe, max(L, n·Δ) read to the end, L full read."""
    delta = scn.record["probe_freq"]
    for name, snaps in run_both(scn).items():
        for snap in snaps:
            assert snap.total == sum(snap.cost), name
            for s, (status, depth, cost) in enumerate(zip(snap.status, snap.depth, snap.cost)):
                if status in (ACTIVE, PRUNED):  # a probed branch has revealed 1..n of its n probes
                    assert 1 <= depth <= n_probes(scn, s), (name, s, depth)
                if status == FINISHED:  # full read (or no probes), or read to the end
                    assert depth in (0, n_probes(scn, s)), (name, s, depth)
                if status == UNOPENED:
                    want = 0
                elif status == FINISHED:
                    want = max(branch_length(scn, s), depth * delta)  # depth 0: full read or no probes
                else:
                    want = depth * delta
                assert cost == want, (name, s, status, depth)


@SETTINGS
@given(scenarios())
def test_finished_or_pruned_branch_is_never_charged_again(scn: Scenario) -> None:
    for name, snaps in run_both(scn).items():
        for t, a in enumerate(snaps):
            for s, status in enumerate(a.status):
                if status in (FINISHED, PRUNED):
                    assert all(b.cost[s] == a.cost[s] and b.status[s] == status for b in snaps[t:]), (name, s)


@SETTINGS
@given(scenarios())
def test_full_read_costs_exactly_the_branch_length(scn: Scenario) -> None:
    for name, snaps in run_both(scn).items():
        for act, before, after in zip(scn.actions, snaps, snaps[1:]):
            if act.full_read and not after.done:
                for s in range(before.n_open, after.n_open):
                    assert after.cost[s] == branch_length(scn, s), name
                    assert (after.status[s], after.depth[s]) == (FINISHED, 0), name


@SETTINGS
@given(records_strategy(), st.data())
def test_reading_to_the_end_costs_max_of_length_and_probes(record: dict, data: st.DataObject) -> None:
    """Open one branch as a probe, then advance it by random chunks (1 = step by step) until it finishes."""
    j = data.draw(st.integers(0, len(record["each_branch"]) - 1))
    probes, length, _ = record["each_branch"][j]
    chunks = data.draw(st.lists(CHUNKS, min_size=len(probes) + 1, max_size=len(probes) + 1))
    actions = [RefAction(open=1)] + [RefAction(advance={0: k}) for k in chunks]
    scn = Scenario(record, [j], 1, actions)
    for name, snaps in run_both(scn).items():
        assert snaps[-1].status[0] == FINISHED, name
        assert snaps[-1].total == max(length, len(probes) * record["probe_freq"]), name


@SETTINGS
@given(scenarios(p_stop=0.0))
def test_opening_beyond_the_available_branches_charges_nothing(scn: Scenario) -> None:
    avail = min(len(scn.order), scn.slots)
    for name, snaps in run_both(scn).items():
        wanted = 0
        for act, before, after in zip(scn.actions, snaps, snaps[1:]):
            wanted += act.open
            assert after.n_open == min(wanted, avail), name
            opened = range(before.n_open, after.n_open)
            charged_to_old = sum(after.cost[s] - before.cost[s] for s in range(before.n_open))
            # The open's charges go to the new slots only; once all are open, an open adds nothing.
            assert after.total - before.total == charged_to_old + sum(after.cost[s] for s in opened), name
            if before.n_open == avail and not act.advance and not act.prune:
                assert after == before, name


@SETTINGS
@given(scenarios(p_stop=0.3), st.data())
def test_done_episodes_never_change(scn: Scenario, data: st.DataObject) -> None:
    """Row 0 stops at a random round and must stay frozen (later stops included) while row 1 keeps acting."""
    t_stop = data.draw(st.integers(0, len(scn.actions) - 1))
    runner = [replace(a, stop=False) for a in scn.actions]
    stopper = runner[:t_stop] + [RefAction(stop=True, answer=scn.record["gold_answer"])] + scn.actions[t_stop + 1:]
    states = run_batched(scn, build_store([scn.record]), rows=[stopper, runner])
    frozen = states[t_stop + 1].obs
    assert bool(frozen.done[0]) and int(frozen.result[0]) >= 0
    for state in states[t_stop + 2:]:
        for name in ("status", "depth", "answer", "streak", "cost", "finish_key", "opened_round", "n_open",
                     "round", "done", "result"):
            assert torch.equal(getattr(state.obs, name)[0], getattr(frozen, name)[0]), name
    ref = ReferenceEpisode(ReferenceQuestion.from_record(scn.record), scn.order[: scn.slots])
    for act in stopper[: t_stop + 1]:
        ref.step(act)
    before = (ref_snap(ref, scn.slots), ref.round, ref.result, list(ref.ledger), list(ref.completions))
    for act in stopper[t_stop + 1:]:
        ref.step(act)
    assert (ref_snap(ref, scn.slots), ref.round, ref.result, list(ref.ledger), list(ref.completions)) == before
