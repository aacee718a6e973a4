"""`autotts report`: accuracy–token curves with bootstrap bands, tables and report.md for replay stores."""

from __future__ import annotations

import argparse
import shlex
import sys

DEFAULT_BASELINES = "sc,asc,esc,parallel_probe,cmc"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", action="append", default=[], metavar="PATH",
                   help="store file, MODEL/DATASET under $AUTOTTS_DATA, or synthetic[:k=v,...]; repeatable")
    p.add_argument("--results", metavar="FILE",
                   help="redraw from the results.json of an earlier report instead of (or besides) evaluating")
    p.add_argument("--controller", action="append", default=[], metavar="EXPORT_DIR",
                   help="exported controller to sweep over β; repeatable")
    p.add_argument("--beta", help="β values for exported controllers, comma-separated (default: the controller's)")
    p.add_argument("--baselines", default=DEFAULT_BASELINES,
                   help=f"baselines to sweep, comma-separated (default {DEFAULT_BASELINES}); SC@64 is always run")
    p.add_argument("--knobs", action="append", default=[], metavar="NAME=V,V,...",
                   help="override a baseline's sweep, e.g. --knobs sc=1,8,64 --knobs cmc=0,0.5,1; repeatable")
    p.add_argument("--protocol", default="reference", choices=["reference", "subsets"])
    p.add_argument("--seeds", type=int, help="shuffle seeds (default 100 reference / 64 subsets)")
    p.add_argument("--subset-size", type=int, default=64, help="branches per episode in the subsets protocol")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op CPU threads (default 1, as for eval: more threads only contend on the env's "
                        "small ops, several times slower on a busy machine)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes that run the sweep's rollouts (default 1; one per core scales, e.g. 2 on 2 cores)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap draws (default 0)")
    p.add_argument("--dpi", type=int, default=110, help="PNG resolution (default 110)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")


def main(args: argparse.Namespace) -> int:
    import torch

    from autotts.errors import AutottsError
    from autotts.evaluate.cli_eval import parse_floats
    from autotts.evaluate.plots import require_matplotlib
    from autotts.evaluate.report import (ReportSettings, evaluate_store, load_results, parse_knobs, pool_stores,
                                         print_progress, save_results, summarise_store, sweep_plan, write_report)
    _check(args)
    torch.set_num_threads(args.threads)
    require_matplotlib()  # before the sweeps, not after
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    plan = sweep_plan(baselines, parse_knobs(args.knobs), args.controller, parse_floats(args.beta, "--beta"))
    settings = ReportSettings(protocol=args.protocol, seeds=args.seeds, subset_size=args.subset_size,
                              resamples=args.resamples, confidence=args.confidence,
                              bootstrap_seed=args.bootstrap_seed, device=args.device, workers=args.workers)
    stores, protocol = load_results(args.results) if args.results else ([], args.protocol)
    if args.store and protocol != args.protocol:
        raise AutottsError(f"--results {args.results}: its stores used the {protocol} protocol, not {args.protocol}")
    stores += [evaluate_store(spec, plan, settings, print_progress) for spec in args.store]
    save_results(_out(args.out) / "results.json", stores, protocol)
    command = "autotts " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["report"] else None
    path = write_report([summarise_store(s, settings) for s in stores], args.out, protocol, command, args.dpi,
                        pool_stores(stores, settings))
    print(path)
    return 0


def _check(args: argparse.Namespace) -> None:
    from autotts.errors import AutottsError
    if not args.store and not args.results:
        raise AutottsError("give at least one --store (or --results FILE from an earlier report)")
    if args.resamples < 1 or not 0.0 < args.confidence < 1.0:
        raise AutottsError(f"--resamples {args.resamples} / --confidence {args.confidence}: "
                           "expected at least 1 resample and a coverage strictly between 0 and 1")
    if args.workers < 1:
        raise AutottsError(f"--workers {args.workers}: expected a positive number")
    if args.seeds is not None and args.seeds < 1:
        raise AutottsError(f"--seeds {args.seeds}: expected a positive number")


def _out(path: str):
    from pathlib import Path

    from autotts.errors import AutottsError
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AutottsError(f"--out {path}: cannot create the directory ({err.strerror or err})") from None
    return out
