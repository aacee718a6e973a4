"""`autotts eval`: accuracy and mean tokens of controllers on replay stores, under a protocol."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", action="append", required=True, metavar="PATH",
                   help="store file (.json/.json.gz/.pt), MODEL/DATASET under $AUTOTTS_DATA, "
                        "or synthetic[:k=v,...]; repeatable")
    p.add_argument("--controller", action="append", required=True, metavar="NAME",
                   help="sc, asc, esc, parallel_probe, cmc, or an export dir; repeatable or comma-separated")
    p.add_argument("--knob", help="baseline knobs, comma-separated (default: the reference sweep)")
    p.add_argument("--beta", help="β values for cmc and learned controllers, comma-separated")
    p.add_argument("--protocol", default="reference", choices=["reference", "subsets"])
    p.add_argument("--seeds", type=int, help="shuffle seeds (default 100 reference / 64 subsets)")
    p.add_argument("--subset-size", type=int, default=64, help="branches per episode in the subsets protocol")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op CPU threads (default 1: the env's ops are small, and more threads only "
                        "contend with each other)")
    p.add_argument("--fold", type=int, metavar="K",
                   help="settings (knobs/βs) per rollout (default: all on a GPU, up to 8192 rows a rollout on CPU)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--trace", metavar="FILE", help="write execution traces (JSONL) of the first episodes")
    p.add_argument("--trace-episodes", type=int, default=30, help="how many episodes to trace (default 30)")


def main(args: argparse.Namespace) -> int:
    import torch

    from autotts.evaluate.cli_eval import run_eval
    torch.set_num_threads(args.threads)
    rows = run_eval(args)
    if args.json:
        for row in rows:
            print(json.dumps(row.as_dict()), flush=True)
    else:
        _print_table(rows)
    return 0


def _print_table(rows: list) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title="autotts eval", show_lines=False)
    for col in ("store", "controller", "knob/β", "accuracy %", "tokens", "seq tokens", "episodes", "wall s"):
        table.add_column(col, justify="right" if col not in ("store", "controller") else "left")
    for r in rows:
        knob = r.beta if r.beta is not None else r.knob
        table.add_row(f"{r.model}/{r.dataset}", r.controller, "" if knob is None else f"{knob:g}",
                      f"{r.accuracy:.2f}", f"{r.tokens:,.1f}", f"{r.seq_tokens:,.1f}", str(r.episodes),
                      f"{r.wall_s:.3f}")
    Console(file=sys.stdout, width=120).print(table)
