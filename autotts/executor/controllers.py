"""Controller specs for `autotts run` (and anything else that names a controller on a command line).

A spec is a baseline name with optional ``:``-separated knobs (``sc:8``,
``asc:16``, ``asc:16:0.9``, ``esc:16``, ``esc:32:5``) or the directory of an
exported controller. Add a baseline by adding one entry to `BASELINES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from autotts.controllers.baselines.full_reads import (AdaptiveConsistency, EarlyStoppingConsistency,
                                                      SelfConsistency)
from autotts.controllers.rules import RuleEngine, RuleProgram
from autotts.errors import AutottsError
from autotts.executor.manifest import check_manifest, read_manifest

# name -> (builder(knobs, beta), knob usage); knobs are the spec's ":"-separated fields after the name.
BASELINES: dict[str, tuple[Callable[[list[str], float], RuleProgram], str]] = {
    "sc": (lambda k, beta: SelfConsistency(_int(k, 0, 64)), "sc[:N]"),
    "asc": (lambda k, beta: AdaptiveConsistency(_int(k, 0, 40), _float(k, 1, 0.95)), "asc[:MAX_SAMPLES[:THRESHOLD]]"),
    "esc": (lambda k, beta: EarlyStoppingConsistency(_int(k, 0, 32), _int(k, 1, 8)), "esc[:MAX_SAMPLES[:WINDOW]]"),
}


def controller_from_spec(spec: str, beta: float = 0.5, delta: int | None = None) -> Any:
    """A `Controller` for `spec` (see the module docstring); `delta` is checked against exported controllers."""
    if Path(spec).is_dir():
        return _exported(Path(spec), beta, delta)
    name, *knobs = spec.split(":")
    entry = BASELINES.get(name.lower())
    if entry is None:
        known = ", ".join(usage for _, usage in BASELINES.values())
        raise AutottsError(f"--controller {spec}: unknown controller (expected one of {known}, "
                           "or an exported controller directory)")
    build, usage = entry
    try:
        program = build(knobs, beta)
    except (ValueError, IndexError) as err:
        raise AutottsError(f"--controller {spec}: {err} (usage: {usage})") from None
    return RuleEngine(program)


def _exported(path: Path, beta: float, delta: int | None) -> Any:
    """An exported TorchScript controller, after its manifest is checked against this run and build."""
    manifest = read_manifest(path)
    try:
        from autotts.controllers.features import feature_names
        from autotts.executor.export import load_controller
    except ImportError:
        raise AutottsError(f"{path}: this build cannot run exported controllers yet "
                           "(autotts.controllers.features / autotts.executor.export are missing)") from None
    check_manifest(manifest, manifest.get("delta") if delta is None else delta, feature_names())
    return load_controller(path, beta=beta)


def _int(knobs: list[str], i: int, default: int) -> int:
    if i >= len(knobs) or knobs[i] == "":
        return default
    value = int(knobs[i])
    if value < 1:
        raise ValueError(f"knob {knobs[i]} must be a positive integer")
    return value


def _float(knobs: list[str], i: int, default: float) -> float:
    return default if i >= len(knobs) or knobs[i] == "" else float(knobs[i])
