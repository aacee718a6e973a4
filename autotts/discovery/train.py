"""`python train.py`: search a β-conditioned controller with ES on replay stores, validate, check, export.

`run(cfg)` is the Hydra entry (one-line errors, exit code 2; the export
directory is the last line printed); `fit(cfg, run_dir)` does the work and is
what tests call. Search stores drive the ES; validation stores only pick the
best validated weights and draw the curves -- nothing is tuned on them.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from autotts.errors import AutottsError


@dataclass(frozen=True)
class TrainResult:
    export_dir: Path
    checkpoint: Path
    generations: int
    best_generation: int
    best_score: float
    monotone: dict
    validations: list[dict]
    history: list[dict]
    seconds: float
    rank: int = 0               # DDP rank of this process; only rank 0 checks, exports and prints


def run(cfg: Any) -> None:
    """Hydra entry point of ``train.py``."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    code = run_config(OmegaConf.to_container(cfg, resolve=True), Path(HydraConfig.get().runtime.output_dir))
    if code:
        sys.exit(code)


def run_config(cfg: Mapping[str, Any], run_dir: str | Path) -> int:
    """`run` on a resolved config: prints the summary and export directory, or one error line; the exit code."""
    try:
        result = fit(cfg, run_dir)
    except AutottsError as err:
        print(f"train.py: error: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    if not result.rank:
        print(summary(result), flush=True)
        print(result.export_dir, flush=True)
    return 0


def summary(result: TrainResult) -> str:
    """What the run found, in a few lines: best validation, β monotonicity and the knob rule per store, time."""
    lines = [f"{result.generations} generations in {result.seconds:.0f} s; best validated weights: generation "
             f"{result.best_generation} (score {result.best_score:.4f})"]
    knob = result.monotone.get("knob") or {"stores": {}, "splits": {}, "failures": [], "holds": True}
    for name, sweep in result.monotone["stores"].items():
        verdict = "monotone" if sweep["monotone"] else f"NOT monotone (worst drop {sweep['worst_drop']:.0f} tokens)"
        rule = knob["stores"].get(name)
        if rule is not None:
            verdict += f"; β=1 {rule['top_gap']:.1f} points below its best (β={rule['best_beta']:g})"
        lines.append(f"  {name}: tokens {sweep['tokens'][0]:.0f} at β=0 .. {sweep['tokens'][-1]:.0f} at β=1, "
                     f"accuracy {sweep['accuracy'][0]:.1f}% .. {sweep['accuracy'][-1]:.1f}%: {verdict}")
    for split, rule in knob["splits"].items():
        lines.append(f"  {split} mean: worst β step {-rule['worst_step']:+.2f} points (at β={rule['worst_step_at']:g})")
    verdict = "holds" if knob["holds"] else "BROKEN: " + "; ".join(knob["failures"])
    seeds = result.monotone.get("seeds")
    lines.append(f"  knob rule (tokens rise, no β step or β=1 loses > {knob.get('tolerance', 0.5):g} points"
                 f"{f'; {seeds} seeds' if seeds else ''}): {verdict}")
    finalists = result.monotone.get("finalists") or []
    if len(finalists) > 1:
        lines.append("  finalists re-checked (generation: knob rule): " +
                     ", ".join(f"{f['generation']}: {'holds' if f['knob'] else 'broken'}" for f in finalists))
    tops = result.monotone.get("tops") or []
    if tops:
        lines.append("  β range cut (monotone.tops: knob rule): " +
                     ", ".join(f"[0, {t['top']:g}]: {'holds' if t['knob'] else 'broken'}" for t in tops) +
                     (f"; exported: β=1 acts as the searched β={result.monotone['beta_top']:g}"
                      if result.monotone.get("beta_top", 1.0) < 1.0 else "; exported uncut"))
    switch = result.monotone.get("switch")
    if switch:
        lines.append("  " + switch_line(switch))
    return "\n".join(lines)


def switch_line(switch: dict) -> str:
    """One line on `monotone.teacher_switch`: where CMC runs, where the policy does, and whether it was kept."""
    rows = switch["rows"]
    spans = ", ".join(f"{r['beta']:g}" + (f"->{r['inner']:g}" if r["program"] == "policy" else "") for r in rows
                      if r["program"] == "policy") or "none"
    head = f"teacher switch (monotone.teacher_switch): policy at β {spans} (->: its own β), CMC elsewhere"
    return head + ("; exported (the curve above is the switched one)" if switch["used"]
                   else f"; not used: {switch['why']}")


def fit(cfg: Mapping[str, Any], run_dir: str | Path) -> TrainResult:
    """Train, validate, check β monotonicity and export into ``run_dir/export``."""
    from autotts.discovery.settings import settings_from
    from autotts.discovery.scale_out import check_scale
    from autotts.scale.ranks import leave_process_group

    start = time.monotonic()
    settings = settings_from(cfg)
    check_scale(settings)
    torch.set_num_threads(settings.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))  # else Lightning's DDP launcher sets its own
    run_dir = Path(run_dir)
    search, validation = _load_stores(settings)
    _check_checkpoint(settings.ckpt_path)
    _quiet_libraries()
    from autotts.discovery.module import DiscoveryModule
    from autotts.discovery.search import restart_seed

    module = DiscoveryModule(settings, search, validation, _start_weights(settings, search),
                             start_of=lambda k: _start_weights(settings, search, restart_seed(settings.seed, k)))
    module.started = start  # validation entries' "elapsed": seconds since the run began
    if settings.trainer.max_minutes > 0:
        module.deadline = start + 60.0 * settings.trainer.max_minutes
    logger = _make_logger(settings, run_dir)
    trainer = _make_trainer(settings, run_dir, logger)
    trainer.fit(module, ckpt_path=settings.ckpt_path)
    module.validate()  # the generations since the last validation, if any
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(checkpoint)
    leave_process_group()  # the last collective (DDP) is behind us
    if trainer.global_rank:  # DDP: the other ranks hold the same state; rank 0 checks and exports
        return TrainResult(run_dir / "export", checkpoint, module.generation, module.best_generation,
                           module.best_score, {}, module.validations, module.history, time.monotonic() - module.started,
                           trainer.global_rank)
    monotone = _monotone(module)
    if settings.monotone.teacher_switch:
        monotone = _switch(module, monotone)
    export_dir = _export(module, search, validation, monotone, run_dir / "export")
    _log_final(logger, module, monotone, run_dir)
    return TrainResult(export_dir, checkpoint, module.generation, module.best_generation, module.best_score,
                       monotone, module.validations, module.history, time.monotonic() - module.started)


def _load_stores(settings: Any) -> tuple[list, list]:
    """Search and validation stores (CPU); they must not overlap and must share one Δ."""
    from autotts.store import load_store

    search = [load_store(spec) for spec in settings.search_stores]
    validation = [load_store(spec) for spec in settings.validation_stores]
    for spec, store in zip(settings.validation_stores, validation):
        for other_spec, other in zip(settings.search_stores, search):
            if store.fingerprint == other.fingerprint:
                raise AutottsError(f"store.validation {spec!r} holds the same data as store.search {other_spec!r} "
                                   "(validation must be held out)")
    deltas = {int(d) for s in search + validation for d in s.delta.unique().tolist()}
    if len(deltas) != 1:
        raise AutottsError(f"stores: search and validation stores mix probe intervals delta={sorted(deltas)} "
                           "(a controller is trained for one delta)")
    return search, validation


def _check_checkpoint(path: str | None, key: str = "ckpt_path") -> dict | None:
    """A discovery checkpoint's state, or a one-line error naming `key` (Lightning would fail with a traceback)."""
    from autotts.discovery.checkpoints import read_checkpoint

    return None if path is None else read_checkpoint(path, key, resume=key == "ckpt_path")


def _start_weights(settings: Any, search: list, seed: int | None = None) -> torch.Tensor:
    """Initial ES centre: another run's best weights (`init`), or neutral weights warm-started by imitating the
    teachers if configured (neither matters on resume). `seed` (default: the run's) draws both; a restart
    (search.restarts) passes its own, and on resume it is made afresh, so it must not depend on `ckpt_path`."""
    from autotts.controllers.policy import initial_weights

    first = seed is None
    seed = settings.seed if seed is None else seed
    if settings.init is not None and (settings.ckpt_path is None or not first):
        return _init_weights(settings)
    init = initial_weights(settings.shape, seed)
    if not settings.use_imitation or (settings.ckpt_path is not None and first):
        return init
    from autotts.discovery.imitation import imitate
    weights, _ = imitate(search, settings.shape, settings.spec, init, settings.imitation, seed, settings.guards)
    return weights


def _init_weights(settings: Any) -> torch.Tensor:
    """The best validated weights of the checkpoint `init` (e.g. a relaxed run refined by ES: a hybrid)."""
    state = _check_checkpoint(settings.init, "init")
    assert state is not None
    best = state["best"]
    if best is None or best.shape != (settings.shape.size,):
        raise AutottsError(f"init={settings.init}: holds no best weights for this policy shape "
                           f"({settings.shape.size} weights)")
    return best.detach().float().clone()


def _quiet_libraries() -> None:
    """Keep the console to the progress bar and our lines (Lightning tips, EvoTorch and W&B notes go)."""
    import logging

    logging.getLogger("evotorch").setLevel(logging.ERROR)  # its "logger already configured" note under Hydra
    with warnings.catch_warnings():
        # EvoTorch 0.6 decorates helpers of evotorch.tools.misc with @torch.jit.script at import, which torch 2.13
        # deprecates; that is EvoTorch's code, not ours (autotts never scripts: see autotts.artifact.export)
        warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", DeprecationWarning)
        import evotorch  # noqa: F401 -- both set their loggers' levels on import; ours come after
    import lightning.pytorch  # noqa: F401

    os.environ.setdefault("WANDB_SILENT", "true")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
                 "lightning.fabric.utilities.rank_zero", "lightning.pytorch.trainer.connectors.checkpoint_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("evotorch").setLevel(logging.ERROR)
    for message in (".*does not have many workers.*", ".*configure_optimizers.*", ".*returned None.*",
                    ".*LeafSpec.*", ".*Checkpoint directory.*exists and is not empty.*",
                    ".*GPU available but not used.*",
                    ".*dirpath has changed.*", ".*To copy construct from a tensor.*",
                    ".*sync_dist=True.*"):  # DDP: every rank validates the same weights to the same score
        warnings.filterwarnings("ignore", message=message)


def _make_logger(settings: Any, run_dir: Path) -> Any:
    """Lightning's W&B logger around a run we start ourselves (offline unless logger.wandb.offline=false)."""
    from lightning.pytorch.utilities import rank_zero_only

    if settings.logger.kind != "wandb" or rank_zero_only.rank:  # DDP: one W&B run, from rank 0
        return None
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    run = wandb.init(project=settings.logger.project, name=settings.name, dir=str(run_dir),
                     mode="offline" if settings.logger.offline else "online", config=settings.raw,
                     tags=list(settings.logger.tags), settings=wandb.Settings(silent=True, console="off"))
    return WandbLogger(experiment=run, log_model=False)


def _make_trainer(settings: Any, run_dir: Path, logger: Any) -> Any:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar

    from autotts.scale.ranks import strategy_for

    callbacks: list = [ModelCheckpoint(dirpath=run_dir / "checkpoints", save_top_k=0, save_last=True)]
    if settings.trainer.progress_bar:
        callbacks.append(RichProgressBar())
    t = settings.trainer
    cycles = -(-t.generations // t.validate_every) + (settings.ckpt_path is not None)  # an epoch = k generations
    return pl.Trainer(accelerator=t.accelerator, devices=t.devices, max_epochs=cycles,
                      strategy=strategy_for(t.strategy, t.accelerator, t.devices), use_distributed_sampler=False,
                      logger=logger if logger is not None else False, callbacks=callbacks,
                      default_root_dir=str(run_dir), num_sanity_val_steps=0, reload_dataloaders_every_n_epochs=1,
                      enable_model_summary=False, enable_progress_bar=settings.trainer.progress_bar,
                      log_every_n_steps=1)


def _monotone(module: Any) -> dict:
    """The knob check of the exported weights, which it also chooses (README "How we choose").

    The validation sweep is few seeds, so it ranks well but misjudges the knob rule (one question in
    one shuffle moves a store by 0.33 points at 10 seeds). The finalists -- the best by the validation
    rule plus the `monotone.finalists` highest scores -- are re-checked at `monotone.seeds` in order
    of score; the first that keeps the rule is exported. If none does, the best by the validation rule
    is re-checked with β's range cut to [0, top] for each of `monotone.tops` (`scale_beta`; the top
    of the curve is where the rule breaks), and the first that keeps it is exported, else that best.
    """
    from autotts.controllers.policy import scale_beta
    from autotts.discovery.monotone import monotone_check

    s = module.settings
    best = {"generation": module.best_generation, "score": module.best_score, "knob": module.best_knob,
            "weights": module.best}
    others = [f for f in module.finalists if f["generation"] != best["generation"]]
    candidates = sorted([best] + others[:max(0, s.monotone.finalists - 1)], key=lambda f: -f["score"])

    def check(weights: Any) -> dict:
        return monotone_check(weights, module.validator.stores, s.shape, s.spec, s.guards, s.monotone.betas,
                              s.monotone.seeds, s.validation.protocol, module.validator.splits, s.step_mode,
                              s.monotone.tolerance)

    checks: dict[int, dict] = {}
    for f in candidates:
        checks[f["generation"]] = check(f["weights"])
        if checks[f["generation"]]["knob"]["holds"]:
            break
    else:  # none keeps the rule at these seeds: the validation rule's best
        f = best
    finalists = [{"generation": c["generation"], "score": c["score"], "knob": checks[c["generation"]]["knob"]["holds"]}
                 for c in candidates if c["generation"] in checks]
    verdict, top, tops = checks[f["generation"]], 1.0, []
    for cut in s.monotone.tops if not verdict["knob"]["holds"] else ():  # cut the top of β's range
        weights = scale_beta(best["weights"], s.shape, cut)
        result = check(weights)
        tops.append({"top": cut, "knob": result["knob"]["holds"]})
        if result["knob"]["holds"]:
            f, verdict, top = dict(best, weights=weights), result, cut
            break
    module.best, module.best_score, module.best_generation = f["weights"], f["score"], f["generation"]
    module.best_knob = bool(f.get("knob", False))  # the exported generation's verdict at validation (10 seeds)
    verdict["finalists"], verdict["beta_top"], verdict["tops"] = finalists, top, tops  # beta_top 1: as searched
    return verdict


def _switch(module: Any, verdict: dict) -> dict:
    """`monotone.teacher_switch`: CMC wherever the exported weights did not beat it
    (`autotts.discovery.teacher_map`)."""
    from autotts.discovery.teacher_map import switch_check

    s = module.settings
    return switch_check(verdict, module.best, module.validator.stores, module.validator.splits, s.shape, s.spec,
                        s.guards, s.monotone.seeds, s.validation.protocol, s.step_mode, s.monotone.tolerance)


def _export(module: Any, search: list, validation: list, monotone: dict, directory: Path) -> Path:
    from autotts.controllers.policy import BRANCH_HEADS, EPISODE_HEADS
    from autotts.artifact.export import export_controller, guard_records
    from autotts.artifact.manifest import build_manifest

    s = module.settings
    manifest = build_manifest(
        delta=int(search[0].delta[0]), actions={**asdict(s.spec), "decision": "mean"},
        policy_shape={**asdict(s.shape), "size": s.shape.size},
        heads={"episode": list(EPISODE_HEADS), "branch": list(BRANCH_HEADS)}, guards=guard_records(s.guards),
        default_betas=list(s.validation.betas),
        training_stores=[_store_record(spec, st) for spec, st in zip(s.search_stores, search)],
        validation_stores=[_store_record(spec, st) for spec, st in zip(s.validation_stores, validation)],
        validation_curve=[{k: v for k, v in entry.items() if k != "rows"} for entry in module.validations],
        monotone=monotone, validation_protocol={"protocol": s.validation.protocol, "seeds": s.validation.seeds},
        objective=asdict(s.objective),
        search={"algorithm": s.search.algorithm, "popsize": s.search.popsize, "generations": module.generation,
                "seed": s.seed, "imitation_warm_start": s.use_imitation and s.init is None, "init": s.init},
        best={"generation": module.best_generation, "validation_score": module.best_score,
              "validation_knob": module.best_knob},
        **({"beta_map": monotone["switch"]["beta_map"]} if monotone.get("switch", {}).get("used") else {}))
    return export_controller(module.best, s.shape, directory, manifest)


def _store_record(spec: str, store: Any) -> dict:
    return {"spec": spec, "name": store.name, "fingerprint": store.fingerprint, "questions": store.num_questions,
            "delta": int(store.delta[0])}


def _log_final(logger: Any, module: Any, monotone: dict, run_dir: Path) -> None:
    """Monotone check, best score and the accuracy-token curve image; closes the W&B run."""
    from autotts.discovery.plots import curve_png

    image = curve_png(monotone["stores"], monotone["betas"], run_dir / "plots" / "curve.png")
    if logger is None:
        return
    step = module.generation
    logger.log_metrics({"final/monotone": float(monotone["monotone"]), "final/best_score": module.best_score,
                        "final/best_generation": module.best_generation}, step=step)
    rows = [[name, b, a, t] for name, sw in monotone["stores"].items()
            for b, a, t in zip(monotone["betas"], sw["accuracy"], sw["tokens"])]
    logger.log_table(key="final/monotone_sweep", columns=["store", "beta", "accuracy", "tokens"], data=rows, step=step)
    logger.log_image(key="final/curve", images=[str(image)], step=step)
    logger.experiment.finish()
