"""DAgger's shadow teacher: labels the driver's states with the teacher's decisions (memory kept per episode)."""

from __future__ import annotations

import torch

from autotts.controllers.baselines import make_baseline
from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.discovery.dagger import relabel, shadow_samples
from autotts.discovery.imitation import ImitationConfig, _Collector, pool_samples
from autotts.env.episodes import random_episodes
from autotts.env.rollout import rollout
from autotts.store.synthetic import synthetic_store


def _rows(data: dict[str, torch.Tensor]) -> list[tuple]:
    """Samples as sortable tuples (the two collectors emit them in different orders)."""
    n = data["stop"].shape[0]
    flat = [data[k].reshape(n, -1).double() for k in sorted(data)]
    return sorted(tuple(round(x, 6) for x in row) for row in torch.cat(flat, 1).tolist())


def test_a_teacher_shadowing_itself_yields_exactly_its_own_imitation_samples() -> None:
    """Driven by CMC itself, the shadow CMC sees its own states: its labels (opening rounds completed by
    stepping a copy, memory rows kept across the rollout's compaction) are the plain collector's."""
    store = synthetic_store(questions=6, branches=24, seed=2)
    spec = ActionSpec(slots=24)
    for beta in (0.0, 0.6):
        eps = random_episodes(store, 24, torch.Generator().manual_seed(1))
        own = _Collector(beta, spec, 0.5, torch.Generator().manual_seed(7))
        rollout(store, eps, make_baseline("cmc", beta), recorder=own)
        shadowed = shadow_samples(store, eps, make_baseline("cmc", beta), None, make_baseline("cmc", beta),
                                  beta, spec, 0.5, torch.Generator().manual_seed(7))
        a, b = pool_samples(own.parts), pool_samples(shadowed)
        assert a["open"].sum() > 0 and a["stop"].sum() > 0 and a["advance"].sum() > 0  # not vacuous
        assert _rows(a) == _rows(b)


def test_relabelled_states_are_the_learners_not_the_teachers() -> None:
    """Neutral weights run other episodes than CMC: the states (features) differ, the labels are CMC's moves."""
    store = synthetic_store(questions=6, branches=24, seed=2)
    spec, shape = ActionSpec(slots=24), PolicyShape()
    cfg = ImitationConfig(betas=(0.0, 1.0), episodes_per_store=12, keep=1.0)
    data = relabel([store], initial_weights(shape), shape, spec, DEFAULT_GUARDS, cfg, torch.Generator().manual_seed(0))
    own = _Collector(0.0, spec, 1.0, torch.Generator().manual_seed(0))
    rollout(store, random_episodes(store, 12, torch.Generator().manual_seed(0)), make_baseline("cmc", 0.0),
            recorder=own)
    assert set(data["beta"].tolist()) == {0.0, 1.0}
    assert data["stop"].sum() > 0 and data["advance"].sum() > 0
    assert _rows(data) != _rows(pool_samples(own.parts))
