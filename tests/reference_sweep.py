"""Where the tests find the published reference sweep: beside the public stores, via AUTOTTS_DATA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def reference_csv() -> Path:
    """`$AUTOTTS_DATA/../../reference/reference_sweep.csv`; a missing file is a failure, not a skip."""
    path = Path(os.environ.get("AUTOTTS_DATA") or ".").resolve().parent.parent / "reference" / "reference_sweep.csv"
    if not path.is_file():
        pytest.fail(f"reference sweep not found at {path} (expected $AUTOTTS_DATA/../../reference/reference_sweep.csv)")
    return path
