"""Command-line overrides of ``train.py`` checked up front, so a typo is one line and exit code 2.

Hydra reports a bad override (unknown key, unknown config option) as a
multi-line message and exit code 1; composing the config here first turns it
into the project's one-line `AutottsError` convention.
"""

from __future__ import annotations

import sys
from pathlib import Path

FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                    "--config-dir", "-cd", "--info", "--experimental-rerun"}


def check_overrides(config_dir: str, config_name: str, argv: list[str]) -> None:
    """Exit 2 with one line if `argv`'s overrides do not compose with the config (flags are left to Hydra)."""
    overrides = _overrides(argv)
    if overrides is None:
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    directory = Path(config_dir)
    if not directory.is_absolute():
        directory = Path(sys.argv[0]).resolve().parent / directory
    try:
        with initialize_config_dir(config_dir=str(directory), version_base="1.3"):
            compose(config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        print(f"train.py: error: {_naming(one_line(err), overrides)}", file=sys.stderr, flush=True)
        sys.exit(2)


def _naming(message: str, overrides: list[str]) -> str:
    """The message, led by the overrides when it names none of them (e.g. Hydra's "Got int" for `logger=-3`)."""
    if any(o.split("=")[0].lstrip("+~") in message for o in overrides):
        return message
    return f"{' '.join(overrides)}: {message}"


def _overrides(argv: list[str]) -> list[str] | None:
    """The key=value overrides of `argv`; None when a Hydra flag asks for something other than a run."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            if arg in ("-m", "--multirun", "--help", "-h", "--hydra-help", "--version", "--shell-completion", "-sc",
                       "--info", "-i", "--cfg", "-c", "--resolve"):
                return None
            skip = arg in FLAGS_WITH_VALUE
            continue
        out.append(arg)
    return out


def one_line(err: BaseException) -> str:
    """A Hydra/OmegaConf error and its cause as one line (Hydra's own messages span several)."""
    parts = []
    while err is not None and len(parts) < 3:
        text = " ".join(line.strip() for line in str(err).splitlines() if line.strip()
                        and not line.strip().startswith(("full_key:", "object_type=", "reference_type=")))
        text = text.split(" Config search path:")[0].split(" See https://")[0]
        if text and text != "None" and text not in parts:
            parts.append(text)
        err = err.__cause__ or err.__context__
    return " -- ".join(parts) or type(err).__name__
