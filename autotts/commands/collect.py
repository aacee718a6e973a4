"""`autotts collect`: build an AutoTTS replay store from a live model (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path

from autotts.errors import AutottsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from autotts.executor.options import add_model_arguments

    parser.add_argument("--questions", required=True,
                        help="JSONL file: {\"question\": ..., \"gold_answer\": ...} per line")
    parser.add_argument("--n", type=int, default=128, help="branches per question (default: %(default)s)")
    parser.add_argument("--out", required=True, help="store to write (.json or .json.gz)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from autotts.collect.collector import collect
    from autotts.collect.partial import PartialStore
    from autotts.collect.questions import read_questions
    from autotts.executor.options import format_prompt, generation_config, reader_from_args

    out = Path(args.out)
    if args.n <= 0:
        raise AutottsError(f"--n {args.n}: expected a positive number of branches")
    questions = read_questions(args.questions)
    prompts = [format_prompt(args.prompt_template, q.text) for q in questions]
    partial = PartialStore(out, {**generation_config(args), "n": args.n}, questions)  # checked before loading
    if out.exists() and not partial.path.exists() and not args.overwrite:
        raise AutottsError(f"{out}: exists (pass --overwrite to collect it again)")
    reader = reader_from_args(args)
    with _Progress(len(questions), args.quiet) as progress:
        records = collect(reader, questions, prompts, args.n, args.seed, out, partial, progress.update)
    tokens = sum(b[1] for r in records for b in r["each_branch"])
    print(f"wrote {out}: {len(records)} questions x {args.n} branches, {tokens} tokens, delta={args.delta}")
    return 0


class _Progress:
    """A rich progress bar over questions, with the tokens generated so far."""

    def __init__(self, total: int, quiet: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.tokens = 0
        self.bar = Progress(TextColumn("collect"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tok]}"),
                            TimeElapsedColumn(), console=Console(stderr=True), disable=quiet)
        self.task = self.bar.add_task("collect", total=total, tok="0 tokens")

    def update(self, index: int, record: dict) -> None:
        self.tokens += sum(b[1] for b in record["each_branch"])
        self.bar.update(self.task, advance=1, tok=f"{self.tokens} tokens")

    def __enter__(self) -> "_Progress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)
