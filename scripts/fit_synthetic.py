"""Fit the synthetic generator: to the public stores' statistics, or (``--target hmmt25``) to a harder benchmark.

Default mode prints the public stores' statistics beside the synthetic defaults
(`autotts.store.synthetic.SyntheticParams`), which were tuned by hand until these
columns agreed within `PUBLIC_TARGETS`' tolerances (the last column); rerun it
after changing the generator, and update `PUBLIC_TARGETS` and the module
docstring if the public figures move.

    AUTOTTS_DATA=/path/to/autotts python scripts/fit_synthetic.py [--seeds 8]

Columns: the public stores pooled by question, their per-store range, and the
synthetic default (30 questions x 128 branches) pooled over `--seeds` seeds.

``--target hmmt25 --table paper_table1.csv`` fits the shifted stores
(`autotts.store.shifted`): per Qwen3 model, the generator parameters `FIT_PARAMS`
such that SC@64 / ASC / ESC (reference protocol) match the paper's HMMT25 accuracy
and tokens. Stage 1: Nelder-Mead on a large pooled store (so that one question's
draw barely moves the figures); stage 2: the parameters rounded to 3 significant
digits, the 30-question store seed (of `--store-seeds`) whose figures come closest. The loss adds, per
method, squared accuracy misses in points and squared log-token misses in units of 3%.
It prints the achieved-vs-target table and the `SHIFTED` literal to commit.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time

import numpy as np

from autotts.errors import AutottsError
from autotts.store import discover, load_store
from autotts.store.stats import store_stats
from autotts.store.synthetic import PUBLIC_TARGETS, SyntheticParams, synthetic_store

MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
TABLE_METHODS = {"sc": "SC@64", "asc": "ASC", "esc": "ESC"}
ACC_SCALE, TOKEN_SCALE = 1.0, 0.03  # loss units: 1 accuracy point ~ 3% of tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default $AUTOTTS_DATA)")
    parser.add_argument("--seeds", type=int, default=8, help="synthetic stores to pool (default 8, like the 8 public)")
    parser.add_argument("--target", choices=["public", "hmmt25"], default="public")
    parser.add_argument("--table", help="the paper's Table 1 CSV (paper_table1.csv), for --target hmmt25")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--evals", type=int, default=150, help="stage-1 evaluations per Nelder-Mead run")
    parser.add_argument("--restarts", type=int, default=1, help="stage-1 restarts from the best point (default 1)")
    parser.add_argument("--store-seeds", type=int, default=64, help="stage-2 store seeds tried per model")
    args = parser.parse_args(argv)
    try:
        if args.target == "hmmt25":
            return fit_shifted(args)
        return compare_public(args)
    except AutottsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def compare_public(args: argparse.Namespace) -> int:
    public = [load_store(p) for p in discover(args.root)]
    pooled = store_stats(public)
    each = [store_stats(s) for s in public]
    synth = store_stats([synthetic_store(seed=s) for s in range(args.seeds)])
    print(f"{len(public)} public stores vs synthetic default x {args.seeds} seeds (pooled by question)")
    print(f"{'figure':26s} {'public':>10s} {'public range':>21s} {'synthetic':>10s}  fit (tolerance)")
    for key, value in pooled.items():
        lo, hi = min(e[key] for e in each), max(e[key] for e in each)
        print(f"{key:26s} {_fmt(value):>10s} {_fmt(lo):>10s}..{_fmt(hi):<10s} {_fmt(synth[key]):>10s}  "
              f"{_verdict(key, synth)}")
    return 0


# --- --target hmmt25 ------------------------------------------------------------------------------------------


def read_targets(path: str | None, models: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """model -> method -> (HMMT25 accuracy %, tokens per question) from the paper's Table 1."""
    if not path:
        raise AutottsError("--target hmmt25 needs --table PATH (the paper's Table 1, paper_table1.csv)")
    try:
        rows = list(csv.DictReader(open(path, encoding="utf-8")))
    except OSError as err:
        raise AutottsError(f"--table {path}: cannot read ({err.strerror or err})") from None
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for model in models:
        for method, name in TABLE_METHODS.items():
            row = next((r for r in rows if r.get("model") == model and r.get("method") == name), None)
            if row is None or not row.get("hmmt25_acc"):
                raise AutottsError(f"--table {path}: no hmmt25 row for model {model}, method {name}")
            out.setdefault(model, {})[method] = (float(row["hmmt25_acc"]), 1000.0 * float(row["hmmt25_tokens_k"]))
    return out


def method_figures(store, seeds: int) -> dict[str, tuple[float, float]]:
    """SC@64 / ASC / ESC (64 samples) on `store`, reference protocol: method -> (accuracy %, tokens)."""
    from autotts.controllers.baselines import make_baseline
    from autotts.evaluate.metrics import figures
    from autotts.evaluate.runner import evaluate, protocol_episodes
    episodes = protocol_episodes(store, "reference", seeds)
    out = {}
    for method in TABLE_METHODS:
        fig = figures(evaluate(store, episodes, make_baseline(method, 64))[0], episodes)
        out[method] = (fig.accuracy, fig.tokens)
    return out


def fit_loss(got: dict[str, tuple[float, float]], target: dict[str, tuple[float, float]]) -> float:
    return sum(((got[m][0] - target[m][0]) / ACC_SCALE) ** 2 + (math.log(got[m][1] / target[m][1]) / TOKEN_SCALE) ** 2
               for m in target)


def _logistic(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def to_params(x: np.ndarray) -> dict[str, float]:
    """Unconstrained vector -> `FIT_PARAMS` values (shares through a logistic, positives through exp).

    `solved` is a share of the questions that are not unsolved, so unsolved + solved never exceeds 1.
    """
    unsolved = _logistic(x[0])
    return {"unsolved": unsolved, "solved": (1.0 - unsolved) * _logistic(x[1]), "difficulty_a": math.exp(x[2]),
            "length_easy": float(np.clip(x[3], 7.0, 10.0)), "tail_a": math.exp(x[4]),
            "attractor_concentration": math.exp(x[5])}


def start_vector(target_sc_accuracy: float) -> np.ndarray:
    """A first guess: more unsolvable questions for a lower SC@64 accuracy, the rest at the defaults."""
    d = SyntheticParams()
    unsolved = min(0.85, max(0.05, d.unsolved + (62.0 - target_sc_accuracy) / 100.0))
    return np.array([_logit(unsolved), _logit(d.solved / (1.0 - unsolved)), math.log(d.difficulty_a), d.length_easy,
                     math.log(d.tail_a), math.log(d.attractor_concentration)])


def round_params(params: dict[str, float]) -> dict[str, float]:
    return {k: float(f"{v:.3g}") for k, v in params.items()}


def fit_model(model: str, target: dict[str, tuple[float, float]], evals: int, store_seeds: int,
              index: int, restarts: int = 1) -> tuple[int, dict[str, float], dict[str, tuple[float, float]], float]:
    """(store seed, parameters, achieved figures at 100 seeds, loss) of one model's shifted store."""
    from scipy.optimize import minimize

    from autotts.store.shifted import BRANCHES, QUESTIONS

    def pooled_loss(x: np.ndarray) -> float:
        store = synthetic_store(questions=8 * QUESTIONS, branches=BRANCHES, seed=1000 + index, **to_params(x))
        return fit_loss(method_figures(store, 10), target)

    x, steps, res = start_vector(target["sc"][0]), np.diag([0.6, 0.8, 0.4, 0.15, 0.6, 0.8]), None
    for _ in range(1 + restarts):  # restarting from the best point with a smaller simplex escapes noisy stalls
        r = minimize(pooled_loss, x, method="Nelder-Mead",
                     options={"maxfev": evals, "initial_simplex": np.vstack([x, x + steps]), "xatol": 1e-3,
                              "fatol": 1e-2})
        if res is None or r.fun < res.fun:
            res = r
        x, steps = res.x, steps / 2
    params = round_params(to_params(res.x))
    best = None
    for seed in range(store_seeds):
        got = method_figures(synthetic_store(questions=QUESTIONS, branches=BRANCHES, seed=seed, **params), 100)
        loss = fit_loss(got, target)
        if best is None or loss < best[3]:
            best = (seed, params, got, loss)
    print(f"  {model}: stage 1 loss {res.fun:.2f} ({1 + restarts} Nelder-Mead runs); stage 2 seed {best[0]} "
          f"loss {best[3]:.2f}", file=sys.stderr, flush=True)
    return best


def fit_shifted(args: argparse.Namespace) -> int:
    import torch
    torch.set_num_threads(1)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    targets = read_targets(args.table, models)
    start = time.time()
    fits = {m: fit_model(m, targets[m], args.evals, args.store_seeds, i, args.restarts) for i, m in enumerate(models)}
    print(f"shifted stores fitted to hmmt25 ({time.time() - start:.0f}s; reference protocol, 100 seeds)")
    print(f"{'model':12s} {'method':6s} {'target acc':>10s} {'achieved':>9s} {'target tok':>11s} {'achieved':>10s}")
    for m, (seed, params, got, loss) in fits.items():
        for method in TABLE_METHODS:
            ta, tt = targets[m][method]
            print(f"{m:12s} {TABLE_METHODS[method]:6s} {ta:10.1f} {got[method][0]:9.1f} {tt:11,.0f} "
                  f"{got[method][1]:10,.0f}")
    print("\nSHIFTED: dict[str, ShiftedPreset] = {")
    for m, (seed, params, got, loss) in fits.items():
        fmt = lambda d: "{" + ", ".join(f'"{k}": ({v[0]:.2f}, {v[1]:.1f})' for k, v in d.items()) + "}"  # noqa: E731
        print(f'    "{m}": ShiftedPreset(\n        seed={seed}, params={params},\n'
              f'        target={fmt(targets[m])},\n        achieved={fmt(got)}),')
    print("}")
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
