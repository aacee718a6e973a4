"""The manifest of an exported controller (``controller.pt`` + ``manifest.json``) and its checks.

A controller only makes sense with the observation features and the interval
Δ it was trained on; running it with other features or another Δ would give
silently wrong decisions, so a mismatch is a one-line error instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from autotts.errors import AutottsError

FORMAT = "autotts-controller-v1"
REQUIRED = ("format", "autotts_version", "delta", "slots", "features", "actions", "beta_range", "guards",
            "training_stores", "validation_curve")


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

    `feature_names` is this build's pool features, then per-branch, then completed-branch features
    (the manifest's ``features`` lists them under "pool", "branch" and, optionally, "completed").
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
    groups = ("pool", "branch", "completed")
    if not isinstance(features, dict) or not all(isinstance(features.get(g, []), list) for g in groups) \
            or "pool" not in features or "branch" not in features:
        raise AutottsError("controller manifest: 'features' must be {\"pool\": [names], \"branch\": [names], "
                           "\"completed\": [names]}")
    return [str(x) for g in groups for x in features.get(g, [])]


def _first_difference(theirs: list[str], ours: list[str]) -> str:
    for i, (a, b) in enumerate(zip(theirs, ours)):
        if a != b:
            return f"feature {i}: manifest has '{a}', this build has '{b}'"
    if len(theirs) > len(ours):
        return f"manifest has extra feature '{theirs[len(ours)]}'"
    return f"manifest lacks feature '{ours[len(theirs)]}'"
