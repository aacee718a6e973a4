"""Scale-out parts without a cluster: shards, rank sharding, the worker recipe, settings, host syncs."""

from __future__ import annotations

import pytest
import torch
from train_support import train_cfg

from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, policy_controller
from autotts.controllers.policy import PolicyShape, initial_weights
from autotts.discovery.objective import Objective, ObjectiveConfig
from autotts.discovery.recipe import ObjectiveRecipe
from autotts.discovery.scale_out import check_scale
from autotts.discovery.settings import settings_from
from autotts.env.episodes import concat_episodes
from autotts.env.rollout import rollout
from autotts.errors import AutottsError
from autotts.scale.ranks import ESDDPStrategy, RankShards, strategy_for
from autotts.scale.shards import merge, pack, shard_bounds, unpack
from autotts.scale.syncs import HostSyncs
from autotts.store import load_store

SPEC = "synthetic:questions=4,branches=24,seed=7"


@pytest.fixture(scope="module")
def objective() -> Objective:
    return Objective([load_store(SPEC)], ObjectiveConfig(episodes_per_store=4, betas=2))


def population(p: int, seed: int = 0) -> torch.Tensor:
    shape = PolicyShape()
    return initial_weights(shape) + 0.3 * torch.randn(p, shape.size, generator=torch.Generator().manual_seed(seed))


def test_shard_bounds_cover_the_population_in_order_with_sizes_within_one() -> None:
    assert shard_bounds(5, 2) == [(0, 3), (3, 5)]
    assert shard_bounds(2, 3) == [(0, 1), (1, 2), (2, 2)]
    for n, parts in ((7, 3), (16, 4), (1, 1)):
        bounds = shard_bounds(n, parts)
        sizes = [hi - lo for lo, hi in bounds]
        assert bounds[0][0] == 0 and bounds[-1][1] == n and max(sizes) - min(sizes) <= 1
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def test_scoring_uneven_shards_and_merging_gives_the_whole_population_scores(objective) -> None:
    weights = population(5)
    batch = objective.sample(torch.Generator().manual_seed(1))
    whole = objective(weights, batch)
    merged = merge([objective(weights[lo:hi], batch) for lo, hi in shard_bounds(5, 3)])
    assert torch.equal(merged[0], whole[0]) and len(set(whole[0].tolist())) > 1
    assert all(torch.equal(merged[1][k], whole[1][k]) for k in whole[1])


def test_rank_shards_score_only_their_rows_and_return_everyones() -> None:
    """Rank r of 2 scores rows lo:hi itself; a stand-in all-gather supplies the other rank's table."""
    weights = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    bounds = shard_bounds(5, 2)
    for rank in (0, 1):
        seen, (fitness, metrics) = _as_rank(rank, weights, bounds)
        assert seen == [bounds[rank][1] - bounds[rank][0]]
        assert torch.allclose(fitness, weights.sum(1)) and torch.equal(metrics["last"], weights[:, -1].double())


def _score(w: torch.Tensor, batch: object = None) -> tuple:
    return w.sum(1), {"first": w[:, 0].double(), "last": w[:, -1].double()}


def _as_rank(rank: int, weights: torch.Tensor, bounds: list[tuple[int, int]]) -> tuple[list[int], tuple]:
    """(rows this rank scored, the scores it returns) with a gather that checks its contribution."""
    seen: list[int] = []
    tables = [pack(_score(weights[lo:hi]), ["first", "last"], 3) for lo, hi in bounds]

    def shard_score(w: torch.Tensor, batch: object) -> tuple:
        seen.append(w.shape[0])
        return _score(w)

    def gather(table: torch.Tensor) -> torch.Tensor:
        assert torch.equal(table, tables[rank])  # what this rank contributes
        return torch.stack(tables)

    shards = RankShards(shard_score, rank, 2, gather, broadcast=lambda t: t)  # type: ignore[arg-type]
    return seen, shards(weights, None)  # type: ignore[arg-type]


def test_pack_and_unpack_round_trip_with_padding() -> None:
    fitness, metrics = torch.tensor([0.5, 0.25]), {"accuracy": torch.tensor([1.0, 0.0], dtype=torch.float64)}
    table = pack((fitness, metrics), ["accuracy"], rows=3)
    assert table.shape == (3, 2) and table[2].abs().sum() == 0
    back = unpack(torch.stack([table, pack((fitness[:1], {"accuracy": metrics["accuracy"][:1]}), ["accuracy"], 3)]),
                  [(0, 2), (2, 3)], ["accuracy"])
    assert back[0].tolist() == [0.5, 0.25, 0.5] and back[1]["accuracy"].tolist() == [1.0, 0.0, 1.0]


def test_recipe_builds_the_drivers_objective_and_refuses_other_data(objective) -> None:
    store = objective.stores[0]
    recipe = ObjectiveRecipe((SPEC,), (store.fingerprint,), objective.cfg, PolicyShape(), ActionSpec(),
                             DEFAULT_GUARDS)
    built = recipe.build()
    batch = objective.sample(torch.Generator().manual_seed(3))
    assert torch.equal(built(population(2), batch)[0], objective(population(2), batch)[0])
    other = ObjectiveRecipe(("synthetic:questions=4,branches=24,seed=8",), (store.fingerprint,), objective.cfg,
                            PolicyShape(), ActionSpec(), DEFAULT_GUARDS)
    with pytest.raises(AutottsError, match=r"^store 'synthetic:questions=4,branches=24,seed=8': worker loaded "):
        other.load_stores()


def test_recipe_of_settings_makes_file_paths_absolute(tmp_path, monkeypatch) -> None:
    from autotts.store import save_compact
    save_compact(load_store(SPEC), tmp_path / "s.pt")
    monkeypatch.chdir(tmp_path)
    settings = settings_from(train_cfg("store.search=[s.pt]"))
    recipe = ObjectiveRecipe.of(settings, [load_store(tmp_path / "s.pt")], "cpu")
    assert recipe.stores == (str(tmp_path / "s.pt"),) and recipe.device == "cpu"


@pytest.mark.parametrize(("override", "message"), [
    ("search.num_actors=-1", r"^search.num_actors=-1: expected >= 0"),
    ("search.ray_address=''", r"^search.ray_address='': expected a Ray address"),
    ("trainer.strategy=ddp_spawn", r"^trainer.strategy=ddp_spawn: expected auto, ddp"),
])
def test_scale_settings_fail_in_one_line(override: str, message: str) -> None:
    with pytest.raises(AutottsError, match=message):
        check_scale(settings_from(train_cfg(override)))


def test_several_devices_get_ddp_without_the_gradient_wrapper() -> None:
    assert isinstance(strategy_for("auto", "cpu", 2), ESDDPStrategy)
    assert isinstance(strategy_for("ddp", "cpu", 1), ESDDPStrategy)
    assert strategy_for("auto", "cpu", 1) == "auto" and strategy_for("auto", "cpu", "auto") == "auto"


def test_population_rollout_syncs_once_per_round_in_the_loop_and_never_in_the_policy(objective) -> None:
    """What a GPU would wait for: the rollout loop's live count, once a round; nothing in the policy heads."""
    rounds = []
    recorder = type("R", (), {"on_action": lambda *a: None, "on_state": lambda self, s, rows: rounds.append(1)})()
    episodes = objective.sample(torch.Generator().manual_seed(4)).episodes
    e = len(episodes)
    context = {"beta": torch.full((3 * e,), 0.5), "member": torch.arange(3).repeat_interleave(e)}
    with HostSyncs() as syncs:
        rollout(objective.union, concat_episodes([episodes] * 3), policy_controller(population(3)), context,
                recorder=recorder)
    assert syncs.count(path="controllers/policy.py") == 0
    assert syncs.count("__int__", "env/rollout.py") == len(rounds) - 1 > 5  # every round after reset
    assert syncs.count("__getitem__", "env/rollout.py") == 0  # outcomes recorded by index, not by mask
