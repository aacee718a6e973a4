"""The manifest of an exported controller (``controller.pt`` + ``manifest.json``) and its checks.

A controller only makes sense with the observation features and the interval
Δ it was trained on; running it with other features or another Δ would give
silently wrong decisions, so a mismatch is a one-line error instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autotts.errors import AutottsError

FORMAT = "autotts-controller-v1"
REQUIRED = ("format", "autotts_version", "delta", "slots", "features", "actions", "beta_range", "guards",
            "training_stores", "validation_curve")
FEATURE_GROUPS = ("pool", "branch", "completed", "live")  # manifest order; "completed"/"live" optional on read


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
    if not (Path(directory) / "controller.pt").is_file():
        raise AutottsError(f"{directory}: no controller.pt (an exported controller directory holds "
                           "controller.pt and manifest.json)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AutottsError(f"{path}: missing manifest (export writes it next to controller.pt)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AutottsError(f"{path}: unreadable manifest ({err})") from None
    return manifest


def check_manifest(manifest: dict, delta: int, feature_names: list[str]) -> None:
    """Raise a one-line `AutottsError` unless `manifest` fits a run with interval `delta` and these features.

    `feature_names` is this build's features in `FEATURE_GROUPS` order (see `feature_names()`; the
    manifest's ``features`` lists them under "pool", "branch" and, optionally, "completed" and "live").
    """
    if not isinstance(manifest, dict):
        raise AutottsError(f"controller manifest: expected a JSON object, got {type(manifest).__name__}")
    for key in REQUIRED:
        if key not in manifest:
            raise AutottsError(f"controller manifest: missing key '{key}'")
    if manifest["format"] != FORMAT:
        raise AutottsError(f"controller manifest: format {manifest['format']!r}, expected {FORMAT!r}")
    if manifest["delta"] != delta:
        raise AutottsError(f"controller manifest: trained with delta={manifest['delta']} tokens but this run uses "
                           f"delta={delta} (pass --delta {manifest['delta']})")
    names = _manifest_features(manifest["features"])
    if names != list(feature_names):
        diff = _first_difference(names, list(feature_names))
        raise AutottsError(f"controller manifest: feature names differ from this build's ({diff})")


def _manifest_features(features: object) -> list[str]:
    if not isinstance(features, dict) or not all(isinstance(features.get(g, []), list) for g in FEATURE_GROUPS) \
            or "pool" not in features or "branch" not in features:
        raise AutottsError("controller manifest: 'features' must be {\"pool\": [names], \"branch\": [names], "
                           "\"completed\": [names], \"live\": [names]}")
    return [str(x) for g in FEATURE_GROUPS for x in features.get(g, [])]


def _first_difference(theirs: list[str], ours: list[str]) -> str:
    for i, (a, b) in enumerate(zip(theirs, ours)):
        if a != b:
            return f"feature {i}: manifest has '{a}', this build has '{b}'"
    if len(theirs) > len(ours):
        return f"manifest has extra feature '{theirs[len(ours)]}'"
    return f"manifest lacks feature '{ours[len(theirs)]}'"
