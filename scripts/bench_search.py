"""ES versus the relaxed (Adam) trainer versus hybrids, at equal wall-clock budgets, judged in the hard env.

Every trainer is a real `train.py +experiment=math` run (`autotts.discovery.train.fit`: Lightning loop,
imitation warm start, validation on AIME25, export) stopped by `trainer.max_minutes`:

* es:        search=pgpe (the math preset) for the whole budget;
* relaxed:   search=relaxed for the whole budget;
* relaxed>es: search=relaxed for `--split` of the budget, then search=pgpe from its best weights (`init=`);
* es>relaxed: the reverse (ES, then Adam on the stop head from ES's best for the last `--split`).

Each run's best validated weights are then scored in the hard env (reference protocol, `--seeds`
seeds, the validation β grid) on AIME24 (the search stores) and AIME25 (the validation stores),
with the objective's fitness (`autotts.discovery.validation.Validator`); the anytime curve (best
validation score against seconds since the run began) gives the time to reach given scores.
CMC (the imitation teacher) is scored the same way for reference. Writes `results.json` and
prints the markdown tables.

    PYTHONPATH=. AUTOTTS_DATA=... python scripts/bench_search.py --minutes 20 --out runs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from autotts.controllers.baselines import make_baseline
from autotts.discovery.objective import fitness_of
from autotts.discovery.settings import settings_from
from autotts.discovery.train import fit
from autotts.discovery.validation import Validator
from autotts.env.rollout import rollout
from autotts.evaluate.metrics import figures
from autotts.evaluate.runner import protocol_episodes
from autotts.store import load_store

TRAINERS = ("es", "relaxed", "relaxed>es", "es>relaxed")
SEARCH = {"es": ["search=pgpe"], "relaxed": ["search=relaxed"]}


def overrides(kind: str, minutes: float, validate_every: dict[str, int], name: str, extra: list[str]) -> list[str]:
    return ["+experiment=math", *SEARCH[kind], f"trainer.max_minutes={minutes}", "trainer.generations=100000",
            f"trainer.validate_every={validate_every[kind]}", "trainer.reserve_minutes=0.5",
            "trainer.progress_bar=false", "logger=none",
            f"name={name}", *extra]


def compose(args: list[str]) -> dict:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    root = Path(__file__).resolve().parents[1]
    with initialize_config_dir(config_dir=str(root / "conf"), version_base="1.3"):
        return OmegaConf.to_container(hydra_compose("config", overrides=args), resolve=True)


def run_stage(kind: str, minutes: float, out: Path, name: str, validate_every: dict[str, int],
              extra: list[str]) -> tuple[dict, object]:
    cfg = compose(overrides(kind, minutes, validate_every, name, extra))
    result = fit(cfg, out / name)
    return cfg, result


def train(trainer: str, minutes: float, split: float, out: Path, validate_every: dict[str, int],
          extra: list[str]) -> dict:
    """One trainer's run(s) within `minutes`; its best weights, anytime curve and wall seconds."""
    start = time.monotonic()
    if trainer in ("es", "relaxed"):
        cfg, result = run_stage(trainer, minutes, out, trainer, validate_every, extra)
        stages = [result]
    else:
        first, second = trainer.split(">")
        share = split if first == "relaxed" else 1 - split
        cfg, one = run_stage(first, minutes * share, out, f"{first}-then", validate_every, extra)
        left = minutes - (time.monotonic() - start) / 60
        cfg, two = run_stage(second, left, out, f"then-{second}", validate_every,
                             extra + [f"init={one.checkpoint}"])
        stages = [one, two]
    curve, offset = [], 0.0
    for result in stages:
        curve += [{"seconds": offset + v["elapsed"], "score": v["score"], "generation": v["generation"]}
                  for v in result.validations]
        offset += result.seconds
    best_stage = max(stages, key=lambda r: r.best_score)
    state = torch.load(best_stage.checkpoint, weights_only=False)["autotts"]
    return {"trainer": trainer, "cfg": cfg, "weights": state["best"], "curve": curve,
            "seconds": time.monotonic() - start, "generations": [r.generations for r in stages],
            "validation_score": best_stage.best_score}


def cmc_score(stores: list, validator: Validator, seeds: int) -> tuple[float, list[dict]]:
    """CMC(β) over the validation β grid, scored with the objective's fitness (the teacher, for reference)."""
    acc, tok, rows = [], [], []
    betas = validator.cfg.betas
    for store in stores:
        episodes = protocol_episodes(store, "reference", seeds)
        a, t = [], []
        for beta in betas:
            fig = figures(rollout(store, episodes, make_baseline("cmc", beta)), episodes)
            a.append(fig.accuracy)
            t.append(fig.tokens)
            rows.append({"store": store.name, "beta": beta, "accuracy": fig.accuracy, "tokens": fig.tokens})
        acc.append(a)
        tok.append(t)
    acc_t = torch.tensor(acc, dtype=torch.float64).T[None] / 100
    rel = torch.tensor(tok, dtype=torch.float64).T[None] / validator.sc64
    score, _ = fitness_of(validator.objective, acc_t, rel, torch.tensor(betas))
    return float(score[0]), rows


def hard_scores(weights: torch.Tensor, cfg: dict, seeds: int) -> dict:
    """Fitness and β-sweep of `weights` in the hard env on the search (AIME24) and validation (AIME25) stores."""
    s = settings_from(cfg)
    out = {}
    for split, specs in (("aime24", s.search_stores), ("aime25", s.validation_stores)):
        stores = [load_store(spec) for spec in specs]
        validation = type(s.validation)(betas=s.validation.betas, seeds=seeds, protocol="reference")
        result = Validator(stores, validation, s.objective, s.shape, s.spec, s.guards)(weights)
        out[split] = {"score": result.score, "monotone_drop": result.monotone_drop, "curve": result.curve(),
                      "rows": result.rows()}
    return out


def time_to(curve: list[dict], level: float) -> float | None:
    best = -float("inf")
    for point in curve:
        best = max(best, point["score"])
        if best >= level:
            return point["seconds"]
    return None


def markdown(results: dict) -> str:
    runs, cmc = results["runs"], results["cmc"]
    lines = [f"Budget {results['minutes']:g} min per trainer (wall clock, imitation warm start included); "
             f"hard env, reference protocol, {results['seeds']} seeds, β ∈ {results['betas']}.", "",
             "| trainer | generations | fitness AIME24 (search) | fitness AIME25 (validation) |",
             "|---|---|---|---|"]
    start = runs[0]["curve"][0]["score"]
    for r in runs:
        lines.append(f"| {r['trainer']} | {'+'.join(map(str, r['generations']))} | {r['hard']['aime24']['score']:.4f} "
                     f"| {r['hard']['aime25']['score']:.4f} |")
    lines.append(f"| CMC (teacher) | - | {cmc['aime24']:.4f} | {cmc['aime25']:.4f} |")
    lines.append(f"| start (imitation) | 0 | - | {start:.4f} |")
    top = max(r["validation_score"] for r in runs)
    levels = [start + f * (top - start) for f in (0.25, 0.5, 0.75, 1.0)]
    lines += ["", "Seconds to first reach a validation score (best so far; - = never within the budget):", "",
              "| trainer | " + " | ".join(f"{lv:.4f}" for lv in levels) + " |", "|---|" + "---|" * len(levels)]
    for r in runs:
        cells = [time_to(r["curve"], lv) for lv in levels]
        lines.append(f"| {r['trainer']} | " + " | ".join("-" if c is None else f"{c:.0f}" for c in cells) + " |")
    lines += ["", "β-sweep of each trainer's best weights (mean over the 4 models: accuracy %, tokens):", "",
              "| trainer | split | " + " | ".join(f"β={b:g}" for b in results["betas"]) + " |",
              "|---|---|" + "---|" * len(results["betas"])]
    for r in runs:
        for split in ("aime24", "aime25"):
            cells = [f"{p['accuracy']:.1f}% / {p['tokens']:.0f}" for p in r["hard"][split]["curve"]]
            lines.append(f"| {r['trainer']} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget per trainer")
    parser.add_argument("--trainers", default=",".join(TRAINERS))
    parser.add_argument("--split", type=float, default=0.25, help="share of a hybrid's budget for its relaxed stage")
    parser.add_argument("--seeds", type=int, default=10, help="reference-protocol seeds of the final scoring")
    parser.add_argument("--es-validate-every", type=int, default=5)
    parser.add_argument("--relaxed-validate-every", type=int, default=20)
    parser.add_argument("--out", default="runs/bench_search")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for every run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    every = {"es": args.es_validate_every, "relaxed": args.relaxed_validate_every}
    runs = []
    for trainer in args.trainers.split(","):
        run = train(trainer, args.minutes, args.split, out, every, list(args.overrides))
        run["hard"] = hard_scores(run["weights"], run["cfg"], args.seeds)
        runs.append({k: v for k, v in run.items() if k not in ("cfg", "weights")})
        torch.save(run["weights"], out / f"{trainer.replace('>', '-then-')}.pt")
        print(f"{trainer}: validation {run['validation_score']:.4f}, hard AIME24 {run['hard']['aime24']['score']:.4f}, "
              f"AIME25 {run['hard']['aime25']['score']:.4f} ({run['seconds']:.0f} s)", flush=True)
    s = settings_from(compose(overrides("es", args.minutes, every, "cmc", list(args.overrides))))
    validation = type(s.validation)(betas=s.validation.betas, seeds=args.seeds, protocol="reference")
    cmc = {}
    for split, specs in (("aime24", s.search_stores), ("aime25", s.validation_stores)):
        stores = [load_store(spec) for spec in specs]
        cmc[split], _ = cmc_score(stores, Validator(stores, validation, s.objective, s.shape, s.spec, s.guards),
                                  args.seeds)
    results = {"minutes": args.minutes, "seeds": args.seeds, "betas": list(s.validation.betas), "runs": runs,
               "cmc": cmc, "split": args.split}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
