"""`autotts report`: sweep every method on every store, then write plots, tables and `report.md`.

Layout of the output directory:
  report.md                 overview + one section per store (GitHub-readable)
  grid.png                  all stores' accuracy–token curves
  <model>_<dataset>/curve.png, table.md, table.csv, matched.csv, reach.csv
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from autotts.controllers.baselines import BASELINES
from autotts.errors import AutottsError
from autotts.evaluate.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from autotts.evaluate.summary import Band, StoreSummary, summarise
from autotts.evaluate.sweep import ANCHOR, SettingResult, method_label, run_sweep, setting_label


@dataclass(frozen=True)
class ReportSettings:
    protocol: str = "reference"
    seeds: int | None = None
    subset_size: int = 64
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    bootstrap_seed: int = 0
    device: str = "cpu"


def sweep_plan(baselines: Sequence[str], knobs: dict[str, list[float]], controllers: Sequence[str] = (),
               betas: list[float] | None = None) -> list[tuple[str, list[float] | None]]:
    """(method, knob values or None for its default sweep); SC always includes the SC@64 anchor."""
    unknown = [b for b in list(baselines) + list(knobs) if b not in BASELINES]
    if unknown:
        raise AutottsError(f"unknown baseline '{unknown[0]}' (expected one of {', '.join(BASELINES)})")
    plan: list[tuple[str, list[float] | None]] = []
    for name in dict.fromkeys([ANCHOR[0], *baselines]):
        values = knobs.get(name)
        if name == ANCHOR[0]:
            values = list(values if values is not None else BASELINES[name][2])
            if name not in baselines:
                values = []  # SC only as the anchor
            if ANCHOR[1] not in [float(v) for v in values]:
                values.append(ANCHOR[1])
        plan.append((name, values))
    plan.extend((c, betas) for c in controllers)
    return plan


def parse_knobs(specs: Sequence[str]) -> dict[str, list[float]]:
    """`--knobs sc=1,4,64` (repeatable) -> {'sc': [1.0, 4.0, 64.0]}."""
    out = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        try:
            out[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            sep = ""
        if not sep or not out.get(name.strip()):
            raise AutottsError(f"--knobs {spec!r}: expected NAME=v1,v2,... (e.g. sc=1,4,64)")
    return out


def summarise_store(spec: str, plan: list[tuple[str, list[float] | None]], settings: ReportSettings,
                    progress: Callable[[str, SettingResult], None] | None = None) -> StoreSummary:
    """Load one store, run the plan under the protocol, and bootstrap the results."""
    from autotts.evaluate.cli_eval import resolve_device
    from autotts.evaluate.runner import protocol_episodes
    from autotts.store import load_store
    device = resolve_device(settings.device)
    store = load_store(spec).to(device)
    episodes = protocol_episodes(store, settings.protocol, settings.seeds, settings.subset_size).to(device)
    report = (lambda r: progress(store.name, r)) if progress else None
    results = run_sweep(store, episodes, plan, report)
    return summarise(results, store=store.source or store.name, model=store.model, dataset=store.dataset,
                     resamples=settings.resamples, confidence=settings.confidence, seed=settings.bootstrap_seed)


def print_progress(store: str, r: SettingResult) -> None:
    print(f"{store}  {setting_label(r.method, r.knob):<24} {r.accuracy:6.2f}%  {r.tokens:>12,.0f} tok  "
          f"({r.wall_s:.1f} s)", file=sys.stderr, flush=True)


def write_report(summaries: Sequence[StoreSummary], out: str | Path, settings: ReportSettings,
                 command: str | None = None, dpi: int = 110) -> Path:
    """Write plots, tables and report.md for `summaries` into `out`; returns the path of report.md."""
    from autotts.evaluate.plots import frontier_figure, grid_figure, save_png
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for s in summaries:
        folder = out / store_slug(s)
        save_png(frontier_figure(s), folder / "curve.png", dpi)
        table = settings_table(s)
        (folder / "table.md").write_text(table + "\n", encoding="utf-8")
        write_csv(folder / "table.csv", s.table_rows())
        write_csv(folder / "matched.csv", s.matched_rows())
        write_csv(folder / "reach.csv", s.reach_rows())
        sections.append(store_section(s, f"{store_slug(s)}/curve.png", table))
    save_png(grid_figure(summaries), out / "grid.png", dpi)
    text = "\n\n".join([header(summaries, settings, command), overview_table(summaries), "![all stores](grid.png)",
                        *sections]) + "\n"
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def store_slug(s: StoreSummary) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{s.model}_{s.dataset}")


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """CSV with a header from the first row; floats to 10 significant digits, inf as 'inf'."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if not rows:
            return
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            w.writerow({k: f"{v:.10g}" if isinstance(v, float) else ("" if v is None else v) for k, v in row.items()})


# ---- markdown ------------------------------------------------------------------------------------------

def header(summaries: Sequence[StoreSummary], settings: ReportSettings, command: str | None) -> str:
    seeds = settings.seeds if settings.seeds is not None else (100 if settings.protocol == "reference" else 64)
    conf = f"{settings.confidence:.0%}"
    lines = ["# autotts report", "",
             f"{len(summaries)} store(s), `{settings.protocol}` protocol with {seeds} seeds per question. "
             f"Intervals are {conf} percentile bootstrap intervals over questions ({settings.resamples} resamples, "
             f"seed {settings.bootstrap_seed}); each question keeps all its seeds, and all methods share the draws.",
             "", "Accuracy is the percentage of episodes answered with the gold answer (mean over seeds); tokens are "
             "mean tokens per question. *× SC@64* divides by the tokens of self-consistency over 64 full reads."]
    if command:
        lines += ["", f"Generated by `{command}`."]
    return "\n".join(lines)


def overview_table(summaries: Sequence[StoreSummary]) -> str:
    """Per store: SC@64, then the tokens each method needs to reach SC@64's accuracy (× SC@64's tokens)."""
    methods = list(dict.fromkeys(r.method for s in summaries for r in s.reach if r.method != ANCHOR[0]))
    head = ["store", "SC@64 accuracy %", "SC@64 tokens", *[f"{method_label(m)}: tokens to match" for m in methods]]
    rows = []
    for s in summaries:
        if s.anchor is None:
            continue
        reach = {r.method: r for r in s.reach}
        rows.append([f"{s.model} / {s.dataset}", f"{s.anchor[0]:.2f}", fmt_tokens(s.anchor[1]),
                     *[fmt_ratio(reach[m].value, reach[m].lo, reach[m].hi) if m in reach else "" for m in methods]])
    intro = ("## Overview\n\nTokens each method needs to reach SC@64's accuracy, as a multiple of SC@64's tokens "
             "(lower is better; *never* = no setting of the sweep reaches it).")
    return intro + "\n\n" + md_table(head, rows)


def store_section(s: StoreSummary, image: str, table: str) -> str:
    parts = [f"## {s.model} / {s.dataset}", f"![{s.model} {s.dataset}]({image})", table]
    if s.reach:
        parts.append(f"**Tokens to reach SC@64's accuracy ({s.anchor[0]:.2f} %)**\n\n" + reach_table(s))
    if s.matched:
        parts.append("**Accuracy at matched tokens** — points gained over each baseline at the baseline's own "
                     "token counts (mean over its settings inside the method's token range; *n* = settings "
                     "compared)\n\n" + matched_table(s))
    return "\n\n".join(parts)


def settings_table(s: StoreSummary) -> str:
    head = ["method", "setting", "accuracy %", "tokens", "× SC@64 tokens"]
    rows = []
    for c in s.curves:
        for i, knob in enumerate(c.knobs):
            rel = "" if c.relative is None else fmt_ratio(*_at(c.relative, i))
            rows.append([c.label, setting_label(c.method, knob), fmt_ci(*_at(c.accuracy, i), "{:.2f}"),
                         fmt_tokens_ci(*_at(c.tokens, i)), rel])
    return md_table(head, rows)


def reach_table(s: StoreSummary) -> str:
    tok = s.anchor[1]
    rows = [[method_label(r.method), fmt_tokens_ci(r.value * tok, r.lo * tok, r.hi * tok), fmt_ratio(r.value, r.lo, r.hi)]
            for r in s.reach]
    return md_table(["method", "tokens", "× SC@64 tokens"], rows)


def matched_table(s: StoreSummary) -> str:
    compared = {m.baseline for m in s.matched}
    bases = [c.method for c in s.curves if c.method in compared]
    cell = {(m.method, m.baseline): m for m in s.matched}
    rows = []
    for c in s.curves:
        rows.append([c.label, *[_gain(cell.get((c.method, b))) for b in bases]])
    return md_table(["method", *[f"vs {method_label(b)}" for b in bases]], rows)


def _gain(m) -> str:
    if m is None:
        return ""
    if m.points == 0:
        return "—"
    return f"{m.value:+.2f} [{m.lo:+.2f}, {m.hi:+.2f}] (n={m.points})"


def _at(band: Band, i: int) -> tuple[float, float, float]:
    return float(band.value[i]), float(band.lo[i]), float(band.hi[i])


def md_table(head: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["--:"] * (len(head) - 1)
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_tokens(x: float) -> str:
    if x == float("inf"):
        return "never"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_ci(value: float, lo: float, hi: float, spec: str) -> str:
    return f"{spec.format(value)} [{spec.format(lo)}, {spec.format(hi)}]"


def fmt_tokens_ci(value: float, lo: float, hi: float) -> str:
    if value == float("inf"):
        return "never"
    return f"{fmt_tokens(value)} [{fmt_tokens(lo)}, {fmt_tokens(hi)}]"


def fmt_ratio(value: float, lo: float, hi: float) -> str:
    if value == float("inf"):
        return "never"
    r = lambda x: "never" if x == float("inf") else f"{x:.2f}"  # noqa: E731
    return f"{value:.2f}× [{r(lo)}, {r(hi)}]"


__all__ = ["ReportSettings", "parse_knobs", "print_progress", "summarise_store", "sweep_plan", "write_report"]
