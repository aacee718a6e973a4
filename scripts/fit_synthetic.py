"""Print the public stores' statistics beside the synthetic generator's defaults.

The synthetic defaults (`autotts.store.synthetic.SyntheticParams`) were tuned by
hand until these columns agreed within `PUBLIC_TARGETS`' tolerances (the last
column); rerun this after changing the generator, and update `PUBLIC_TARGETS`
and the module docstring if the public figures move.

    AUTOTTS_DATA=/path/to/autotts python scripts/fit_synthetic.py [--seeds 8]

Columns: the public stores pooled by question, their per-store range, and the
synthetic default (30 questions x 128 branches) pooled over `--seeds` seeds.
"""

from __future__ import annotations

import argparse
import sys

from autotts.errors import AutottsError
from autotts.store import discover, load_store
from autotts.store.stats import store_stats
from autotts.store.synthetic import PUBLIC_TARGETS, synthetic_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default $AUTOTTS_DATA)")
    parser.add_argument("--seeds", type=int, default=8, help="synthetic stores to pool (default 8, like the 8 public)")
    args = parser.parse_args(argv)
    try:
        public = [load_store(p) for p in discover(args.root)]
    except AutottsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pooled = store_stats(public)
    each = [store_stats(s) for s in public]
    synth = store_stats([synthetic_store(seed=s) for s in range(args.seeds)])
    print(f"{len(public)} public stores vs synthetic default x {args.seeds} seeds (pooled by question)")
    print(f"{'figure':26s} {'public':>10s} {'public range':>21s} {'synthetic':>10s}  fit (tolerance)")
    for key, value in pooled.items():
        lo, hi = min(e[key] for e in each), max(e[key] for e in each)
        print(f"{key:26s} {_fmt(value):>10s} {_fmt(lo):>10s}..{_fmt(hi):<10s} {_fmt(synth[key]):>10s}  {_verdict(key, synth)}")
    return 0


def _verdict(key: str, synth: dict[str, float]) -> str:
    """'ok'/'OFF' against `PUBLIC_TARGETS` (blank for figures without a target)."""
    if key not in PUBLIC_TARGETS:
        return ""
    target, tol = PUBLIC_TARGETS[key]
    return f"{'ok' if abs(synth[key] - target) <= tol else 'OFF'} (±{_fmt(tol)})"


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3f}"


if __name__ == "__main__":
    sys.exit(main())
