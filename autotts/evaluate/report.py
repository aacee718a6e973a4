"""`autotts report`: sweep every method on every store, then write plots, tables and `report.md`.

Layout of the output directory:
  report.md                 overview + one section per store (GitHub-readable)
  grid.png                  all stores' accuracy–token curves
  results.json              every setting's figures and per-question means (redraw with --results)
  paired_mean.csv           controllers − CMC / SC@64 on the mean over each dataset's stores (2 or more)
  <model>_<dataset>/curve.png, table.md, table.csv, matched.csv, reach.csv, paired.csv
"""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from autotts.controllers.baselines import BASELINES
from autotts.errors import AutottsError
from autotts.evaluate.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from autotts.evaluate.paired import Difference, compare
from autotts.evaluate.report_markdown import header, overview_table, pooled_section, settings_table, store_section
from autotts.evaluate.summary import StoreSummary, summarise
from autotts.evaluate.sweep import (ANCHOR, SettingResult, StoreResults, is_baseline, results_from_json,
                                    results_to_json, run_sweep, setting_label)


@dataclass(frozen=True)
class ReportSettings:
    protocol: str = "reference"
    seeds: int | None = None
    subset_size: int = 64
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    bootstrap_seed: int = 0
    device: str = "cpu"
    workers: int = 1


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
            values = list(values if values is not None else BASELINES[name][2]) if name in baselines else []
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


def evaluate_store(spec: str, plan: list[tuple[str, list[float] | None]], settings: ReportSettings,
                   progress: Callable[[str, SettingResult], None] | None = None) -> StoreResults:
    """Load one store and run the plan under the protocol."""
    from autotts.evaluate.cli_eval import resolve_device
    from autotts.evaluate.runner import protocol_episodes
    from autotts.store import load_store
    device = resolve_device(settings.device)
    store = load_store(spec).to(device)
    episodes = protocol_episodes(store, settings.protocol, settings.seeds, settings.subset_size).to(device)
    report = (lambda r: progress(store.name, r)) if progress else None
    return StoreResults(store.source or store.name, store.model, store.dataset,
                        run_sweep(store, episodes, plan, report, settings.workers))


def summarise_store(results: StoreResults, settings: ReportSettings) -> StoreSummary:
    return summarise(results.results, store=results.store, model=results.model, dataset=results.dataset,
                     resamples=settings.resamples, confidence=settings.confidence, seed=settings.bootstrap_seed)


@dataclass(frozen=True)
class Pooled:
    """Paired differences of each controller on the mean over one dataset's stores."""

    dataset: str
    stores: list[str]
    paired: dict[str, list[Difference]]

    def rows(self) -> list[dict[str, Any]]:
        return [{"dataset": self.dataset, "stores": len(self.stores), "method": m, **d.row()}
                for m, diffs in self.paired.items() for d in diffs]


def pool_stores(stores: Sequence[StoreResults], settings: ReportSettings) -> list[Pooled]:
    """Per dataset with two or more stores sharing every setting: each controller against CMC and SC@64."""
    by_dataset: dict[str, list[StoreResults]] = {}
    for s in stores:
        by_dataset.setdefault(s.dataset, []).append(s)
    out = []
    for dataset, group in by_dataset.items():
        keys = [{(r.method, r.knob) for r in s.results} for s in group]
        controllers = list(dict.fromkeys(r.method for r in group[0].results if not is_baseline(r.method)))
        if len(group) < 2 or not controllers or any(k != keys[0] for k in keys):
            continue
        results = [s.results for s in group]
        paired = {m: compare(results, m, "cmc", settings.resamples, settings.confidence, settings.bootstrap_seed)
                  for m in controllers}
        out.append(Pooled(dataset, [s.store for s in group], paired))
    return out


def print_progress(store: str, r: SettingResult) -> None:
    print(f"{store}  {setting_label(r.method, r.knob):<24} {r.accuracy:6.2f}%  {r.tokens:>12,.0f} tok  "
          f"({r.wall_s:.1f} s)", file=sys.stderr, flush=True)


def save_results(path: str | Path, stores: Sequence[StoreResults], protocol: str) -> None:
    Path(path).write_text(json.dumps(results_to_json(stores, {"protocol": protocol})), encoding="utf-8")


def load_results(path: str | Path) -> tuple[list[StoreResults], str]:
    """Stores and protocol of a results.json written by an earlier report."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AutottsError(f"{path}: cannot read results ({err})") from None
    stores, meta = results_from_json(data, str(path))
    return stores, str(meta.get("protocol", "reference"))


def write_report(summaries: Sequence[StoreSummary], out: str | Path, protocol: str = "reference",
                 command: str | None = None, dpi: int = 110, pooled: Sequence[Pooled] = ()) -> Path:
    """Write plots, tables and report.md for `summaries` (and `pooled` means) into `out`; returns report.md."""
    from autotts.evaluate.plots import frontier_figure, grid_figure, save_png
    if not summaries:
        raise AutottsError("report: nothing to report (no stores)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for s, slug in zip(summaries, store_slugs(summaries)):
        folder = out / slug
        save_png(frontier_figure(s), folder / "curve.png", dpi)
        table = settings_table(s)
        (folder / "table.md").write_text(table + "\n", encoding="utf-8")
        write_csv(folder / "table.csv", s.table_rows())
        write_csv(folder / "matched.csv", s.matched_rows())
        write_csv(folder / "reach.csv", s.reach_rows())
        write_csv(folder / "paired.csv", s.paired_rows())
        sections.append(store_section(s, f"{slug}/curve.png", table))
    save_png(grid_figure(summaries), out / "grid.png", dpi)
    if pooled:
        write_csv(out / "paired_mean.csv", [row for p in pooled for row in p.rows()])
    means = [pooled_section(p.dataset, p.stores, p.paired, summaries[0].confidence) for p in pooled]
    text = "\n\n".join([header(summaries, protocol, command), overview_table(summaries), *means,
                        "![all stores](grid.png)", *sections]) + "\n"
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def store_slugs(summaries: Sequence[StoreSummary]) -> list[str]:
    """Folder names `<model>_<dataset>`, suffixed `_2`, `_3`, ... when two stores share one."""
    out: list[str] = []
    for s in summaries:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{s.model}_{s.dataset}")
        slug, n = base, 1
        while slug in out:
            n += 1
            slug = f"{base}_{n}"
        out.append(slug)
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """CSV with a header from the first row; floats to 10 significant digits, inf as 'inf'."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if not rows:
            return
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            w.writerow({k: f"{v:.10g}" if isinstance(v, float) else ("" if v is None else v) for k, v in row.items()})


__all__ = ["Pooled", "ReportSettings", "evaluate_store", "load_results", "parse_knobs", "pool_stores", "print_progress",
           "save_results", "summarise_store", "sweep_plan", "write_report"]
