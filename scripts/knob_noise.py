"""How noisy the knob rule's top gap is: per shuffle, β = 1's accuracy minus a lower β's, on each store.

    python scripts/knob_noise.py --controller runs/math/<time>/export --stores Qwen3-4B/aime24 shifted:Qwen3-4B
        [--betas 0.8,0.9] [--seeds 100] [--check-seeds 30]

The knob rule allows β = 1 to sit 0.5 points below a store's best β. Both the export's check (30 seeds)
and the judge's (100) estimate that gap from shuffles of the same questions. This prints, per store and
lower β, the share of episodes whose outcome differs between the two βs, the gap over the first
`--check-seeds` shuffles and over all `--seeds`, and the standard error of each (the spread of the
per-shuffle gap over the square root of the shuffle count). `--controller` is an export directory or a
baseline name (cmc). Exit code 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from autotts.errors import AutottsError


def controllers(name: str, betas: list[float]) -> dict[float, Any]:
    """β -> controller: the export in directory `name` (loaded once), or the baseline `name` at knob β."""
    from autotts.evaluate.cli_eval import controller_settings
    return {knob if beta is None else beta: ctrl for ctrl, knob, beta in controller_settings(name, None, betas)}


def gaps(at: dict[float, Any], spec: str, lows: list[float], seeds: int, check: int) -> list[str]:
    from autotts.env.episodes import reference_episodes
    from autotts.env.rollout import rollout
    from autotts.store.io import load_store
    store = load_store(spec)
    episodes = reference_episodes(store, seeds=seeds)
    correct = {b: rollout(store, episodes, at[b]).correct.double().view(seeds, -1) for b in lows + [1.0]}
    lines = []
    for lo in lows:
        diff = correct[1.0] - correct[lo]                                  # [seeds, questions]
        per_shuffle = diff.mean(1) * 100                                   # points
        spread = float(per_shuffle.std()) if seeds > 1 else 0.0
        lines.append(f"{spec}  β=1 − β={lo:g}: {float((diff != 0).double().mean()):5.1%} of episodes differ; gap "
                     f"{float(per_shuffle[:check].mean()):+.2f} ± {spread / check ** 0.5:.2f} ({check} seeds), "
                     f"{float(per_shuffle.mean()):+.2f} ± {spread / seeds ** 0.5:.2f} ({seeds} seeds) points")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", required=True, help="export directory, or a baseline name (cmc)")
    ap.add_argument("--stores", nargs="+", required=True, metavar="SPEC")
    ap.add_argument("--betas", default="0.8,0.9", help="lower βs to compare β = 1 with (comma-separated)")
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--check-seeds", type=int, default=30)
    args = ap.parse_args(argv)
    try:
        try:
            lows = [float(b) for b in args.betas.split(",")]
        except ValueError:
            raise AutottsError(f"--betas {args.betas!r}: expected comma-separated numbers in [0, 1)") from None
        if not lows or not all(0 <= b < 1 for b in lows):
            raise AutottsError(f"--betas {args.betas!r}: expected comma-separated numbers in [0, 1)")
        if not 1 <= args.check_seeds <= args.seeds:
            raise AutottsError(f"--check-seeds {args.check_seeds}: expected 1 .. --seeds ({args.seeds})")
        at = controllers(args.controller, lows + [1.0])
        for spec in args.stores:
            print("\n".join(gaps(at, spec, lows, args.seeds, args.check_seeds)), flush=True)
    except AutottsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
