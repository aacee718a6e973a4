"""Export a trained policy (``controller.pt2``, ``controller.pt`` + ``manifest.json``) and load it back.

Both files hold only the network, so any process with torch alone can run them:

* ``controller.pt2`` (`torch.export`, loaded with ``torch.export.load``): one program
  ``(pool_x, branch_x, beta, completed_x, live_x, finished) -> (episode logits, branch
  logits, vote weights)``, dynamic in episodes, branches and voting branches;
* ``controller.pt`` (TorchScript, ``torch.jit.load``; kept because users run it):
  ``forward(pool_x, branch_x, beta)`` and ``vote(completed_x, live_x, finished)``.

What turns those numbers into actions -- the action spec, the guards, the
features -- is named in the manifest; `load_controller` rebuilds it from this
build's `PolicyProgram` (on the ``.pt2`` when the manifest names one) and
refuses a manifest whose features differ.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from autotts.artifact.manifest import (TORCH_EXPORT, TORCHSCRIPT, check_manifest, check_runnable, controller_files,
                                       feature_groups, feature_names, read_manifest, write_manifest)
from autotts.controllers.learned import ActionSpec, GuardSpec, PolicyProgram
from autotts.controllers.policy import BetaPolicy, PolicyShape, heads, vote_weights
from autotts.controllers.rules import RuleEngine
from autotts.controllers.switch import switch_of
from autotts.env.state import Observation
from autotts.errors import AutottsError

DEFAULT_BETA = 0.5
PROGRAM_INPUTS = ("pool_x", "branch_x", "beta", "completed_x", "live_x", "finished")
# torch 2.13 deprecates torch.jit ("`torch.jit.trace_method` is deprecated", "`torch.jit.load` is deprecated").
# We keep TorchScript on purpose (users run controller.pt; controller.pt2 is the torch.export successor), so
# exactly that warning is filtered where we trace, save and load it -- nothing else.
JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"


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


def _examples(shape: PolicyShape, e: int = 3, b: int = 5, c: int = 4) -> dict[str, tuple[Tensor, ...]]:
    """Example inputs per entry point; sizes > 1 and distinct, so no dimension is specialised."""
    return {"heads": (torch.zeros(e, shape.n_pool), torch.zeros(e, b, shape.n_branch), torch.zeros(e)),
            "vote": (torch.zeros(e, c, shape.n_completed), torch.zeros(e, c, shape.n_live),
                     torch.zeros(e, c, dtype=torch.bool))}


def trace_policy(weights: Tensor, shape: PolicyShape) -> torch.jit.ScriptModule:
    """TorchScript of `ExportedPolicy` (traced; shapes stay dynamic in episodes and branches)."""
    module = ExportedPolicy(BetaPolicy(shape, weights.detach().cpu())).eval()
    examples = _examples(shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", JIT_DEPRECATED, DeprecationWarning)
        return torch.jit.trace_module(module, {"forward": examples["heads"], "vote": examples["vote"]})


def export_program(weights: Tensor, shape: PolicyShape) -> torch.export.ExportedProgram:
    """`torch.export` of `BetaPolicy.forward`: any number of episodes, branches and voting branches (>= 1).

    `torch.export` saves one entry point per file, so heads and vote share it; a caller
    that needs only one passes one-branch zeros for the other (`ProgramPolicy` does).
    """
    from torch.export import Dim

    module = BetaPolicy(shape, weights.detach().cpu()).eval()
    examples = _examples(shape)
    episodes, branches, voters = Dim("episodes", min=1), Dim("branches", min=1), Dim("voters", min=1)
    dims = {"pool_x": {0: episodes}, "branch_x": {0: episodes, 1: branches}, "beta": {0: episodes},
            "completed_x": {0: episodes, 1: voters}, "live_x": {0: episodes, 1: voters},
            "finished": {0: episodes, 1: voters}}
    with torch.no_grad():
        return torch.export.export(module, examples["heads"] + examples["vote"], dynamic_shapes=dims)


def export_controller(weights: Tensor, shape: PolicyShape, directory: str | Path, manifest: dict) -> Path:
    """Write ``controller.pt2``, ``controller.pt`` and ``manifest.json`` (naming both) into `directory`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    torch.export.save(export_program(weights, shape), str(out / TORCH_EXPORT))
    traced = trace_policy(weights, shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", JIT_DEPRECATED, DeprecationWarning)
        traced.save(str(out / TORCHSCRIPT))
    write_manifest(out, {**manifest, "files": {"torchscript": TORCHSCRIPT, "torch_export": TORCH_EXPORT}})
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


class ProgramPolicy:
    """A loaded ``controller.pt2`` behind the TorchScript module's interface (`__call__`, `vote`, `to`)."""

    def __init__(self, program: torch.export.ExportedProgram, widths: tuple[int, int, int, int]):
        self.program, self.module, self.device = program, program.module(), torch.device("cpu")
        self.widths = widths  # feature widths of pool_x, branch_x, completed_x, live_x

    def to(self, device: torch.device | str) -> "ProgramPolicy":
        device = torch.device(device)
        if device != self.device:
            from torch.export.passes import move_to_device_pass
            self.program = move_to_device_pass(self.program, device)
            self.module, self.device = self.program.module(), device
        return self

    def __call__(self, pool_x: Tensor, branch_x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        e, dev, (_, _, fc, fl) = pool_x.shape[0], pool_x.device, self.widths
        ep, br, _ = self.module(pool_x, branch_x, beta, torch.zeros(e, 1, fc, device=dev),
                                torch.zeros(e, 1, fl, device=dev), torch.zeros(e, 1, dtype=torch.bool, device=dev))
        return ep, br

    def vote(self, completed_x: Tensor, live_x: Tensor, finished: Tensor) -> Tensor:
        e, dev, (fp, fb, _, _) = completed_x.shape[0], completed_x.device, self.widths
        return self.module(torch.zeros(e, fp, device=dev), torch.zeros(e, 1, fb, device=dev),
                           torch.zeros(e, device=dev), completed_x, live_x, finished)[2]


class _HoldRecords(logging.Filter):
    """Keeps a logger's records instead of emitting them (`load_program` decides what becomes of them)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


def load_jit(path: str | Path) -> Any:
    """The TorchScript module of ``controller.pt`` (one-line error if it is not one)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", JIT_DEPRECATED, DeprecationWarning)  # kept on purpose: see above
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


def load_program(path: str | Path) -> ProgramPolicy:
    """The `torch.export` program of ``controller.pt2`` (one-line error if it is not one of ours).

    ``torch.export.load`` logs a traceback (logger ``torch.export``) before it raises on a
    damaged file; that log is held back during the load and its cause goes into the one-line
    error instead. Records of a load that succeeds are passed on unchanged.
    """
    held = _HoldRecords()
    logger = logging.getLogger("torch.export")
    logger.addFilter(held)
    try:
        program = torch.export.load(str(path))
    except Exception as err:  # noqa: BLE001 -- any failure to deserialise means "not a controller file"
        cause = next((r.exc_info[1] for r in held.records if r.exc_info and r.exc_info[1] is not None), err)
        first = (str(cause).splitlines() or [type(cause).__name__])[0][:120]
        raise AutottsError(f"{path}: not a torch.export controller ({first})") from None
    finally:
        logger.removeFilter(held)
    for record in held.records:
        logger.handle(record)
    widths, expected = _feature_widths(program), tuple(len(v) for v in feature_groups().values())
    if widths != expected:
        raise AutottsError(f"{path}: a torch.export program with feature widths {widths}, expected inputs "
                           f"{', '.join(PROGRAM_INPUTS)} with {expected} features (pool, branch, completed, live) "
                           "-> (episode logits, branch logits, vote weights)")
    return ProgramPolicy(program, expected)


def _feature_widths(program: torch.export.ExportedProgram) -> tuple[int, ...] | None:
    """The last dimension of pool_x, branch_x, completed_x, live_x as exported; None if not our signature."""
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    names = list(program.graph_signature.user_inputs)
    if len(names) != len(PROGRAM_INPUTS) or len(program.graph_signature.user_outputs) != 3:
        return None
    try:
        return tuple(int(nodes[names[i]].meta["val"].shape[-1]) for i in (0, 1, 3, 4))
    except (KeyError, IndexError, TypeError, ValueError):  # no fixed width: not a program export_program wrote
        return None


def load_controller(path: str | Path, beta: float | None = None, delta: int | None = None,
                    file: str | None = None) -> ExportedController:
    """The controller exported in directory `path`, at β = `beta`.

    It runs ``controller.pt2`` when the manifest names one, ``controller.pt`` otherwise (an
    export from before torch.export); `file` picks one of them by name. With `delta`
    (the run's interval), a manifest trained for another Δ is refused.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise AutottsError(f"{path}: not a controller name or an export directory (controller.pt + manifest.json)")
    manifest = read_manifest(directory)
    source = str(directory / "manifest.json")
    check_manifest(manifest, delta, feature_names(), source)
    check_runnable(manifest, source)
    files = controller_files(directory, manifest)
    name = file or files.get("torch_export", TORCHSCRIPT)
    if name not in files.values():
        raise AutottsError(f"{directory}: no {name} in this export (it has {', '.join(files.values())})")
    module = load_program(directory / name) if name == TORCH_EXPORT else load_jit(directory / name)
    module = check_module(module, directory / name)
    ctrl = switch_of(ExportedController(module, manifest), manifest.get("beta_map"), source)
    return ctrl if beta is None else ctrl.with_beta(beta)


def guard_records(guards: Sequence[GuardSpec]) -> list[dict]:
    """Guards as manifest entries (name + parameters, in the order they run)."""
    return [{"name": g.name, "params": dict(g.params)} for g in guards]
