"""One module per `autotts` subcommand: `add_arguments(parser)` and `main(args) -> int`."""
