"""Export a trained policy (TorchScript ``controller.pt`` + ``manifest.json``) and load it back as a controller.

The TorchScript module holds only the network: ``forward(pool_x, branch_x, beta)``
gives the Beta-head logits and ``vote(completed_x, live_x, finished)`` the vote
weights, so any process with torch alone can run it (``torch.jit.load``). What
turns those numbers into actions -- the action spec, the guards, the features
-- is named in the manifest; `load_controller` rebuilds it from this build's
`PolicyProgram` and refuses a manifest whose features differ.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from autotts.controllers.learned import ActionSpec, GuardSpec, PolicyProgram
from autotts.controllers.policy import BetaPolicy, PolicyShape, heads, vote_weights
from autotts.controllers.rules import RuleEngine
from autotts.env.state import Observation
from autotts.errors import AutottsError
from autotts.artifact.manifest import (check_manifest, check_runnable, feature_groups, feature_names, read_manifest,
                                      write_manifest)

DEFAULT_BETA = 0.5


class ExportedPolicy(nn.Module):
    """What ``controller.pt`` traces: one policy's head logits (`forward`) and vote weights (`vote`)."""

    def __init__(self, policy: BetaPolicy):
        super().__init__()
        self.policy = policy

    def forward(self, pool_x: Tensor, branch_x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        """(episode logits [E, 3, 2], branch logits [E, B, 3, 2])."""
        return heads(self.policy.weights(), pool_x, branch_x, beta)

    def vote(self, completed_x: Tensor, live_x: Tensor, finished: Tensor) -> Tensor:
        """[E, B] vote weight of each branch's answer."""
        return vote_weights(self.policy.weights(), completed_x, live_x, finished)


def trace_policy(weights: Tensor, shape: PolicyShape) -> torch.jit.ScriptModule:
    """TorchScript of `ExportedPolicy` (traced; shapes stay dynamic in episodes and branches)."""
    module = ExportedPolicy(BetaPolicy(shape, weights.detach().cpu())).eval()
    e, b = 3, 5
    examples = {
        "forward": (torch.zeros(e, shape.n_pool), torch.zeros(e, b, shape.n_branch), torch.zeros(e)),
        "vote": (torch.zeros(e, b, shape.n_completed), torch.zeros(e, b, shape.n_live),
                 torch.zeros(e, b, dtype=torch.bool)),
    }
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; the format is stable
        return torch.jit.trace_module(module, examples)


def export_controller(weights: Tensor, shape: PolicyShape, directory: str | Path, manifest: dict) -> Path:
    """Write ``controller.pt`` and ``manifest.json`` into `directory`; returns it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    traced = trace_policy(weights, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced.save(str(out / "controller.pt"))
    write_manifest(out, manifest)
    return out


class ExportedController:
    """An exported policy as a `Controller` at a fixed β (`with_beta`), plus what eval/explain need.

    A rollout's context may still pass per-episode ``beta`` (the online runtime does).
    """

    def __init__(self, module: Any, manifest: dict, beta: float = DEFAULT_BETA):
        self.module, self.manifest, self.beta = module, manifest, float(beta)
        actions = manifest["actions"]
        self.spec = ActionSpec(slots=int(actions["slots"]), max_open=int(actions["max_open"]),
                               burst=int(actions["burst"]))
        self.guards = tuple(GuardSpec(g["name"], dict(g.get("params", {}))) for g in manifest["guards"])
        self.delta = int(manifest["delta"])
        self.default_betas = tuple(float(b) for b in manifest.get("default_betas", (0.0, 0.5, 1.0)))
        program = PolicyProgram(self._heads, self._vote, self.spec)
        self.engine = RuleEngine(program, [g.build() for g in self.guards])
        self.slots, self.reasons = self.engine.slots, self.engine.reasons

    def with_beta(self, beta: float) -> "ExportedController":
        if not 0.0 <= float(beta) <= 1.0:
            raise AutottsError(f"beta={beta}: expected a value in [0, 1]")
        return ExportedController(self.module, self.manifest, beta)

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> Any:
        deltas = obs.delta.unique().tolist()
        if any(d != self.delta for d in deltas):
            raise AutottsError(f"controller trained with delta={self.delta} tokens, but the store has "
                               f"delta={','.join(map(str, deltas))}")
        self.module.to(obs.status.device)
        context = dict(context or {})
        context.setdefault("beta", torch.full((obs.num_episodes,), self.beta))
        return self.engine.init(obs, context)

    def act(self, obs: Observation, memory: Any) -> tuple[Any, Any]:
        return self.engine.act(obs, memory)

    def _heads(self, pool_x: Tensor, branch_x: Tensor, beta: Tensor, member: Tensor | None) -> tuple[Tensor, Tensor]:
        return self.module(pool_x, branch_x, beta)

    def _vote(self, completed_x: Tensor, live_x: Tensor, finished: Tensor, member: Tensor | None) -> Tensor:
        return self.module.vote(completed_x, live_x, finished)


def load_jit(path: str | Path) -> Any:
    """The TorchScript module of ``controller.pt`` (one-line error if it is not one)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # truncated/foreign files raise RuntimeError, ValueError, zip and pickle errors
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise AutottsError(f"{path}: not a TorchScript controller ({first})") from None


def check_module(module: Any, path: str | Path) -> Any:
    """`module` after one call of `forward` and `vote` on zeros of this build's feature sizes.

    A controller file from another build (other features, other heads) fails here in one line
    rather than inside a rollout.
    """
    groups = {k: len(v) for k, v in feature_groups().items()}
    e, b = 2, 3
    try:
        with torch.no_grad():
            ep, br = module(torch.zeros(e, groups["pool"]), torch.zeros(e, b, groups["branch"]), torch.zeros(e))
            vote = module.vote(torch.zeros(e, b, groups["completed"]), torch.zeros(e, b, groups["live"]),
                               torch.zeros(e, b, dtype=torch.bool))
    except Exception as err:  # a foreign module fails in its own code, with any error type
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise AutottsError(f"{path}: does not run on this build's features ({first})") from None
    shapes = [tuple(getattr(x, "shape", ())) for x in (ep, br, vote)]
    if shapes != [(e, 3, 2), (e, b, 3, 2), (e, b)]:
        raise AutottsError(f"{path}: outputs of shapes {shapes}, expected [(E, 3, 2), (E, B, 3, 2), (E, B)]")
    return module


def load_controller(path: str | Path, beta: float | None = None, delta: int | None = None) -> ExportedController:
    """The controller exported in directory `path` (``controller.pt`` + ``manifest.json``), at β = `beta`.

    With `delta` (the run's interval), a manifest trained for another Δ is refused.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise AutottsError(f"{path}: not a controller name or an export directory (controller.pt + manifest.json)")
    manifest = read_manifest(directory)
    source = str(directory / "manifest.json")
    check_manifest(manifest, delta, feature_names(), source)
    check_runnable(manifest, source)
    module = check_module(load_jit(directory / "controller.pt"), directory / "controller.pt")
    ctrl = ExportedController(module, manifest)
    return ctrl if beta is None else ctrl.with_beta(beta)


def guard_records(guards: Sequence[GuardSpec]) -> list[dict]:
    """Guards as manifest entries (name + parameters, in the order they run)."""
    return [{"name": g.name, "params": dict(g.params)} for g in guards]
