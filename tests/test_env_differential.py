"""Differential test: the batched env against the plain per-episode reference env.

A seeded random controller (random stops, prunes, advances of 1..3 or FINISH,
random priorities, opens of 0..3 as probes or full reads, and Action fields
randomly left None) drives all episodes of a store through `batched.step`; the
same decisions, split per row, drive one `ReferenceEpisode` each. After every
round every episode that acted is compared: statuses, depths, answers, streaks,
per-slot and total costs, sequential tokens (the per-round critical path), open rounds, completion order,
n_open, round, done,
result; one extra random round at the end checks that answered episodes stay put.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from autotts.env.batched import reset, step
from autotts.env.episodes import Episodes, concat_episodes, random_episodes, reference_episodes
from autotts.env.reference import ReferenceEpisode, ReferenceQuestion, reference_questions, split_action
from autotts.env.state import FINISH, FINISHED, NOT_FINISHED, PRUNED, Action, Observation
from autotts.store import ReplayStore, build_store, discover
from autotts.store.autotts_json import read_records, validate_record
from autotts.store.io import model_and_dataset
from random_stores import random_records

PUBLIC = discover() if os.environ.get("AUTOTTS_DATA") else []
ADVANCES = torch.tensor([0, 0, 0, 1, 1, 2, 3, FINISH])
MAX_ROUNDS = 40
SLOT_FIELDS = ("status", "depth", "streak", "cost", "opened_round")


@dataclass
class Coverage:
    """What the random episodes exercised; asserted so the test cannot pass by doing nothing."""

    episodes: int = 0
    rounds: int = 0
    finished_by_advance: int = 0
    zero_remainder: int = 0
    full_reads: int = 0
    pruned: int = 0
    exhausted: int = 0
    parallel: int = 0  # episodes whose sequential tokens lie strictly between 0 and their total


def random_action(obs: Observation, gen: torch.Generator, vocab_len: torch.Tensor, p_stop: float) -> Action:
    """Random decisions for every episode; some fields are None for the whole batch (skipped work paths)."""
    e, b = obs.status.shape
    coin = lambda p: bool(torch.rand((), generator=gen) < p)  # noqa: E731
    stop = (torch.rand(e, generator=gen) < p_stop) | (obs.round >= MAX_ROUNDS)
    answer = torch.randint(1 << 30, (e,), generator=gen) % (vocab_len + 1) - 1
    # Prunes and advances touch the opened slots and two unopened ones (which must be ignored).
    near = torch.arange(b)[None, :] < (obs.n_open + 2)[:, None]
    return Action(
        stop=stop, answer=answer,
        prune=None if coin(0.3) else (torch.rand((e, b), generator=gen) < 0.05) & near,
        advance=None if coin(0.15) else ADVANCES[torch.randint(len(ADVANCES), (e, b), generator=gen)] * near,
        priority=None if coin(0.25) else torch.rand((e, b), generator=gen).argsort(1),
        open=None if coin(0.15) else torch.randint(4, (e,), generator=gen),
        full_read=None if coin(0.3) else torch.rand(e, generator=gen) < 0.3,
    )


def run_differential(name: str, records: list[dict], store: ReplayStore, episodes: Episodes, slots: int, seed: int,
                     p_stop: float) -> Coverage:
    """Drive both envs with the same random decisions until every episode has answered; compare each round."""
    questions = [ReferenceQuestion.from_record(r) for r in records]
    state = reset(store, episodes, slots)
    qs, orders, avail = episodes.question.tolist(), episodes.order.tolist(), state.obs.n_avail.tolist()
    refs = [ReferenceEpisode(questions[q], orders[i][: avail[i]]) for i, q in enumerate(qs)]
    vocabs = [store.vocab[q] for q in qs]
    vocab_len = torch.tensor([len(v) for v in vocabs])
    gen = torch.Generator().manual_seed(seed)
    for r in range(MAX_ROUNDS + 1):
        action = random_action(state.obs, gen, vocab_len, p_stop)
        live = (~state.obs.done).nonzero().squeeze(1)
        state = step(store, state, action)
        for ref, act in zip(refs, split_action(action, vocabs)):
            ref.step(act)
        compare(f"{name} round {r}", state.obs, refs, vocabs, live)
        if bool(state.obs.done.all()):
            break
    assert all(ref.done for ref in refs), f"{name}: episodes still running after {MAX_ROUNDS} rounds"
    # One more round of random actions: episodes that answered must not change (not even by a second stop).
    state = step(store, state, random_action(state.obs, gen, vocab_len, p_stop=0.5))
    compare(f"{name} after the end", state.obs, refs, vocabs, torch.arange(len(refs)))
    return coverage(refs)


def compare(where: str, obs: Observation, refs: list[ReferenceEpisode], vocabs: list[list[str]],
            rows: Tensor) -> None:
    """Episodes `rows` observe what their reference episodes show (over the slots opened so far)."""
    w = max(1, int(obs.n_open.max()))
    cols = {k: getattr(obs, k)[rows, :w].tolist() for k in SLOT_FIELDS + ("answer", "finish_key")}
    vals = {k: getattr(obs, k)[rows].tolist() for k in ("n_open", "round", "done", "result", "seq_cost")}
    total = obs.total_cost[rows].tolist()
    for j, i in enumerate(rows.tolist()):
        ref = refs[i]
        ctx = f"{where}, episode {i}"
        for k in SLOT_FIELDS:
            _same(ctx, k, cols[k][j], getattr(ref, k)(w))
        _same(ctx, "answer", [vocabs[i][a] if a >= 0 else None for a in cols["answer"][j]], ref.answer(w))
        _same(ctx, "completion order", completion_order(cols["finish_key"][j]), ref.completions)
        _same(ctx, "total cost", total[j], ref.total_cost)
        _same(ctx, "sequential tokens", vals["seq_cost"][j], ref.seq_cost)
        _same(ctx, "n_open", vals["n_open"][j], ref.n_open)
        _same(ctx, "round", vals["round"][j], ref.round)
        _same(ctx, "done", vals["done"][j], ref.done)
        result = vals["result"][j]
        _same(ctx, "result", vocabs[i][result] if result >= 0 else None, ref.result)


def completion_order(keys: list[int]) -> list[int]:
    """Finished slots sorted by finish key; equal keys would leave vote tie-breaks undefined."""
    done = sorted((k, s) for s, k in enumerate(keys) if k != NOT_FINISHED)
    assert len({k for k, _ in done}) == len(done), f"duplicate finish keys {done}"
    return [s for _, s in done]


def _same(ctx: str, field: str, got: object, want: object) -> None:
    if got != want:
        raise AssertionError(f"{ctx}: {field}: batched {got!r} != reference {want!r}")


def coverage(refs: list[ReferenceEpisode]) -> Coverage:
    cov = Coverage(episodes=len(refs), rounds=sum(ref.round for ref in refs))
    for ref in refs:
        cov.exhausted += ref.n_open == ref.n_avail
        cov.parallel += 0 < ref.seq_cost < ref.total_cost
        for sl in ref.slots:
            cov.pruned += sl.status == PRUNED
            if sl.status == FINISHED and sl.reader.k == 0 and sl.reader.probes:
                cov.full_reads += 1
            elif sl.status == FINISHED:
                cov.finished_by_advance += 1
                cov.zero_remainder += sl.reader.length <= sl.reader.charged
    return cov


def assert_covered(cov: Coverage, min_episodes: int) -> None:
    assert cov.episodes >= min_episodes, cov
    assert 10 * cov.episodes <= cov.rounds <= 30 * cov.episodes, cov  # ~10-30 rounds per episode
    for name in ("finished_by_advance", "zero_remainder", "full_reads", "pruned", "exhausted", "parallel"):
        assert getattr(cov, name) > 0, f"{name} never happened: {cov}"


STORE_PARAMS = [pytest.param(p, id="/".join(model_and_dataset(p))) for p in PUBLIC] or [
    pytest.param(None, marks=pytest.mark.skip(reason="AUTOTTS_DATA is not set: no public stores"))]


@pytest.mark.parametrize("path", STORE_PARAMS)
def test_public_store_matches_reference(path) -> None:
    """Reference-protocol orders capped at 64 slots and random orders at 24 (so branches often run out)."""
    records = read_records(path)
    store = build_store(records)
    protocol = reference_episodes(store, seeds=17)
    rand = random_episodes(store, 510, torch.Generator().manual_seed(7), max_branches=24)
    cov_a = run_differential(f"{path} protocol", records, store, protocol, 64, seed=1, p_stop=1 / 15)
    cov_b = run_differential(f"{path} random", records, store, rand, 24, seed=2, p_stop=1 / 15)
    cov = Coverage(*(getattr(cov_a, k) + getattr(cov_b, k) for k in Coverage.__dataclass_fields__))
    assert_covered(cov, 1000)


def test_synthetic_store_matches_reference() -> None:
    """Empty probe lists, Δ·K > L, L = 0, single-branch questions, Δ = 1: random and protocol orders."""
    records = random_records(seed=3, questions=16)
    for qi, rec in enumerate(records):
        validate_record("synthetic", qi, rec)
    store = build_store(records)
    assert reference_questions(store) == [ReferenceQuestion.from_record(r) for r in records]
    eps = concat_episodes([reference_episodes(store, seeds=32),
                           random_episodes(store, 500, torch.Generator().manual_seed(5))])
    cov = run_differential("synthetic", records, store, eps, store.max_branches, seed=4, p_stop=1 / 12)
    assert_covered(cov, 1000)
    empty = sum(1 for rec in records for b in rec["each_branch"] if not b[0])
    assert empty > 0 and any(len(rec["each_branch"]) == 1 for rec in records)
