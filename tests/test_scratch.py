"""`+experiment=math_scratch` is teacher-free: the run (a short one, same experiment) never builds CMC."""

from __future__ import annotations

import json

import pytest
from train_support import train_cfg

from autotts.controllers.baselines.cmc import CMC
from autotts.controllers.baselines.parallel_probe import ParallelProbe
from autotts.discovery.train import fit

SHORT = ["+experiment=math_scratch", "store=synthetic", "logger=none", "trainer.progress_bar=false",
         "store.search=['synthetic:questions=5,branches=24,seed=1']",
         "store.validation=['synthetic:questions=5,branches=24,seed=101']",
         "trainer.generations=2", "trainer.validate_every=1", "trainer.max_minutes=0", "search.popsize=4",
         "objective.episodes_per_store=6", "imitation.episodes_per_store=4", "imitation.steps=3",
         "imitation.betas=[0.0,1.0]", "validation.betas=[0.0,0.5,1.0]", "validation.seeds=1", "monotone.seeds=1"]


def test_the_scratch_preset_keeps_maths_stores_and_time_budget_and_names_no_cmc() -> None:
    math, scratch = train_cfg("+experiment=math"), train_cfg("+experiment=math_scratch")
    assert scratch["store"] == math["store"]
    # The same trainer and 14.5-minute safety cap; scratch keeps its own, smaller generation budget (120: README).
    assert {**scratch["trainer"], "generations": None} == {**math["trainer"], "generations": None}
    assert scratch["trainer"]["generations"] < math["trainer"]["generations"]
    # The same search but for the freeze: Parallel-Probe's β slopes only (its prune head whole scored lower).
    assert {**scratch["search"], "freeze": None} == {**math["search"], "freeze": None}
    # The same objective but for the reference frontier: math scores at matched tokens against
    # Parallel-Probe's; scratch keeps the λ(β) price (with the reference its knob broke: README).
    assert {**scratch["objective"], "reference": None} == {**math["objective"], "reference": None}
    assert math["objective"]["reference"] == "parallel_probe" and scratch["objective"]["reference"] == ""
    assert set(scratch["search"]["freeze"]) == set(math["search"]["freeze"]) - {"b_br:prune"}
    assert scratch["imitation"]["enabled"] and scratch["imitation"]["teachers"] == ["parallel_probe"]
    assert "cmc" not in json.dumps(scratch).lower()
    assert math["imitation"]["teachers"] == ["cmc"]  # the spy below would catch this one


def test_a_short_scratch_run_imitates_parallel_probe_and_never_constructs_cmc(tmp_path, monkeypatch) -> None:
    built = []
    monkeypatch.setattr(CMC, "__init__", _refuse)
    real = ParallelProbe.__init__

    def spy(self, *args, **kwargs):
        built.append(args[0] if args else kwargs.get("num_chains"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(ParallelProbe, "__init__", spy)
    result = fit(train_cfg(*SHORT), tmp_path)
    assert result.generations == 2 and (result.export_dir / "controller.pt").is_file()
    assert sorted(set(built)) == [2, 48]  # the teacher at β = 0 and β = 1: round(2·24^β) chains
    manifest = json.loads((result.export_dir / "manifest.json").read_text())
    assert manifest["guards"][0] == {"name": "width_by_beta", "params": {"lo": 2, "hi": 48}}


def test_the_spy_catches_cmc_in_the_math_preset(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(CMC, "__init__", _refuse)
    short_math = ["+experiment=math" if a == "+experiment=math_scratch" else a for a in SHORT]
    with pytest.raises(AssertionError, match="CMC constructed"):
        fit(train_cfg(*short_math), tmp_path)


def _refuse(self, *args, **kwargs) -> None:
    raise AssertionError("CMC constructed in a teacher-free run")
