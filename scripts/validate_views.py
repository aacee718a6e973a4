"""An export's 11-point β-sweep on every validation view, beside CMC on the same episodes, with the knob rule.

    python scripts/validate_views.py --controller runs/math/<time>/export [--views aime25,aime24,unseen,shifted]
        [--seeds 20] [--no-cmc] [--cmc-cache cmc.json] [--reference reference_sweep.csv]

Views (README "How we choose"): each AIME split over the four models; `unseen`, the models the export
was not searched on (leave-one-model-out runs), on both splits; `shifted`, the shifted synthetic
stores (`autotts.store.synthetic.shifted_specs`, when this build has them). Each table is the mean over
the view's stores (accuracy %, tokens) at β = 0, 0.1, ..., 1 under the reference protocol; the last lines
give ours − CMC at CMC(0.5)'s tokens (our curve interpolated) and the knob rule's verdict.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch
from compare_cmc import MODELS, at_tokens

from autotts.controllers.baselines import make_baseline
from autotts.discovery.knob import knob_rule, split_of, unique_name
from autotts.discovery.validation import beta_sweep, controller_sweep
from autotts.errors import AutottsError
from autotts.evaluate.metrics import figures
from autotts.evaluate.runner import evaluate, protocol_episodes
from autotts.artifact.export import load_controller, load_jit
from autotts.store import load_store

BETAS = [round(0.1 * i, 1) for i in range(11)]
PUBLISHED_ROUNDING = 0.005   # reference_sweep.csv gives accuracy to 2 decimals: a tie can read 0.005 low


def views(manifest: dict, wanted: list[str]) -> dict[str, list[str]]:
    """View name -> store specs; `unseen` only when the export's search left a model out."""
    trained = {r["spec"].split("/")[0] for r in manifest["training_stores"] if "/" in r["spec"]}
    out: dict[str, list[str]] = {}
    for name in wanted:
        if name in ("aime24", "aime25"):
            out[name] = [f"{m}/{name}" for m in MODELS]
        elif name == "unseen":
            unseen = [m for m in MODELS if trained and m not in trained]
            if unseen:
                out["unseen"] = [f"{m}/{s}" for m in unseen for s in ("aime24", "aime25")]
        elif name == "shifted":
            try:
                from autotts.store.synthetic import shifted_specs  # type: ignore[attr-defined]
            except ImportError:
                print("(no shifted synthetic stores in this build: view `shifted` skipped)")
                continue
            out["shifted"] = list(shifted_specs())
        else:
            raise SystemExit(f"--views: unknown view {name!r} (expected aime24, aime25, unseen, shifted)")
    return out


def policy_parts(controller: str):
    """(weights, shape, spec, guards, manifest, controller) of an export: `beta_sweep` runs the weights, or with a
    β map (the teacher switch) `controller_sweep` the loaded controller; one rollout per store, all β at once."""
    from autotts.controllers.policy import PolicyShape

    ctrl = load_controller(controller)
    shape_rec = dict(ctrl.manifest["policy_shape"])
    shape_rec.pop("size", None)
    weights = load_jit(f"{controller}/controller.pt").policy.flat.detach().clone()
    return weights, PolicyShape(**shape_rec), ctrl.spec, ctrl.guards, ctrl.manifest, ctrl


def reference_cmc(path: str, spec: str) -> tuple[list[float], list[float]] | None:
    """CMC's published sweep (reference protocol, 100 seeds) of a ``model/dataset`` store, if the CSV has it."""
    if "/" not in spec:
        return None
    model, dataset = spec.split("/", 1)
    rows = {float(r["knob"]): r for r in csv.DictReader(open(path))
            if r["method"] == "CMC" and r["model"] == model and r["dataset"] == dataset}
    if not all(b in rows for b in BETAS):
        return None
    return [float(rows[b]["acc"]) for b in BETAS], [float(rows[b]["avg_tokens"]) for b in BETAS]


def cmc_sweep(store, seeds: int, cache: str | None = None) -> tuple[list[float], list[float]]:
    """CMC's (accuracy, tokens) at each β of BETAS; with `cache`, kept per store fingerprint and seeds
    (CMC is fixed)."""
    key = f"{store.fingerprint}:{seeds}"
    stored = json.loads(Path(cache).read_text()) if cache and Path(cache).is_file() else {}
    if key in stored:
        return stored[key]["accuracy"], stored[key]["tokens"]
    episodes = protocol_episodes(store, "reference", seeds)
    acc, tok = [], []
    for b in BETAS:
        fig = figures(evaluate(store, episodes, make_baseline("cmc", b))[0], episodes)
        acc.append(fig.accuracy)
        tok.append(fig.tokens)
    if cache:
        stored[key] = {"store": store.name, "accuracy": acc, "tokens": tok}
        Path(cache).write_text(json.dumps(stored))
    return acc, tok


def cmc_above(curve: list[tuple[float, float, float]], cmc_acc: list[float], cmc_tok: list[float],
              slack: float = 0.0) -> list[float]:
    """The grid β at which CMC's mean accuracy lies above ours at its tokens; ``slack`` forgives the
    rounding of published rows, so an export that *is* CMC there is not reported below it."""
    return [b for i, b in enumerate(BETAS) if at_tokens(curve, cmc_tok[i]) < cmc_acc[i] - slack]


def report_view(name: str, specs: list[str], parts, seeds: int, with_cmc: bool, trained: set[str],
                cache: str | None = None, reference: str | None = None) -> bool:
    weights, shape, spec, guards, manifest, ctrl = parts
    start = time.time()
    ours: dict = {}
    splits: dict = {}
    cmc_acc, cmc_tok = [[0.0] * len(BETAS)], [[0.0] * len(BETAS)]
    published_any = False
    for s in specs:
        store = load_store(s)
        sw = controller_sweep(ctrl, store, BETAS, seeds) if "beta_map" in manifest else \
            beta_sweep(weights, store, BETAS, seeds, shape, spec, guards, "reference")
        key = unique_name(ours, s)
        ours[key] = {"tokens": list(sw.tokens), "accuracy": list(sw.accuracy)}
        splits[key] = split_of(s)
        if with_cmc:
            published = reference_cmc(reference, s) if reference and seeds == 100 else None
            published_any = published_any or published is not None
            a, t = published or cmc_sweep(store, seeds, cache)
            cmc_acc.append(a)
            cmc_tok.append(t)
    n = len(specs)
    mean_acc = [sum(v["accuracy"][i] for v in ours.values()) / n for i in range(len(BETAS))]
    mean_tok = [sum(v["tokens"][i] for v in ours.values()) / n for i in range(len(BETAS))]
    seen = " (searched on)" if set(specs) & trained else ""
    print(f"\n{name}{seen}: mean over {n} stores, reference protocol, {seeds} seeds ({time.time() - start:.0f}s)")
    print(f"  {'β':>4}  {'ours acc':>8} {'ours tok':>9}" + (f"   {'CMC acc':>7} {'CMC tok':>9}" if with_cmc else ""))
    ca = [sum(c[i] for c in cmc_acc) / n for i in range(len(BETAS))]
    ct = [sum(c[i] for c in cmc_tok) / n for i in range(len(BETAS))]
    for i, b in enumerate(BETAS):
        line = f"  {b:4.1f}  {mean_acc[i]:8.2f} {mean_tok[i]:9.0f}"
        print(line + (f"   {ca[i]:7.2f} {ct[i]:9.0f}" if with_cmc else ""))
    if with_cmc:
        curve = list(zip(BETAS, mean_acc, mean_tok))
        mid = at_tokens(curve, ct[5])
        dominated = cmc_above(curve, ca, ct, PUBLISHED_ROUNDING if published_any else 0.0)
        print(f"  at CMC(0.5)'s {ct[5]:,.0f} tokens: ours {mid:.2f} vs CMC {ca[5]:.2f} ({mid - ca[5]:+.2f} points); "
              f"CMC above our frontier at β = {', '.join(f'{b:g}' for b in dominated) or 'none'}")
    rule = knob_rule(BETAS, ours, splits)
    for store_name, r in rule["stores"].items():
        print(f"  {store_name}: β=1 {r['top_gap']:.2f} points below its best (β={r['best_beta']:g}); "
              f"tokens rise: {r['tokens_rise']}")
    print(f"  knob rule: {'holds' if rule['holds'] else 'BROKEN: ' + '; '.join(rule['failures'])}")
    return rule["holds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", required=True)
    ap.add_argument("--views", default="aime25,aime24,unseen,shifted")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--no-cmc", action="store_true", help="skip CMC's sweep (faster)")
    ap.add_argument("--cmc-cache", help="JSON file that keeps CMC's sweeps between calls (CMC does not change)")
    ap.add_argument("--reference", help="reference_sweep.csv: at --seeds 100, CMC's published rows (no rollout)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        parts = policy_parts(args.controller)
        trained = {r["spec"] for r in parts[4]["training_stores"]}
        ok = True
        for name, specs in views(parts[4], args.views.split(",")).items():
            ok &= report_view(name, specs, parts, args.seeds, not args.no_cmc, trained, args.cmc_cache,
                              args.reference)
    except AutottsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
