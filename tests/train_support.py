"""Shared parts of the training/export tests: config composition, hand-made policies, direct exports.

Not a test module (no ``test_`` prefix).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from autotts.artifact.export import export_controller, guard_records
from autotts.artifact.manifest import build_manifest
from autotts.controllers.learned import DEFAULT_GUARDS, ActionSpec, GuardSpec
from autotts.controllers.policy import BRANCH_HEADS, EPISODE_HEADS, PolicyShape, unflatten

ROOT = Path(__file__).resolve().parents[1]
SMALL_STORE = "synthetic:questions=4,branches=24,seed=7"


def train_cfg(*overrides: str) -> dict:
    """The resolved `train.py` config for `overrides` (composed as Hydra would, without running it)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def subprocess_env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_SILENT="true")
    env.pop("WANDB_MODE", None)
    return env


def python() -> str:
    return sys.executable


def beta_switch_weights(stop_above: float | None = None, stop_below: float | None = None,
                        shape: PolicyShape = PolicyShape()) -> torch.Tensor:
    """A policy whose stop head depends on β alone: stop at once when β is above (or below) a threshold.

    Otherwise it opens about two branches a round and advances every branch by one interval. Hidden unit 0
    is tanh(2β); the stop head compares it with tanh(2·threshold).
    """
    flat = torch.zeros(shape.size)
    w = unflatten(flat, shape)
    w["w1"][shape.n_pool, 0] = 2.0                    # the β input (last row) drives hidden unit 0
    threshold = stop_above if stop_above is not None else stop_below
    sign = 1.0 if stop_above is not None else -1.0
    w["w_ep"][0, 0] = 10.0 * sign                      # stop logit a = ±10·(h0 - tanh(2·threshold))
    w["b_ep"].copy_(torch.tensor([-10.0 * sign * float(torch.tanh(torch.tensor(2.0 * threshold))), 0.0,
                                  1.0, -1.0, -1.0, 1.0]))
    w["b_br"].copy_(torch.tensor([-1.0, 1.0, 1.0, -1.0, -1.0, 1.0]))  # keep, advance, one interval
    w["b_live"].fill_(-6.0)
    return flat


def export_weights(weights: torch.Tensor, directory: Path, delta: int = 500,
                   validation: tuple[str, ...] = (SMALL_STORE,), spec: ActionSpec = ActionSpec(),
                   shape: PolicyShape = PolicyShape(), guards: tuple[GuardSpec, ...] = DEFAULT_GUARDS) -> Path:
    """Export `weights` with a manifest like training writes (no training run needed)."""
    manifest = build_manifest(
        delta=delta, actions={**asdict(spec), "decision": "mean"}, policy_shape={**asdict(shape), "size": shape.size},
        heads={"episode": list(EPISODE_HEADS), "branch": list(BRANCH_HEADS)}, guards=guard_records(guards),
        default_betas=[0.0, 0.5, 1.0], training_stores=[],
        validation_stores=[{"spec": s} for s in validation], validation_curve=[], monotone={})
    return export_controller(weights, shape, directory, manifest)
