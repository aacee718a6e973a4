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


def test_a_curve_that_is_cmc_is_not_reported_below_cmcs_rounded_published_rows(monkeypatch):
    from tests.script_support import SCRIPTS, load_script
    monkeypatch.syspath_prepend(str(SCRIPTS))                       # it imports compare_cmc beside it
    views = load_script("validate_views")
    exact = [52.4 + 0.5 * i + 2 / 300 for i in range(11)]          # computed means ending in .xx67 (multiples of 1/150)
    tokens = [58e3 + 50e3 * i for i in range(11)]
    published = [round(a, 2) for a in exact]                        # the CSV's 2 decimals: 0.0033 up here
    curve = list(zip(views.BETAS, exact, tokens))                   # ours *is* CMC at every β
    assert views.cmc_above(curve, published, tokens) != []          # unforgiving: a tie read as CMC above
    assert views.cmc_above(curve, published, tokens, views.PUBLISHED_ROUNDING) == []
    lower = [a - 0.02 for a in exact]                               # a real shortfall still shows
    assert views.cmc_above(list(zip(views.BETAS, lower, tokens)), published, tokens,
                           views.PUBLISHED_ROUNDING) == views.BETAS
