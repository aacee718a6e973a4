"""`autotts trace`: run one controller on one (question, seed) episode; draw its width–depth picture."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, metavar="PATH",
                   help="store file, MODEL/DATASET under $AUTOTTS_DATA, or synthetic[:k=v,...]")
    p.add_argument("--question", type=int, required=True, help="question index in the store (0-based)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed of the episode (default 0)")
    p.add_argument("--controller", required=True, metavar="NAME",
                   help="sc, asc, esc, parallel_probe, cmc, or an export dir")
    p.add_argument("--knob", type=float, help="baseline knob (default: the middle of its reference sweep)")
    p.add_argument("--beta", type=float, help="β for cmc and exported controllers")
    p.add_argument("--protocol", default="reference", choices=["reference", "subsets"])
    p.add_argument("--subset-size", type=int, default=64, help="branches per episode in the subsets protocol")
    p.add_argument("--out", metavar="FILE.png", help="write the picture here")
    p.add_argument("--jsonl", metavar="FILE", help="also write the execution trace records (JSONL)")
    p.add_argument("--top", type=int, default=3, help="answers shown in the running vote, besides gold (default 3)")
    p.add_argument("--dpi", type=int, default=110, help="PNG resolution (default 110)")
    p.add_argument("--quiet", action="store_true", help="do not print the terminal rendering")


def main(args: argparse.Namespace) -> int:
    from autotts.evaluate.plots import require_matplotlib
    from autotts.evaluate.trace import render
    from autotts.evaluate.trace_episode import trace_episode
    if args.out:
        require_matplotlib()
    records, label = trace_episode(args.store, args.question, args.seed, args.controller, args.knob, args.beta,
                                   args.protocol, args.subset_size)
    if not args.quiet:
        print(label)
        print(render(records))
    if args.jsonl:
        import json
        with open(args.jsonl, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(dict(rec, controller=args.controller), ensure_ascii=False) + "\n")
    if args.out:
        from autotts.evaluate.plots import save_png
        from autotts.evaluate.trace_picture import trace_figure
        print(save_png(trace_figure(records, title=label, top=args.top), args.out, args.dpi))
    return 0
