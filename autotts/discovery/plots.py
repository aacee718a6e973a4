"""A small accuracy-token picture of a trained controller (the reports module draws the nicer ones)."""

from __future__ import annotations

from pathlib import Path


def curve_png(sweeps: dict[str, dict], betas: list[float], path: str | Path, title: str = "") -> Path:
    """One line per store through (tokens, accuracy) at each β; saved as a PNG at `path`."""
    from matplotlib.figure import Figure

    from autotts.evaluate.plots import save_png

    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.add_subplot()
    for name, sweep in sweeps.items():
        ax.plot(sweep["tokens"], sweep["accuracy"], marker="o", markersize=3, label=name)
        for beta, x, y in zip(betas, sweep["tokens"], sweep["accuracy"]):
            if beta in (0.0, 0.5, 1.0):
                ax.annotate(f"β={beta:g}", (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("mean tokens per question")
    ax.set_ylabel("accuracy %")
    ax.set_title(title or "accuracy-token curve of the learned controller (β sweep)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_png(fig, path, dpi=100)
