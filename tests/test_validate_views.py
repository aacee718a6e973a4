"""scripts/validate_views.py refuses a path that is no export in one line (exit 2), as every command does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "validate_views.py"


def test_a_missing_export_is_a_one_line_error(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--controller", str(tmp_path / "no_export")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'no_export'}: not a controller name or an export directory "
        "(controller.pt + manifest.json)"]
