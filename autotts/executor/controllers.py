"""Controller specs for `autotts run`: ``NAME:KNOB`` for a baseline, or an exported controller directory.

Baselines come from the one registry, `autotts.controllers.baselines.BASELINES`
(``sc:8``, ``asc:16``, ``esc:16``, ``parallel_probe:16`` or ``pp:16``,
``cmc`` or ``cmc:0.3``; CMC's knob defaults to ``--beta``); add a spelling to
`ALIASES`, a controller to that registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autotts.controllers.baselines import BASELINES, make_baseline
from autotts.errors import AutottsError

ALIASES = {"pp": "parallel_probe", "parallel-probe": "parallel_probe"}
BETA_KNOB = {"cmc"}  # baselines whose knob is β (defaults to --beta)


def controller_from_spec(spec: str, beta: float = 0.5, delta: int | None = None) -> Any:
    """A `Controller` for `spec`; `delta` is checked against an exported controller's manifest."""
    if Path(spec).is_dir():
        return _exported(Path(spec), beta, delta)
    name, _, knob = spec.partition(":")
    name = ALIASES.get(name.lower(), name.lower())
    if name not in BASELINES:
        raise AutottsError(f"--controller {spec}: unknown controller (expected one of "
                           f"{', '.join(sorted(BASELINES) + sorted(ALIASES))} as NAME:KNOB, or an export directory)")
    if not knob:
        if name not in BETA_KNOB:
            raise AutottsError(f"--controller {spec}: {name} needs its {BASELINES[name][1]} (e.g. {name}:16)")
        knob = str(beta)
    try:
        value = float(knob)
    except ValueError:
        raise AutottsError(f"--controller {spec}: knob {knob!r} is not a number") from None
    if name not in BETA_KNOB and (value < 1 or value != int(value)):
        raise AutottsError(f"--controller {spec}: {BASELINES[name][1]} must be a positive integer")
    return make_baseline(name, value)


def _exported(path: Path, beta: float, delta: int | None) -> Any:
    """An exported controller (.pt2, else .pt), after its manifest is checked against this run and build."""
    from autotts.artifact.export import load_controller
    return load_controller(path, beta=beta, delta=delta)
