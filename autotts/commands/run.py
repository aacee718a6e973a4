"""`autotts run`: a controller drives a live model on a questions file (answers, tokens, traces)."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from autotts.executor.options import add_model_arguments

    parser.add_argument("--controller", required=True,
                        help="NAME:KNOB (sc:8, asc:16, esc:16, pp:16, cmc[:BETA]) or an exported controller directory")
    parser.add_argument("--beta", type=float, default=0.5, help="accuracy-cost knob in [0,1] (default: %(default)s)")
    parser.add_argument("--questions", required=True,
                        help="JSONL file: {\"question\": ..., \"gold_answer\": ...} per line")
    parser.add_argument("--n", type=int, default=64, help="branches available per question (default: %(default)s)")
    parser.add_argument("--shuffle-seed", type=int, default=0,
                        help="branch opening order = python_shuffle(n, seed), as in replay (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON document with answers and traces")
    parser.add_argument("--trace", action="store_true", help="text output: print each question's action trace")
    add_model_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from autotts.answers.canonical import canonical
    from autotts.collect.questions import read_questions
    from autotts.errors import AutottsError
    from autotts.executor.controllers import controller_from_spec
    from autotts.executor.live_env import LiveEnv, LiveQuestion
    from autotts.executor.options import format_prompt, reader_from_args
    from autotts.executor.runtime import run_online

    if args.n <= 0:
        raise AutottsError(f"--n {args.n}: expected a positive number of branches")
    if not 0.0 <= args.beta <= 1.0:
        raise AutottsError(f"--beta {args.beta}: expected a value in [0, 1]")
    questions = read_questions(args.questions)
    controller = controller_from_spec(args.controller, args.beta, args.delta)
    live = [LiveQuestion(q.text, format_prompt(args.prompt_template, q.text)) for q in questions]
    reader = reader_from_args(args)
    env = LiveEnv(reader, live, args.n, controller.slots, args.shuffle_seed, args.seed)
    result = run_online(controller, env, args.beta)
    rows = []
    for q, ep in zip(questions, result.questions):
        gold = canonical(q.gold)
        rows.append({**ep.to_dict(), "question": q.text, "line": q.line, "gold": gold,
                     "correct": ep.answer is not None and ep.answer == gold})
    if args.json:
        json.dump({"controller": args.controller, "beta": args.beta, "delta": args.delta, "n": args.n,
                   "shuffle_seed": args.shuffle_seed, "seed": args.seed, "questions": rows,
                   "timing": vars(result.timing)}, sys.stdout, ensure_ascii=False)
        print()
    else:
        _print_table(rows, args.trace)
    return 0


def _print_table(rows: list[dict], trace: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("line", "answer", "gold", "ok", "tokens", "seq tokens", "rounds", "branches")
    for r in rows:
        table.add_row(str(r["line"]), str(r["answer"]), r["gold"], "yes" if r["correct"] else "no", str(r["tokens"]),
                      str(r["seq_tokens"]), str(r["rounds"]), str(len(r["branch_tokens"])))
    console = Console()
    console.print(table)
    acc = sum(r["correct"] for r in rows) / len(rows)
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    console.print(f"accuracy {100 * acc:.1f}%  mean tokens {mean('tokens'):.0f}  "
                  f"mean seq tokens {mean('seq_tokens'):.0f}")
    if trace:
        for r in rows:
            console.print(f"[bold]line {r['line']}[/bold]")
            for entry in r["trace"]:
                line = "  " + json.dumps(entry, ensure_ascii=False)
                console.print(line, markup=False, highlight=False, soft_wrap=True)
