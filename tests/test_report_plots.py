"""Accuracy–token figures: the curves on the figure object, and the PNG read back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from matplotlib.image import imread

from autotts.evaluate.plots import METHOD_COLORS, curve_lines, frontier_figure, grid_figure, save_png, to_rgb
from autotts.evaluate.summary import as_columns, summarise

from report_toys import setting, sweep


def _summary(model: str = "m", dataset: str = "d", extra: bool = False):
    results = sweep() + ([setting("runs/ctrl", b, 0.35 + 0.3 * b, 1.5e4 + 3e5 * b) for b in (0.0, 0.5, 1.0)]
                         if extra else [])
    return summarise(results, store=f"{model}/{dataset}", model=model, dataset=dataset, resamples=200)


def _has_color(img: np.ndarray, hex_color: str, tol: float = 0.02) -> bool:
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return bool((np.abs(img[..., :3] - rgb).max(-1) < tol).sum() > 20)


def test_frontier_figure_has_one_curve_per_method_and_a_readable_png(tmp_path):
    s = _summary(extra=True)
    fig = frontier_figure(s, width=6.0, height=4.0)
    lines = curve_lines(fig)
    assert sorted(line.get_gid() for line in lines) == ["curve:cmc", "curve:runs/ctrl", "curve:sc"]
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.collections) == 3  # one confidence band per method
    cmc = next(line for line in lines if line.get_gid() == "curve:cmc")
    assert np.allclose(cmc.get_xdata(), s.curve("cmc").tokens.value) and np.allclose(cmc.get_ydata(), [40.0, 60.0])
    path = save_png(fig, tmp_path / "curve.png", dpi=100)
    img = imread(path)
    assert img.shape[:2] == (400, 600)
    assert (img[..., :3].min(-1) < 0.9).mean() > 0.02  # not blank
    assert _has_color(img, METHOD_COLORS["cmc"]) and _has_color(img, METHOD_COLORS["sc"])
    assert path.stat().st_size < 150_000


def test_frontier_figure_adds_a_sequential_tokens_panel(tmp_path):
    """With sequential tokens the figure gets a second panel: accuracy against the critical path."""
    results = [replace(r, seq_tokens=r.tokens / (4.0 if r.method == "sc" else 2.0)) for r in sweep()]
    s = summarise(results, store="m/d", model="m", dataset="d", resamples=50)
    fig = frontier_figure(s, width=6.0, height=4.0)
    seq = sorted((line for ax in fig.axes for line in ax.get_lines() if (line.get_gid() or "").startswith("seq:")),
                 key=lambda line: line.get_gid())
    assert [line.get_gid() for line in seq] == ["seq:cmc", "seq:sc"]
    assert np.allclose(seq[0].get_xdata(), [r.seq_tokens for r in results if r.method == "cmc"])
    assert fig.axes[1].get_xlabel().startswith("mean sequential tokens")
    assert imread(save_png(fig, tmp_path / "curve.png", dpi=50)).shape[:2] == (200, 600)


def test_grid_figure_lays_out_models_by_benchmarks(tmp_path):
    summaries = [_summary(m, d) for m in ("A", "B") for d in ("x", "y")]
    fig = grid_figure(summaries, panel=2.5)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4 and len(curve_lines(fig)) == 8
    assert [ax.get_title() for ax in visible] == ["A / x", "A / y", "B / x", "B / y"]
    assert len(fig.legends) == 1
    img = imread(save_png(fig, tmp_path / "grid.png", dpi=60))
    assert img.shape[1] == round((2.5 * 2 + 0.4) * 60)


def test_grid_figure_packs_an_incomplete_grid():
    summaries = [_summary("A", "x"), _summary("B", "y"), _summary("C", "z")]
    fig = grid_figure(summaries)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["A / x", "B / y", "C / z"]
    assert len(fig.axes) == 3  # one row, no empty panels


def test_band_follows_the_bootstrap_interval():
    s = _summary()
    s = replace(s, curves=[s.curve("sc")])
    fig = frontier_figure(s)
    band = fig.axes[0].collections[0].get_paths()[0].vertices
    c = s.curve("sc")
    assert np.isclose(band[:, 1].min(), c.accuracy.lo.min()) and np.isclose(band[:, 1].max(), c.accuracy.hi.max())


def test_logging_helpers_feed_wandb(monkeypatch):
    """The trainer logs the same figure and rows: pixels for wandb.Image, columns/data for wandb.Table."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    import wandb
    s = _summary(extra=True)
    pixels = to_rgb(frontier_figure(s, width=5.0, height=3.0), dpi=80)
    assert pixels.shape == (240, 400, 3) and pixels.dtype == np.uint8 and pixels.min() < 100
    assert wandb.Image(pixels).image.size == (400, 240)
    columns, data = as_columns(s.table_rows() + s.reach_rows())
    table = wandb.Table(columns=columns, data=data)
    assert len(table.data) == 8 + 3 and "target_accuracy" in table.columns and data[0][columns.index("tokens_lo")] > 0


def test_readme_pictures_are_small_real_pngs():
    """The README's plot and trace picture (made by `autotts report` / `autotts trace`) stay under 150 KB."""
    from pathlib import Path
    docs = Path(__file__).resolve().parent.parent / "docs"
    for name in ("report_curve.png", "trace_cmc.png"):
        path = docs / name
        assert path.stat().st_size < 150_000
        img = imread(path)
        assert img.shape[0] > 300 and img.shape[1] > 500 and (img[..., :3].min(-1) < 0.9).mean() > 0.05
