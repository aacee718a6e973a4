"""Accuracy–token figures (matplotlib, Agg, no pyplot state): one store, or a grid of stores.

Functions return `matplotlib.figure.Figure` objects so callers can save them
(`save_png`) or log them (W&B `wandb.Image(fig)`). Each method's line carries
`gid="curve:<method>"` so tests and callers can find the curves on the axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from autotts.evaluate.summary import StoreSummary
from autotts.evaluate.sweep import ANCHOR

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# One colour per method across every figure; exported controllers take the extra colours in turn.
METHOD_COLORS = {"sc": "#4d4d4d", "asc": "#1f77b4", "esc": "#9467bd", "parallel_probe": "#ff7f0e", "cmc": "#2ca02c"}
EXTRA_COLORS = ("#d62728", "#e377c2", "#8c564b", "#17becf", "#bcbd22")
MARKERS = {"sc": "o", "asc": "s", "esc": "D", "parallel_probe": "^", "cmc": "v"}


def require_matplotlib() -> None:
    """Fail early, in one line, when matplotlib (an optional dependency) is missing."""
    import importlib.util

    from autotts.errors import AutottsError
    if importlib.util.find_spec("matplotlib") is None:
        raise AutottsError("plots need matplotlib: pip install 'autotts[train]' (or pip install matplotlib)")


def method_color(method: str, others: Sequence[str] = ()) -> str:
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    extra = [m for m in others if m not in METHOD_COLORS]
    return EXTRA_COLORS[extra.index(method) % len(EXTRA_COLORS)] if method in extra else EXTRA_COLORS[0]


def draw_frontier(ax: "Axes", summary: StoreSummary, legend: bool = True, note: str | None = None) -> int:
    """Draw every method's curve with its accuracy band on `ax`; returns the number of curves drawn.

    `note` (e.g. the sample sizes) becomes the legend's title.
    """
    methods = [c.method for c in summary.curves]
    for c in summary.curves:
        order = c.tokens.value.argsort()
        x, color = c.tokens.value[order], method_color(c.method, methods)
        ax.fill_between(x, c.accuracy.lo[order], c.accuracy.hi[order], color=color, alpha=0.08, linewidth=0)
        for edge in (c.accuracy.lo[order], c.accuracy.hi[order]):
            ax.plot(x, edge, color=color, alpha=0.45, linewidth=0.6, linestyle="--")
        ax.plot(x, c.accuracy.value[order], marker=MARKERS.get(c.method, "*"), markersize=4, linewidth=1.6,
                color=color, label=c.label, gid=f"curve:{c.method}")
    if summary.anchor is not None:
        ax.axhline(summary.anchor[0], color=METHOD_COLORS[ANCHOR[0]], linestyle=":", linewidth=0.9,
                   label="SC@64 accuracy")
    _token_axis(ax)
    ax.set_xlabel("mean tokens per question")
    ax.set_ylabel("accuracy %")
    ax.set_title(f"{summary.model} / {summary.dataset}", fontsize=10)
    ax.grid(True, which="both", alpha=0.25, linewidth=0.5)
    if legend:
        ax.legend(fontsize=7, loc="best", framealpha=0.85, title=note, title_fontsize=6)
    return len(summary.curves)


def _token_axis(ax: "Axes") -> None:
    """Log-scale token axis labelled 20k, 50k, 100k, ... rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _short_tokens(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _short_tokens(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:g}M"
    return f"{x / 1e3:g}k" if x >= 1e3 else f"{x:g}"


def _has_seq(c) -> bool:
    return len(c.seq_tokens) == len(c.knobs) and all(x == x for x in c.seq_tokens)  # x == x: not NaN


def draw_sequential(ax: "Axes", summary: StoreSummary) -> int:
    """Accuracy against sequential tokens (the critical path) for every curve that has them; returns how many."""
    import numpy as np
    methods = [c.method for c in summary.curves]
    drawn = 0
    for c in filter(_has_seq, summary.curves):
        seq = np.asarray(c.seq_tokens, dtype=float)
        order = seq.argsort()
        ax.plot(seq[order], c.accuracy.value[order], marker=MARKERS.get(c.method, "*"), markersize=4,
                linewidth=1.6, color=method_color(c.method, methods), label=c.label, gid=f"seq:{c.method}")
        drawn += 1
    _token_axis(ax)
    ax.set_xlabel("mean sequential tokens per question (critical path)")
    ax.set_title("latency: branches of a round decode in parallel", fontsize=9)
    ax.grid(True, which="both", alpha=0.25, linewidth=0.5)
    return drawn


def frontier_figure(summary: StoreSummary, width: float = 6.4, height: float = 4.4) -> "Figure":
    """One store's accuracy–token curves with bootstrap bands and, when the results have them, a second
    panel (`width` wide again) of accuracy against sequential tokens."""
    from matplotlib.figure import Figure
    panels = 2 if any(map(_has_seq, summary.curves)) else 1
    fig = Figure(figsize=(panels * width, height), layout="constrained")
    axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
    draw_frontier(axes[0], summary, note=f"{summary.questions} questions, {summary.episodes} episodes\n"
                                        f"bands: {summary.confidence:.0%} bootstrap over questions")
    if panels == 2:
        draw_sequential(axes[1], summary)
    return fig


def grid_figure(summaries: Sequence[StoreSummary], panel: float = 3.6) -> "Figure":
    """All stores with one shared legend: models as rows and benchmarks as columns when they fill that grid,
    otherwise the panels in order, up to four per row."""
    from matplotlib.figure import Figure
    cells = _grid_cells(summaries)
    rows, cols = max(r for r, _ in cells) + 1, max(c for _, c in cells) + 1
    fig = Figure(figsize=(panel * cols + 0.4, panel * 0.8 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for s, (r, c) in zip(summaries, cells):
        ax = axes[r][c]
        ax.set_visible(True)
        draw_frontier(ax, s, legend=False)
    handles, labels = _legend_entries(axes)
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 7), fontsize=8)
    return fig


def _grid_cells(summaries: Sequence[StoreSummary]) -> list[tuple[int, int]]:
    """(row, column) of each summary's panel."""
    models = sorted({s.model for s in summaries})
    datasets = sorted({s.dataset for s in summaries})
    if len(summaries) == len(models) * len(datasets) == len({(s.model, s.dataset) for s in summaries}):
        return [(models.index(s.model), datasets.index(s.dataset)) for s in summaries]
    cols = min(len(summaries), 4)
    return [divmod(i, cols) for i in range(len(summaries))]


def _legend_entries(axes) -> tuple[list, list[str]]:
    seen: dict[str, object] = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    return list(seen.values()), list(seen.keys())


def curve_lines(fig: "Figure") -> list:
    """The method curves drawn on a figure (lines whose gid starts with 'curve:')."""
    return [line for ax in fig.axes for line in ax.get_lines() if (line.get_gid() or "").startswith("curve:")]


def save_png(fig: "Figure", path: str | Path, dpi: int = 110) -> Path:
    """Write a PNG with the Agg renderer (no display needed); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def to_rgb(fig: "Figure", dpi: int = 100) -> "np.ndarray":
    """[H, W, 3] uint8 pixels of the figure, rendered with Agg.

    For loggers: `wandb.Image(to_rgb(fig))` works even where pyplot was never
    imported (wandb.Image(fig) itself needs matplotlib.pyplot loaded).
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


__all__ = ["curve_lines", "draw_frontier", "draw_sequential", "frontier_figure", "grid_figure", "method_color",
           "require_matplotlib", "save_png", "to_rgb"]
