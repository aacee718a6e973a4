"""What `autotts eval` does, kept apart from argument parsing so tests and reports can call it."""

from __future__ import annotations

import argparse
from typing import Iterator

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


def controller_settings(name: str, knobs: list[float] | None, betas: list[float] | None
                        ) -> Iterator[tuple[object, float | None, float | None]]:
    """(controller, knob, beta) for every setting to evaluate."""
    if name == "cmc":
        for b in betas if betas is not None else (knobs or BASELINES["cmc"][2]):
            yield make_baseline("cmc", b), None, b
    elif name in BASELINES:
        for k in knobs if knobs is not None else BASELINES[name][2]:
            yield make_baseline(name, k), k, None
    else:
        from autotts.artifact.export import load_controller  # a trained, exported controller
        ctrl = load_controller(name)
        for b in betas if betas is not None else ctrl.default_betas:
            yield ctrl.with_beta(b), None, b


def run_eval(args: argparse.Namespace) -> list[EvalRow]:
    knobs, betas = parse_floats(args.knob, "--knob"), parse_floats(args.beta, "--beta")
    device = resolve_device(args.device)
    names = [n.strip() for spec in args.controller for n in spec.split(",") if n.strip()]
    rows: list[EvalRow] = []
    for spec in args.store:
        store = load_store(spec).to(device)
        episodes = protocol_episodes(store, args.protocol, args.seeds, args.subset_size).to(device)
        for name in names:
            for ctrl, knob, beta in controller_settings(name, knobs, betas):
                recorder = TraceRecorder(store, episodes, traced_first(episodes, args.trace_episodes)) if args.trace else None
                result, wall = evaluate(store, episodes, ctrl, recorder=recorder)
                if recorder is not None:
                    _append_trace(args.trace, recorder, name, knob if beta is None else beta)
                rows.append(eval_row(store, episodes, name, result, wall, knob, beta))
    return rows


def _append_trace(path: str, recorder: TraceRecorder, name: str, knob: float | None) -> None:
    import json
    with open(path, "a", encoding="utf-8") as fh:
        for rec in recorder.records:
            fh.write(json.dumps(dict(rec, controller=name, knob=knob), ensure_ascii=False) + "\n")
