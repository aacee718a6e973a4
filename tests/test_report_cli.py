"""`autotts report` end to end: a small store always; the public stores when AUTOTTS_DATA is set."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from matplotlib.image import imread

from autotts.cli import main
from autotts.evaluate.report import store_slugs
from autotts.evaluate.summary import summarise

from reference_sweep import reference_csv
from report_toys import sweep, write_toy_store

HAVE_DATA = bool(os.environ.get("AUTOTTS_DATA"))
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="public stores: set AUTOTTS_DATA")


def _csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _png_ok(path: Path) -> None:
    img = imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 300
    assert (img[..., :3].min(-1) < 0.9).mean() > 0.01


def test_report_on_a_small_store(tmp_path, capsys):
    store = write_toy_store(tmp_path / "toy-model" / "toyset.json")
    out = tmp_path / "report"
    rc = main(["report", "--store", str(store), "--baselines", "sc,parallel_probe,cmc", "--knobs", "sc=1,8",
               "--knobs", "parallel_probe=4", "--knobs", "cmc=0,1", "--seeds", "3", "--resamples", "200",
               "--out", str(out)])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(out / "report.md")
    rows = _csv(out / "toy-model_toyset" / "table.csv")
    assert [r["setting"] for r in rows] == ["SC@1", "SC@8", "SC@64", "Parallel-Probe (4)", "CMC β=0", "CMC β=1"]
    for r in rows:
        assert float(r["accuracy_lo"]) <= float(r["accuracy"]) <= float(r["accuracy_hi"])
    assert float(rows[2]["tokens_vs_sc64"]) == 1.0
    assert {r["method"] for r in _csv(out / "toy-model_toyset" / "reach.csv")} == {"sc", "parallel_probe", "cmc"}
    assert len(_csv(out / "toy-model_toyset" / "matched.csv")) == 6  # 3 methods x 2 other baselines
    md = (out / "report.md").read_text()
    assert "## toy-model / toyset" in md and "![all stores](grid.png)" in md
    assert "(toy-model_toyset/curve.png)" in md and "| SC@N | SC@64 |" in md
    _png_ok(out / "grid.png")
    _png_ok(out / "toy-model_toyset" / "curve.png")
    # Redraw from results.json without evaluating: same point figures, new bootstrap.
    again = tmp_path / "again"
    assert main(["report", "--results", str(out / "results.json"), "--resamples", "50", "--out", str(again)]) == 0
    redrawn = _csv(again / "toy-model_toyset" / "table.csv")
    assert ([(r["setting"], r["accuracy"], r["tokens"]) for r in redrawn]
            == [(r["setting"], r["accuracy"], r["tokens"]) for r in rows])
    assert "3 seeds per question" in (again / "report.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--knobs", "sc"], "--knobs 'sc': expected NAME=v1,v2"),
    (["--knobs", "sc=a,b"], "--knobs 'sc=a,b'"),
    (["--baselines", "sc,magic"], "unknown baseline 'magic'"),
    (["--seeds", "0"], "--seeds 0"),
    (["--confidence", "1.5"], "--confidence 1.5"),
])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, argv, message):
    store = write_toy_store(tmp_path / "m" / "d.json", questions=2)
    rc = main(["report", "--store", str(store), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--store", "nope.json"], "nope.json"),
    (["--results", "bad.json"], "bad.json: not an autotts results file"),
    (["--results", "missing.json"], "missing.json: cannot read results"),
    ([], "give at least one --store"),
])
def test_missing_inputs_are_one_line_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"stores": []}')
    rc = main(["report", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


@needs_data
def test_report_on_two_public_stores(tmp_path):
    """CI-sized: two stores, every baseline with a few knobs, 10 seeds."""
    out = tmp_path / "report"
    rc = main(["report", "--store", "Qwen3-0.6B/aime24", "--store", "Qwen3-8B/aime25", "--seeds", "10",
               "--knobs", "sc=1,8", "--knobs", "asc=8,64", "--knobs", "esc=64", "--knobs", "parallel_probe=4,16",
               "--knobs", "cmc=0,0.5", "--resamples", "500", "--out", str(out)])
    assert rc == 0
    md = (out / "report.md").read_text()
    for store in ("Qwen3-0.6B_aime24", "Qwen3-8B_aime25"):
        rows = _csv(out / store / "table.csv")
        assert len(rows) == 10 and {r["method"] for r in rows} == {"sc", "asc", "esc", "parallel_probe", "cmc"}
        assert all(r["store"].endswith(store.replace("_", "/") + ".json.gz") for r in rows)
        _png_ok(out / store / "curve.png")
        assert f"({store}/curve.png)" in md
    # 10 seeds x 30 questions: 300 episodes per setting; ASC(64) needs fewer tokens than SC@64 at equal accuracy.
    rows = {r["setting"]: r for r in _csv(out / "Qwen3-0.6B_aime24" / "table.csv")}
    assert rows["SC@64"]["accuracy"] == rows["ASC (64)"]["accuracy"]
    assert float(rows["ASC (64)"]["tokens_vs_sc64"]) < 0.9
    # Sequential tokens: SC@1 and ASC (one branch a round) wait for all they spend; parallel methods wait less.
    seq = {k: (float(r["seq_tokens"]), float(r["tokens"])) for k, r in rows.items()}
    assert all(seq[k][0] == seq[k][1] for k in ("SC@1", "ASC (8)", "ASC (64)"))
    assert all(0 < seq[k][0] < seq[k][1] for k in ("SC@8", "SC@64", "ESC (64)", "Parallel-Probe (4)", "CMC β=0.5"))
    assert "sequential tokens" in md
    _png_ok(out / "grid.png")


@needs_data
def test_report_sc_figures_match_the_reference_sweep(tmp_path):
    """With the full reference protocol the report's point figures are the reference's (SC is cheap)."""
    out = tmp_path / "report"
    assert main(["report", "--store", "Qwen3-1.7B/aime25", "--baselines", "sc", "--knobs", "sc=4,64",
                 "--resamples", "50", "--out", str(out)]) == 0
    got = {r["setting"]: r for r in _csv(out / "Qwen3-1.7B_aime25" / "table.csv")}
    ref = {f"SC@{r['knob']}": r for r in _csv(reference_csv())
           if r["model"] == "Qwen3-1.7B" and r["dataset"] == "aime25" and r["method"] == "SC"}
    for name in ("SC@4", "SC@64"):
        assert round(float(got[name]["accuracy"]), 2) == float(ref[name]["acc"])
        assert round(float(got[name]["tokens"]), 1) == pytest.approx(float(ref[name]["avg_tokens"]), abs=0.051)


def test_store_folders_stay_distinct():
    a = summarise(sweep(), model="Qwen3 8B", dataset="aime25", resamples=10)
    assert store_slugs([a, a, a]) == ["Qwen3_8B_aime25", "Qwen3_8B_aime25_2", "Qwen3_8B_aime25_3"]


def test_missing_matplotlib_fails_before_evaluating(tmp_path, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    store = write_toy_store(tmp_path / "m" / "d.json", questions=2)
    rc = main(["report", "--store", str(store), "--out", str(tmp_path / "o")])
    err = capsys.readouterr()
    assert rc == 2 and "plots need matplotlib" in err.err and "SC@" not in err.err  # no sweep ran
