"""`search=relaxed`: Adam on the relaxed objective, driven by the discovery module like an ES searcher.

The module binds each generation's batch to the searcher's evaluator and calls
`step()`, then reads `status["center"]`; `GradientSearcher` offers exactly that
(what `autotts.discovery.search` expects of an EvoTorch searcher), so the
Lightning loop, checkpoints, logging, validation and export are the ES ones.
A generation is `steps` Adam steps on the generation's batch (episodes and β
values drawn as for ES). The searcher pickles its weights and Adam state, so a
resumed run makes the same steps bit for bit (the never-stop runs have no
randomness).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from autotts.controllers.policy import PolicyShape, unflatten
from autotts.discovery.objective import Objective
from autotts.discovery.relaxed import RelaxedConfig, RelaxedObjective
from autotts.discovery.search import Evaluator, SearchConfig
from autotts.errors import AutottsError

GRADIENT_ALGORITHMS = ("relaxed",)


def relaxed_config(cfg: SearchConfig) -> RelaxedConfig:
    """`search.relaxed` as a checked `RelaxedConfig` (one-line errors for unknown keys and bad values)."""
    from autotts.discovery.settings import build
    return build(RelaxedConfig, dict(cfg.relaxed), "search.relaxed").check()


def stop_head_mask(shape: PolicyShape) -> Tensor:
    """[D] bool: the stop head's own weights (its two logits' input weights, biases and β terms)."""
    mask = torch.zeros(shape.size, dtype=torch.bool)
    parts = unflatten(mask, shape)
    parts["w_ep"][:, :2] = True
    parts["b_ep"][:2] = True
    parts["g_ep"][:2] = True
    return mask


class _Problem:
    """Where `autotts.discovery.search.evaluator_of` finds the objective callable (as in EvoTorch)."""

    def __init__(self, evaluator: Evaluator):
        self._objective_func = evaluator


class GradientSearcher:
    """Adam ascent of the relaxed fitness from `center`; only the masked weights move."""

    def __init__(self, cfg: RelaxedConfig, center: Tensor, mask: Tensor | None = None,
                 device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.problem = _Problem(Evaluator())
        self.weights = torch.nn.Parameter(center.detach().float().clone().to(device))
        self.mask = (torch.ones_like(self.weights, dtype=torch.bool) if mask is None else mask.bool()).to(device)
        self.optimizer = torch.optim.Adam([self.weights], lr=cfg.lr)
        self.steps = 0
        self.last_grad_norm = math.nan

    @property
    def status(self) -> dict[str, Tensor]:
        return {"center": self.weights.detach()}

    def step(self) -> None:
        """`cfg.steps` Adam steps on the bound batch (gradient ascent on the relaxed fitness)."""
        evaluator = self.problem._objective_func
        for _ in range(self.cfg.steps):
            self.optimizer.zero_grad()
            fitness = evaluator(self.weights[None])
            (-fitness.sum()).backward()
            grad = self.weights.grad
            assert grad is not None
            grad.mul_(self.mask)
            self.last_grad_norm = float(grad.norm())
            if self.cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_([self.weights], self.cfg.clip)
            self.optimizer.step()
            self.steps += 1

    def __getstate__(self) -> dict:
        return {"cfg": self.cfg, "weights": self.weights.detach().cpu(), "mask": self.mask.cpu(),
                "optimizer": self.optimizer.state_dict(), "steps": self.steps, "device": str(self.weights.device)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["cfg"], state["weights"], state["mask"], state["device"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = state["steps"]


def make_gradient_searcher(cfg: SearchConfig, center: Tensor, shape: PolicyShape,
                           device: str | torch.device = "cpu") -> GradientSearcher:
    """The searcher of `search.algorithm=relaxed`."""
    if cfg.algorithm not in GRADIENT_ALGORITHMS:
        raise AutottsError(f"search.algorithm={cfg.algorithm!r}: not a gradient search")
    relaxed = relaxed_config(cfg)
    mask = stop_head_mask(shape) if relaxed.params == "stop" else None
    return GradientSearcher(relaxed, center, mask, device)


def make_objective(settings: Any, stores: list) -> Objective:
    """The search objective of `settings`: the relaxed one for gradient searches, else the ES one."""
    s = settings
    if s.search.algorithm in GRADIENT_ALGORITHMS:
        return RelaxedObjective(stores, s.objective, s.shape, s.spec, s.guards, relaxed_config(s.search))
    return Objective(stores, s.objective, s.shape, s.spec, s.guards, s.step_mode)
