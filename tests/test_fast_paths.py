"""The fast forms used by the hot loops compute exactly what their plain definitions compute.

* `autotts.env.fastops` helpers against the plain torch expressions they replace;
* the sort-free slot vote against `ordered_vote` with key = slot (ties, exclusions, -1 ids);
* the env's incremental pool vote (one completion per episode, and several at once)
  against `ordered_vote` over the finished branches keyed by completion order;
* `Decision.set_branch` merges (first rule, later rules, override, prune) against `torch.where`.
"""

from __future__ import annotations

import pytest
import torch

from autotts.controllers.rules import Decision
from autotts.controllers.vote import ordered_vote, slot_vote_table, slot_winner
from autotts.env.batched import reset, step
from autotts.env.episodes import random_episodes, reference_episodes
from autotts.env.fastops import any_true, equal, flat_nonzero, positive, row_count, rows_and
from autotts.env.state import ACTIVE, FINISH, FINISHED, Action
from autotts.store import build_store
from random_stores import random_records


@pytest.mark.parametrize("seed", range(5))
def test_fastops_match_plain_torch(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-1, 4, (37, 64), generator=g).to(torch.int32)
    col = torch.randint(-1, 4, (37,), generator=g)
    mask = torch.rand((37, 64), generator=g) < 0.3
    rows = torch.rand(37, generator=g) < 0.5
    assert torch.equal(equal(x, 2), x == 2) and torch.equal(positive(x), x > 0)
    assert torch.equal(equal(x, col[:, None]), x == col[:, None])
    assert torch.equal(rows_and(mask, rows), mask & rows[:, None])
    assert torch.equal(row_count(mask), mask.sum(1).to(torch.int32))
    assert any_true(mask) == bool(mask.any()) and not any_true(mask & False) and not any_true(mask[:0])
    assert torch.equal(flat_nonzero(mask), mask.view(-1).nonzero().squeeze(1))
    assert torch.equal(flat_nonzero(x), x.view(-1).nonzero().squeeze(1))


@pytest.mark.parametrize("seed", range(20))
def test_slot_vote_table_is_the_ordered_vote_by_slot(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    e, b = int(torch.randint(1, 40, (1,), generator=g)), int(torch.randint(1, 70, (1,), generator=g))
    answer = torch.randint(0, 1 + seed % 6, (e, b), generator=g).to(torch.int32)  # few ids: many ties
    include = torch.rand((e, b), generator=g) < 0.6
    answer = torch.where(include | (torch.rand((e, b), generator=g) < 0.5), answer, -1)  # excluded may be -1
    want = ordered_vote(answer, include, torch.arange(b).expand(e, b))
    got = slot_vote_table(answer, include)
    for name, w, x in zip(("winner", "top1", "top2"), want, got):
        assert torch.equal(w, x), name
    assert torch.equal(slot_winner(answer, include), want[0])


def _random_action(obs, g: torch.Generator) -> Action:
    """Advances of 0..2 or FINISH and opens of 0..3 (sometimes full reads): many completions per round."""
    e, b = obs.status.shape
    adv = torch.tensor([0, 1, 2, FINISH])[torch.randint(4, (e, b), generator=g)]
    return Action(stop=(torch.rand(e, generator=g) < 0.05) | (obs.round >= 30), answer=torch.full((e,), -1),
                  advance=adv, priority=torch.rand((e, b), generator=g).argsort(1),
                  open=torch.randint(4, (e,), generator=g), full_read=torch.rand(e, generator=g) < 0.4)


@pytest.mark.parametrize("seed", range(3))
def test_pool_vote_is_the_ordered_vote_of_completions(seed: int) -> None:
    store = build_store(random_records(seed=seed, questions=10))
    g = torch.Generator().manual_seed(seed)
    eps = random_episodes(store, 300, g)
    state = reset(store, eps, store.max_branches)
    multi = single = 0
    while not bool(state.obs.done.all()):
        before = (state.obs.status == FINISHED).sum(1)
        state = step(store, state, _random_action(state.obs, g))
        obs = state.obs
        finished = obs.status == FINISHED
        grew = finished.sum(1) - before
        multi, single = multi + int((grew > 1).sum()), single + int((grew == 1).sum())
        winner, top1, top2 = ordered_vote(obs.answer, finished, obs.finish_key)
        assert torch.equal(obs.pool_winner, winner) and torch.equal(obs.pool_top1, top1)
        assert torch.equal(obs.pool_top2, top2) and torch.equal(obs.pool_size, finished.sum(1))
    assert multi > 50 and single > 50, (multi, single)


def test_reference_protocol_pool_matches_too() -> None:
    """Reference-protocol orders: every episode opens and reads in lockstep (rows finish together)."""
    store = build_store(random_records(seed=9, questions=12))
    state = reset(store, reference_episodes(store, seeds=8), store.max_branches)
    g = torch.Generator().manual_seed(9)
    while not bool(state.obs.done.all()):
        state = step(store, state, _random_action(state.obs, g))
        winner, top1, top2 = ordered_vote(state.obs.answer, state.obs.status == FINISHED, state.obs.finish_key)
        assert torch.equal(state.obs.pool_winner, winner) and torch.equal(state.obs.pool_top1, top1)
        assert torch.equal(state.obs.pool_top2, top2)


def test_decision_merges_like_where() -> None:
    """First rule, a later rule (undecided branches only), an override and prunes, against torch.where."""
    g = torch.Generator().manual_seed(0)
    e, b = 50, 16
    obs = reset(build_store(random_records(seed=1, questions=4)),
                random_episodes(build_store(random_records(seed=1, questions=4)), e, g, max_branches=b), b).obs
    masks = [torch.rand((e, b), generator=g) < p for p in (0.0, 0.3, 0.5, 0.4)]
    steps = torch.randint(1, 4, (e, b), generator=g, dtype=torch.int32)
    d = Decision(obs)
    adv, prune, by = (torch.zeros((e, b), dtype=torch.long), torch.zeros((e, b), dtype=torch.bool),
                      torch.full((e, b), -1))
    plan = [(masks[0], 2, True, False), (masks[1], 0, True, False), (masks[2], steps, False, False),
            (masks[3], FINISH, False, True)]
    for rule, (mask, k, pr, override) in enumerate(plan):
        d.rule = rule
        d.set_branch(mask, advance=k, prune=pr, override=override)
        m = mask if override else mask & (by < 0)
        adv, prune, by = torch.where(m, k, adv), torch.where(m, pr, prune), torch.where(m, rule, by)
    assert torch.equal(d.advance.long(), adv) and torch.equal(d.prune, prune) and torch.equal(d.branch_by.long(), by)
    assert d.advance.dtype == torch.int32 and (adv == FINISH).any() and prune.any()


def test_decision_leaves_prune_and_open_unset_when_nothing_is_pruned_or_opened() -> None:
    g = torch.Generator().manual_seed(1)
    store = build_store(random_records(seed=2, questions=4))
    obs = reset(store, random_episodes(store, 20, g), 8).obs
    d = Decision(obs)
    d.set_open(torch.zeros(20, dtype=torch.bool), 3)
    d.set_branch(obs.status == ACTIVE, advance=1)
    assert d.open is None and d.prune is None and d.to_action().prune is None
