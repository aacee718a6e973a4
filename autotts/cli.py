"""The `autotts` console script: one module per subcommand under `autotts.commands`.

User errors (`AutottsError`) print one line and exit 2; Ctrl-C exits 130
after the command has saved what it finished.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from autotts import __version__
from autotts.errors import AutottsError

# Subcommand name -> module in autotts.commands exposing `add_arguments(parser)` and `main(args) -> int`.
COMMANDS = {
    "eval": "Evaluate controllers on replay stores.",
    "collect": "Build a replay store from an LLM.",
    "run": "Run a controller against a live LLM.",
    "serve": "Serve a controller as an OpenAI-compatible proxy in front of a completions server.",
    "export": "Export a trained controller (torch.export .pt2, TorchScript .pt + manifest).",
    "explain": "Distil a controller into a readable rule list.",
    "report": "Accuracy-token curves, tables and a report.",
    "trace": "Draw one episode's width-depth trace.",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of `only` (what a run needs: the others' imports count toward cold start)."""
    parser = argparse.ArgumentParser(prog="autotts", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"autotts {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = _module(name) if only in (None, name) else None
        if module is None:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


def _module(name: str):
    try:
        return importlib.import_module(f"autotts.commands.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"autotts.commands.{name}":
            return None  # subcommand not shipped in this build
        raise


def main(argv: list[str] | None = None) -> int:
    first = (sys.argv[1:] if argv is None else argv)[:1]
    parser = build_parser(first[0] if first and first[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except AutottsError as err:
        print(f"autotts {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"autotts {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
