"""`search.freeze`: named head slices stay at the start weights while ES moves the rest (real EvoTorch PGPE)."""

from __future__ import annotations

import pytest
import torch

from autotts.controllers.policy import PolicyShape, initial_weights, unflatten
from autotts.discovery.search import SearchConfig, center_of, evaluator_of, make_searcher
from autotts.errors import AutottsError

FREEZE = ("g_br:prune", "g_ep:open", "g_ep:width")


def test_frozen_mask_marks_each_heads_two_logits() -> None:
    shape = PolicyShape()
    w = unflatten(shape.frozen(FREEZE).float(), shape)
    assert w["g_br"].tolist() == [1, 1, 0, 0, 0, 0]          # prune, not advance/fast
    assert w["g_ep"].tolist() == [0, 0, 1, 1, 1, 1]          # open and width, not stop
    assert int(shape.frozen(FREEZE).sum()) == 6
    assert int(shape.frozen(("w_done",)).sum()) == shape.n_completed


@pytest.mark.parametrize("name, fragment", [("g_xx:prune", "unknown weight 'g_xx'"),
                                            ("g_br:stop", "expected a head of g_br"),
                                            ("w_done:prune", "freeze it whole")])
def test_bad_freeze_names_fail_in_one_line(name: str, fragment: str) -> None:
    with pytest.raises(AutottsError, match=fragment):
        PolicyShape().frozen((name,))


def test_pgpe_moves_head_weights_but_not_the_frozen_ones() -> None:
    shape = PolicyShape()
    start = initial_weights(shape)
    cfg = SearchConfig(popsize=8, stdev_init=0.02, stdev_head=0.5, subspace="head", center_lr=0.5, freeze=FREEZE)
    searcher = make_searcher(cfg, start, 0, head_level=shape.head_level(), shape=shape)
    target = torch.ones(shape.size)  # fitness rises as every weight moves toward 1: frozen ones would move too
    evaluator_of(searcher).bind(lambda w, batch: (-(w - target).pow(2).sum(-1), {}), None)
    for _ in range(3):
        searcher.step()
    moved = (center_of(searcher) - start).abs() > 1e-6
    frozen, head = shape.frozen(FREEZE), shape.head_level()
    assert not moved[frozen].any()
    assert not moved[~head].any()                            # outside the head subspace: fixed as before
    assert moved[head & ~frozen].float().mean() > 0.5
