"""The manifest of an exported controller (``controller.pt2``, ``controller.pt`` + ``manifest.json``) and its checks.

A controller only makes sense with the observation features and the interval
Δ it was trained on; running it with other features or another Δ would give
silently wrong decisions, so a mismatch is a one-line error instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from autotts.errors import AutottsError
from autotts.store.autotts_json import MAX_DELTA, power

FORMAT = "autotts-controller-v1"
REQUIRED = ("format", "autotts_version", "delta", "slots", "features", "actions", "beta_range", "guards",
            "training_stores", "validation_curve")
MAX_SLOTS = 4096


def _int_in(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _betas(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_number(b) and 0 <= b <= 1 for b in v)


def _store_records(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(r, dict) and isinstance(r.get("spec"), str) for r in v)


# Field -> (check, what was expected). Required fields are in REQUIRED; the others are checked when present.
# "features" has its own check (`_manifest_features`); "actions" and "guards" are checked in depth by
# `check_runnable`, which only a run needs.
FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format": (lambda v: isinstance(v, str), "a format string"),
    "autotts_version": (lambda v: isinstance(v, str), "a version string"),
    "delta": (_int_in(1, MAX_DELTA), f"a positive integer interval in tokens (at most {power(MAX_DELTA)})"),
    "slots": (_int_in(1, MAX_SLOTS), f"an integer in 1..{MAX_SLOTS}"),
    "actions": (lambda v: isinstance(v, dict), "an object"),
    "beta_range": (lambda v: isinstance(v, list) and len(v) == 2 and all(_number(b) for b in v), "[low, high]"),
    "guards": (lambda v: isinstance(v, list), "a list of guards"),
    "training_stores": (lambda v: isinstance(v, list), "a list of store records"),
    "validation_curve": (lambda v: isinstance(v, list), "a list of validations"),
    "default_betas": (_betas, "a non-empty list of numbers in [0, 1]"),
    "validation_stores": (_store_records, "a list of {\"spec\": store, ...}"),
    "beta_map": (lambda v: isinstance(v, dict), "an object {betas, programs, inner} (autotts.controllers.switch)"),
}
ACTION_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "slots": (_int_in(1, MAX_SLOTS), f"an integer in 1..{MAX_SLOTS}"),
    "max_open": (_int_in(1, MAX_SLOTS), f"an integer in 1..{MAX_SLOTS}"),
    "burst": (_int_in(1, 10**6), "an integer in 1..10^6"),
}
FEATURE_GROUPS = ("pool", "branch", "completed", "live")  # manifest order; "completed"/"live" optional on read
TORCHSCRIPT, TORCH_EXPORT = "controller.pt", "controller.pt2"
# manifest "files": program kind -> file name; an export from before torch.export names none (torchscript only)
FILES = {"torchscript": TORCHSCRIPT, "torch_export": TORCH_EXPORT}


def feature_groups() -> dict[str, list[str]]:
    """This build's observation feature names per group (from `autotts.controllers.features`)."""
    from autotts.controllers.features import BRANCH_FEATURES, COMPLETED_FEATURES, LIVE_FEATURES, POOL_FEATURES

    return {"pool": list(POOL_FEATURES), "branch": list(BRANCH_FEATURES), "completed": list(COMPLETED_FEATURES),
            "live": list(LIVE_FEATURES)}


def feature_names() -> list[str]:
    """This build's features flattened in manifest order (what `check_manifest` compares)."""
    return [name for group in feature_groups().values() for name in group]


def build_manifest(*, delta: int, actions: dict, policy_shape: dict, heads: dict, guards: list[dict],
                   default_betas: list[float], training_stores: list[dict], validation_stores: list[dict],
                   validation_curve: list[dict], monotone: dict, **extra: Any) -> dict:
    """The manifest of a controller trained with this build's features (the fields `check_manifest` reads first)."""
    from autotts import __version__

    return {"format": FORMAT, "autotts_version": __version__, "delta": int(delta), "slots": int(actions["slots"]),
            "features": feature_groups(), "actions": actions, "policy_shape": policy_shape, "heads": heads,
            "beta_range": [0.0, 1.0], "default_betas": list(default_betas), "guards": guards,
            "training_stores": training_stores, "validation_stores": validation_stores,
            "validation_curve": validation_curve, "monotone_check": monotone, **extra}


def write_manifest(directory: str | Path, manifest: dict) -> Path:
    path = Path(directory) / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_manifest(directory: str | Path) -> dict:
    """``manifest.json`` of an exported controller directory, parsed."""
    path = Path(directory) / "manifest.json"
    if not (Path(directory) / TORCHSCRIPT).is_file():
        raise AutottsError(f"{directory}: no {TORCHSCRIPT} (an exported controller directory holds "
                           f"{TORCHSCRIPT}, {TORCH_EXPORT} and manifest.json)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AutottsError(f"{path}: missing manifest (export writes it next to {TORCHSCRIPT})") from None
    except UnicodeDecodeError as err:
        raise AutottsError(f"{path}: unreadable manifest: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise AutottsError(f"{path}: unreadable manifest: invalid JSON at line {err.lineno} column {err.colno}: "
                           f"{err.msg}") from None
    except OSError as err:
        raise AutottsError(f"{path}: unreadable manifest ({err.strerror or err})") from None
    if isinstance(manifest, dict):
        controller_files(directory, manifest)
    return manifest


def controller_files(directory: str | Path, manifest: dict) -> dict[str, str]:
    """The manifest's ``files`` (program kind -> file name), each named file present in `directory`.

    Names are fixed (`FILES`), so a manifest cannot point outside its directory; a manifest
    without ``files`` is an export from before torch.export and has only ``controller.pt``.
    """
    source = str(Path(directory) / "manifest.json")
    files = manifest.get("files", {"torchscript": TORCHSCRIPT})
    if not (isinstance(files, dict) and files.get("torchscript") == TORCHSCRIPT
            and all(FILES.get(k) == v for k, v in files.items())):
        raise AutottsError(f"{source}: field 'files': expected {_show(FILES)} (or without \"torch_export\"), "
                           f"got {_show(files)}")
    for name in files.values():
        if not (Path(directory) / name).is_file():
            raise AutottsError(f"{source}: field 'files' names {name} but it is missing (copy the whole export "
                               "directory)")
    return dict(files)


def check_manifest(manifest: dict, delta: int | None, feature_names: list[str],
                   source: str = "controller manifest") -> None:
    """Raise a one-line `AutottsError` unless `manifest` fits a run with interval `delta` and these features.

    `feature_names` is this build's features in `FEATURE_GROUPS` order (see `feature_names()`; the
    manifest's ``features`` lists them under "pool", "branch" and, optionally, "completed" and "live").
    `delta` None takes the manifest's own. `source` (the file) starts every message.
    """
    if not isinstance(manifest, dict):
        raise AutottsError(f"{source}: expected a JSON object, got {type(manifest).__name__}")
    for key in REQUIRED:
        if key not in manifest:
            raise AutottsError(f"{source}: missing key '{key}'")
    check_fields(manifest, FIELDS, source)
    if manifest["format"] != FORMAT:
        raise AutottsError(f"{source}: format {manifest['format']!r}, expected {FORMAT!r}")
    if delta is not None and manifest["delta"] != delta:
        raise AutottsError(f"{source}: trained with delta={manifest['delta']} tokens but this run uses "
                           f"delta={delta} (pass --delta {manifest['delta']})")
    names = _manifest_features(manifest["features"], source)
    if names != list(feature_names):
        diff = _first_difference(names, list(feature_names))
        raise AutottsError(f"{source}: feature names differ from this build's ({diff})")


def check_fields(values: dict, table: dict[str, tuple[Callable[[Any], bool], str]], source: str,
                 prefix: str = "") -> None:
    """One-line error for the first field of `values` that `table` names and its check refuses."""
    for key, (ok, expected) in table.items():
        if key in values and not ok(values[key]):
            raise AutottsError(f"{source}: field '{prefix}{key}': expected {expected}, got {_show(values[key])}")


def check_runnable(manifest: dict, source: str = "controller manifest") -> None:
    """What running the controller needs beyond `check_manifest`: the action spec and guards this build has."""
    from autotts.controllers.rules import guard_problem

    actions = manifest["actions"]
    missing = [k for k in ACTION_FIELDS if k not in actions]
    if missing:
        raise AutottsError(f"{source}: 'actions' must hold slots, max_open and burst (missing '{missing[0]}')")
    check_fields(actions, ACTION_FIELDS, source, "actions.")
    for i, guard in enumerate(manifest["guards"]):
        where = f"{source}: field 'guards[{i}]'"
        if not (isinstance(guard, dict) and "name" in guard):
            raise AutottsError(f"{where}: 'guards' must be a list of {{\"name\": ..., \"params\": {{...}}}}, "
                               f"got {_show(guard)}")
        problem = guard_problem(guard["name"], guard.get("params", {}))
        if problem:
            raise AutottsError(f"{where}: {problem}")


def _show(x: Any) -> str:
    try:
        text = json.dumps(x, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _manifest_features(features: object, source: str = "controller manifest") -> list[str]:
    if not isinstance(features, dict) or not all(isinstance(features.get(g, []), list) for g in FEATURE_GROUPS) \
            or "pool" not in features or "branch" not in features:
        raise AutottsError(f"{source}: 'features' must be {{\"pool\": [names], \"branch\": [names], "
                           "\"completed\": [names], \"live\": [names]}")
    return [str(x) for g in FEATURE_GROUPS for x in features.get(g, [])]


def _first_difference(theirs: list[str], ours: list[str]) -> str:
    for i, (a, b) in enumerate(zip(theirs, ours)):
        if a != b:
            return f"feature {i}: manifest has '{a}', this build has '{b}'"
    if len(theirs) > len(ours):
        return f"manifest has extra feature '{theirs[len(ours)]}'"
    return f"manifest lacks feature '{ours[len(theirs)]}'"
