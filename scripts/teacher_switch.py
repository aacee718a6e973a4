"""Add the teacher switch to an existing export: CMC(β) at the β where the export did not beat CMC.

    python scripts/teacher_switch.py --controller runs/math/export --out runs/math/export_switched

What `python train.py ... monotone.teacher_switch=true` does at the end of a run
(`autotts.discovery.teacher_map.switch_check`), for an export made without it: the
same validation stores (the manifest's), splits, seeds and rule. The export's own
check (``monotone_check`` in the manifest) is reused when it was run at `--seeds`;
else the policy is swept again. Writes a copy of the export with ``beta_map`` in its
manifest when the switched curve keeps the checks; prints the decision either way.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from autotts.artifact.manifest import write_manifest
from autotts.discovery.knob import split_of
from autotts.discovery.monotone import monotone_check
from autotts.discovery.teacher_map import switch_check
from autotts.discovery.train import switch_line
from autotts.errors import AutottsError
from autotts.store import load_store
from validate_views import policy_parts  # scripts/ is on sys.path when this file runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", required=True, help="an export directory (no beta_map yet)")
    ap.add_argument("--out", required=True, help="directory for the switched copy (must not exist)")
    ap.add_argument("--seeds", type=int, default=30, help="reference-protocol seeds (default: %(default)s, math's)")
    ap.add_argument("--tolerance", type=float, default=0.5, help="knob rule points (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    except AutottsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    source, out = Path(args.controller), Path(args.out)
    if out.exists():
        raise AutottsError(f"--out {out}: exists (the switched copy goes into a new directory)")
    weights, shape, spec, guards, manifest, _ = policy_parts(str(source))
    if "beta_map" in manifest:
        raise AutottsError(f"{source}/manifest.json: has a beta_map already")
    specs = [r["spec"] for r in manifest.get("validation_stores", [])]
    if not specs:
        raise AutottsError(f"{source}/manifest.json: names no validation stores")
    stores, splits = [load_store(s) for s in specs], [split_of(s) for s in specs]
    verdict = manifest.get("monotone_check") or {}
    if verdict.get("seeds") != args.seeds or len(verdict.get("stores", {})) != len(stores):
        verdict = monotone_check(weights, stores, shape, spec, guards, 11, args.seeds, "reference", splits,
                                 tolerance=args.tolerance)
    result = switch_check(verdict, weights, stores, splits, shape, spec, guards, args.seeds, "reference",
                          tolerance=args.tolerance)
    print(switch_line(result["switch"]))
    for row in result["switch"]["rows"]:
        margins = ", ".join(f"{k} {v:+.2f}" if v is not None else f"{k} n/a" for k, v in row["margins"].items())
        print(f"  β={row['beta']:g}: {row['program']} at β={row['inner']:g} (ours − CMC at CMC's tokens: {margins})")
    if not result["switch"]["used"]:
        return 1
    shutil.copytree(source, out)
    write_manifest(out, dict(manifest, monotone_check=result, beta_map=result["switch"]["beta_map"]))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
