"""Discover a test-time-scaling controller: ``python train.py [+experiment=smoke|math] [key=value ...]``.

Config groups live in ``conf/`` (store, env, controller, search, objective, logger,
trainer, experiment); the run directory (checkpoints, W&B files, export) is
``runs/<name>/<time>/``, and the export directory is the last line printed.
"""

import sys

import hydra

from autotts.discovery.overrides import check_overrides


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg) -> None:
    from autotts.discovery.train import run

    run(cfg)


if __name__ == "__main__":
    check_overrides("conf", "config", sys.argv[1:])  # bad keys or options: one line, exit 2
    main()
