"""Compare an exported controller's β-sweep with CMC and SC@64 on the same episodes, with paired statistics.

    python scripts/compare_cmc.py --controller runs/math/<time>/export [--split aime25[,aime24]]
        [--stores SPEC SPEC ...] [--seeds 100] [--resamples 1000]

Per split, every store (default: the four Qwen3 models' `<model>/<split>`; `--stores` names any others, e.g.
`shifted:Qwen3-8B`) is evaluated under the reference protocol: the controller and CMC at β = 0, 0.1, ..., 1
and SC@64, all on the same episodes. `--controller cmc` (any baseline name) compares CMC with itself: every
difference is then 0 with a zero-width interval, a check of the pairing.

Accuracy at a token level is `autotts.evaluate.frontier.accuracy_at` (linear in tokens between the two
bracketing β's, no running maximum; above ours' β=1 tokens, β=1's accuracy); differences come with a paired
bootstrap over questions
(`autotts.evaluate.paired`): per store, and for the mean over the stores, where each store's questions are
resampled independently and the curves averaged within each replicate. Acceptance (issue 11), on the mean:
  dominance: at each CMC β, ours' accuracy at CMC(β)'s tokens >= CMC(β)'s accuracy;
  margin:    at CMC(0.5)'s tokens, ours >= CMC(0.5) + 1.0 point (the paired 95% interval printed).
Exit code 1 when a check fails, 2 on bad input. A third line, for information only (not in the exit code),
reads the same differences as non-inferiority: the lower 95% bound above -M points at every CMC β
(`--noninferiority M`, default 1.0), the reading planning weighs against dominance of point estimates.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from autotts.errors import AutottsError
from autotts.evaluate.frontier import accuracy_at
from autotts.evaluate.paired import Difference, compare
from autotts.evaluate.report import ReportSettings, evaluate_store
from autotts.evaluate.sweep import ANCHOR, SettingResult

MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
GRID = [round(0.1 * i, 1) for i in range(11)]
MARGIN = 1.0
OURS = "ours"


def store_results(spec: str, controller: str, seeds: int) -> list[SettingResult]:
    """SC@64, CMC and the controller (relabelled 'ours') on one store's reference-protocol episodes."""
    plan = [(ANCHOR[0], [ANCHOR[1]]), ("cmc", GRID), (controller, GRID)]
    results = evaluate_store(spec, plan, ReportSettings(seeds=seeds)).results
    return results[:-len(GRID)] + [replace(r, method=OURS) for r in results[-len(GRID):]]


def at_tokens(curve: list[tuple[float, float, float]], budget: float) -> float:
    """Accuracy of a (β, accuracy, tokens) curve at `budget` mean tokens: `frontier.accuracy_at` (NaN below it)."""
    return float(accuracy_at(np.array([t for _, _, t in curve]), np.array([a for _, a, _ in curve]),
                             np.array([budget]))[0])


def at_cmc(b: float) -> str:
    """The paired comparison's label for ours − CMC at CMC(β)'s tokens (`autotts.evaluate.paired`)."""
    return f"at CMC β={b:g}'s tokens"


def fmt(d: Difference) -> str:
    return "  (below ours' cheapest)" if d.value != d.value else f"{d.value:+6.2f} [{d.lo:+6.2f}, {d.hi:+6.2f}]"


def curve_table(results: list[list[SettingResult]], diffs: dict[str, Difference]) -> list[str]:
    """β | ours acc, tokens | CMC acc, tokens | ours − CMC at CMC(β)'s tokens, on the mean over stores."""
    mean = lambda m, b, attr: sum(getattr(r, attr) for s in results for r in s if (r.method, r.knob) == (m, b)) / len(results)  # noqa: E731,E501
    lines = [f"  {'β':>4}  {'ours acc':>8} {'ours tok':>9}   {'CMC acc':>7} {'CMC tok':>9}   "
             "ours − CMC at CMC's tokens [95%]"]
    for b in GRID:
        lines.append(f"  {b:4.1f}  {mean(OURS, b, 'accuracy'):8.2f} {mean(OURS, b, 'tokens'):9.0f}   "
                     f"{mean('cmc', b, 'accuracy'):7.2f} {mean('cmc', b, 'tokens'):9.0f}   "
                     f"{fmt(diffs[at_cmc(b)])}")
    return lines


def check_split(name: str, specs: list[str], controller: str, seeds: int, resamples: int, ni_margin: float) -> int:
    """Print one split's tables and acceptance; returns the number of failed checks."""
    start = time.time()
    results = [store_results(spec, controller, seeds) for spec in specs]
    per_store = [{d.label: d for d in compare([r], OURS, resamples=resamples, seed=i)} for i, r in enumerate(results)]
    pooled = {d.label: d for d in compare(results, OURS, resamples=resamples)}
    print(f"\n{name}: {len(specs)} stores, reference protocol, {seeds} seeds; paired bootstrap over questions, "
          f"{resamples} resamples, 95% intervals ({time.time() - start:.0f}s)")
    at05, sc = at_cmc(0.5), "at 25% of SC@64's tokens"
    w = max(len(s) for s in specs)
    print(f"  {'store':{w}s} {'ours − CMC at CMC(0.5) tok':>26s} {'ours(1) − CMC(1)':>24s} "
          f"{'ours − SC@64 at 25% tok':>24s}")
    for spec, d in zip(specs, per_store):
        print(f"  {spec:{w}s} {fmt(d[at05]):>26s} {fmt(d['same knob (1), ' + _ratio(d)]):>24s} {fmt(d[sc]):>24s}")
    print(f"  mean over {len(specs)} stores:")
    for line in curve_table(results, pooled):
        print(line)
    b1 = pooled["same knob (1), " + _ratio(pooled)]
    print(f"  β=1 vs CMC(1.0): {fmt(b1)} points at {b1.tokens:,.0f} tokens ({_ratio(pooled)[7:]})")
    print(f"  at 25% of SC@64's tokens ({pooled[sc].tokens:,.0f}): ours {pooled[sc].ours:.2f} vs SC@64 "
          f"{pooled[sc].base:.2f}: {fmt(pooled[sc])}")
    behind = [b for b in GRID if not pooled[at_cmc(b)].value >= 0.0]
    ok_dom = not behind
    print(f"  dominance: ours >= CMC(β) at CMC(β)'s tokens for every β -> {'PASS' if ok_dom else 'FAIL'}"
          + ("" if ok_dom else f" (behind or cheaper than ours at β = {', '.join(f'{b:g}' for b in behind)})"))
    d = pooled[at05]
    ok_margin = d.value >= MARGIN
    print(f"  margin: at CMC(0.5)'s {d.tokens:,.0f} tokens ours {d.ours:.2f} vs CMC(0.5) {d.base:.2f}: "
          f"{fmt(d)} >= {MARGIN:+.1f} -> {'PASS' if ok_margin else 'FAIL'}")
    print(noninferiority(pooled, ni_margin))
    return (not ok_dom) + (not ok_margin)


def noninferiority(pooled: dict[str, Difference], margin: float) -> str:
    """The line saying whether every CMC β's lower 95% bound lies above -margin (NaN, below ours, fails)."""
    lows = {b: pooled[at_cmc(b)].lo for b in GRID}
    short = [b for b, lo in lows.items() if not lo > -margin]
    worst = min((lo for lo in lows.values() if lo == lo), default=float("nan"))
    verdict = "PASS" if not short else "FAIL (at β = " + ", ".join(f"{b:g}" for b in short) + ")"
    return (f"  non-inferiority (information, not in the exit code): lower 95% bound > {-margin:+.1f} at every CMC β, "
            f"least {worst:+.2f} -> {verdict}")


def _ratio(diffs: dict[str, Difference]) -> str:
    """The label suffix of the β=1 same-knob comparison (it carries the token ratio)."""
    return next(k for k in diffs if k.startswith("same knob (1), "))[len("same knob (1), "):]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", required=True, help="export directory (or a baseline name, e.g. cmc)")
    ap.add_argument("--split", default="aime25", help="aime24, aime25 or both comma-separated (default aime25)")
    ap.add_argument("--stores", nargs="+", metavar="SPEC", help="store specs to use instead of the four models' split")
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--noninferiority", type=float, default=1.0, metavar="M",
                    help="margin in points of the informational non-inferiority line (default 1.0)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.stores:
            groups = {"stores": args.stores}
        else:
            splits = [s.strip() for s in args.split.split(",") if s.strip()]
            bad = [s for s in splits if s not in ("aime24", "aime25")]
            if bad or not splits:
                raise AutottsError(f"--split {args.split!r}: expected aime24, aime25 or both comma-separated")
            groups = {s: [f"{m}/{s}" for m in MODELS] for s in splits}
        failures = sum(check_split(name, specs, args.controller, args.seeds, args.resamples, args.noninferiority)
                       for name, specs in groups.items())
    except AutottsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
