"""What `autotts eval` does, kept apart from argument parsing so tests and reports can call it."""

from __future__ import annotations

import argparse
from typing import Any, Iterator

import torch

from autotts.controllers.baselines import BASELINES, make_baseline
from autotts.errors import AutottsError
from autotts.evaluate.runner import EvalRow, eval_row, evaluate, protocol_episodes
from autotts.evaluate.trace import TraceRecorder, traced_first
from autotts.store import load_store


def parse_floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise AutottsError(f"{flag} {text!r}: expected comma-separated numbers") from None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AutottsError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def setting_values(name: str, knobs: list[float] | None, betas: list[float] | None
                   ) -> tuple[list[float], bool, Any]:
    """(values to evaluate, whether they are β values, the loaded controller of an export dir or None)."""
    if name == "cmc":
        return list(betas if betas is not None else (knobs or BASELINES["cmc"][2])), True, None
    if name in BASELINES:
        return list(knobs if knobs is not None else BASELINES[name][2]), False, None
    from autotts.artifact.export import load_controller  # a trained, exported controller
    ctrl = load_controller(name)
    values = list(betas if betas is not None else ctrl.default_betas)
    for b in values:
        ctrl.with_beta(b)  # checks the range
    return values, True, ctrl


def controller_settings(name: str, knobs: list[float] | None, betas: list[float] | None
                        ) -> Iterator[tuple[object, float | None, float | None]]:
    """(controller, knob, beta) for every setting to evaluate, one controller each (traced runs)."""
    values, is_beta, loaded = setting_values(name, knobs, betas)
    for v in values:
        ctrl = loaded.with_beta(v) if loaded is not None else make_baseline(name, v)
        yield ctrl, None if is_beta else v, v if is_beta else None


def run_eval(args: argparse.Namespace) -> list[EvalRow]:
    knobs, betas = parse_floats(args.knob, "--knob"), parse_floats(args.beta, "--beta")
    device = resolve_device(args.device)
    names = [n.strip() for spec in args.controller for n in spec.split(",") if n.strip()]
    rows: list[EvalRow] = []
    for spec in args.store:
        store = load_store(spec).to(device)
        episodes = protocol_episodes(store, args.protocol, args.seeds, args.subset_size).to(device)
        for name in names:
            rows += _traced(args, store, episodes, name, knobs, betas) if args.trace else [
                eval_row(store, episodes, name, result, wall, None if is_beta else v, v if is_beta else None)
                for v, result, wall, is_beta in _swept(store, episodes, name, knobs, betas,
                                                       getattr(args, "fold", None))]
    return rows


def _swept(store, episodes, name: str, knobs, betas, fold: int | None) -> Iterator[tuple]:
    """(value, rollout, wall, is β) per setting, several settings folded into one rollout."""
    from autotts.evaluate.folded import sweep_rollouts
    values, is_beta, loaded = setting_values(name, knobs, betas)
    for v, result, wall in sweep_rollouts(store, episodes, name, values, loaded, fold):
        yield v, result, wall, is_beta


def _traced(args: argparse.Namespace, store, episodes, name: str, knobs, betas) -> list[EvalRow]:
    """One rollout per setting, each with a trace recorder."""
    rows = []
    for ctrl, knob, beta in controller_settings(name, knobs, betas):
        recorder = TraceRecorder(store, episodes, traced_first(episodes, args.trace_episodes))
        result, wall = evaluate(store, episodes, ctrl, recorder=recorder)
        _append_trace(args.trace, recorder, name, knob if beta is None else beta)
        rows.append(eval_row(store, episodes, name, result, wall, knob, beta))
    return rows


def _append_trace(path: str, recorder: TraceRecorder, name: str, knob: float | None) -> None:
    import json
    with open(path, "a", encoding="utf-8") as fh:
        for rec in recorder.records:
            fh.write(json.dumps(dict(rec, controller=name, knob=knob), ensure_ascii=False) + "\n")
