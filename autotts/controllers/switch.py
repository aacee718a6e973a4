"""The teacher switch: the learned policy where it beat its teacher on validation, the teacher elsewhere.

Issue 11's export is judged against CMC at CMC(β)'s tokens, β = 0 … 1. Where the
search found no gain at some β (the low and high ends, docs/discovery_diagnosis.md),
a user asking for β is better served by CMC(β) itself than by a policy that is below
it there. A `BetaMap` says, on a β grid, which program runs (``policy`` or ``cmc``)
and at which β of its own (`inner`): CMC at its own β; the policy from the least β
that spends CMC(β)'s tokens up to its β = 1. Between two grid
points of one program the inner β is interpolated; between points of different
programs the nearer point's program and inner β are used. `autotts.discovery.teacher_map`
chooses the map at export; the manifest records it.

Both programs run on the whole batch every round (their memories must stay aligned
with the rollout's rows) and each episode takes its own program's action.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from autotts.env.fastops import any_true
from autotts.env.state import Action, Observation
from autotts.errors import AutottsError

PROGRAMS = ("policy", "cmc")
DEFAULT_BETA = 0.5


@dataclass(frozen=True)
class BetaMap:
    """User β on a grid -> (program, that program's β); see the module docstring."""

    betas: tuple[float, ...]
    programs: tuple[str, ...]
    inner: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.betas)
        if n < 2 or len(self.programs) != n or len(self.inner) != n:
            raise AutottsError(f"beta_map: {n} betas, {len(self.programs)} programs, {len(self.inner)} inner β "
                               "(expected as many of each, at least 2)")
        if list(self.betas) != sorted(set(self.betas)) or self.betas[0] != 0 or self.betas[-1] != 1:
            raise AutottsError(f"beta_map.betas {list(self.betas)}: expected increasing values from 0 to 1")
        if any(p not in PROGRAMS for p in self.programs):
            raise AutottsError(f"beta_map.programs {list(self.programs)}: expected each of {', '.join(PROGRAMS)}")
        if any(not 0 <= b <= 1 for b in self.inner):
            raise AutottsError(f"beta_map.inner {list(self.inner)}: expected values in [0, 1]")

    @staticmethod
    def from_record(record: dict, source: str = "manifest") -> "BetaMap":
        try:
            return BetaMap(tuple(float(b) for b in record["betas"]), tuple(str(p) for p in record["programs"]),
                           tuple(float(b) for b in record["inner"]))
        except (KeyError, TypeError, ValueError) as err:
            raise AutottsError(f"{source}: beta_map {record!r}: expected {{betas, programs, inner}} lists "
                               f"({type(err).__name__}: {err})") from None

    def record(self) -> dict:
        return {"teacher": "cmc", "betas": list(self.betas), "programs": list(self.programs), "inner": list(self.inner)}

    @property
    def uses_teacher(self) -> bool:
        return "cmc" in self.programs

    def resolve(self, beta: Tensor) -> tuple[Tensor, Tensor]:
        """([E] bool: runs the teacher, [E] float64: the running program's β) for user β [E]."""
        b = beta.double().clamp(0, 1).cpu()
        grid = torch.tensor(self.betas, dtype=torch.float64)
        teacher = torch.tensor([p == "cmc" for p in self.programs])
        inner = torch.tensor(self.inner, dtype=torch.float64)
        k = (torch.searchsorted(grid, b, right=True) - 1).clamp(0, len(grid) - 2)
        w = (b - grid[k]) / (grid[k + 1] - grid[k])
        same = teacher[k] == teacher[k + 1]
        left = w < 0.5
        on_teacher = torch.where(same | left, teacher[k], teacher[k + 1])
        nearest = torch.where(left, inner[k], inner[k + 1])
        value = torch.where(same, inner[k] + w * (inner[k + 1] - inner[k]), nearest)
        return on_teacher.to(beta.device), value.to(beta.device)


class TeacherSwitch:
    """A `Controller`: `policy` (any controller taking a per-episode ``beta`` context) or CMC, per episode.

    Attributes the policy has and this class does not (an export's ``manifest``, ``delta``, ...) are the policy's.
    """

    def __init__(self, policy: Any, beta_map: BetaMap, beta: float = DEFAULT_BETA):
        from autotts.controllers.baselines import make_baseline

        self.policy, self.beta_map, self.beta = policy, beta_map, float(beta)
        self.teacher = make_baseline("cmc", torch.tensor([0.0, 1.0], dtype=torch.float64))  # widest schedule
        self.slots = max(policy.slots, self.teacher.slots)
        self.reasons = tuple(policy.reasons) + tuple(f"cmc:{r}" for r in self.teacher.reasons)

    def __getattr__(self, name: str) -> Any:
        if name == "policy":  # not set yet (copying): no recursion
            raise AttributeError(name)
        return getattr(self.policy, name)

    def _policy_view(self, obs: Observation) -> Observation:
        """`obs` as the policy alone would see it: branches it may open capped by its own slots.

        The switch has CMC's 64 slots; the policy's `can_open` feature reads ``n_avail``, which the
        env caps at the controller's slots, so without this the policy would act differently near its cap.
        """
        if self.policy.slots >= self.slots:
            return obs
        return replace(obs, n_avail=obs.n_avail.clamp(max=self.policy.slots))

    def with_beta(self, beta: float) -> "TeacherSwitch":
        return TeacherSwitch(self.policy.with_beta(beta) if hasattr(self.policy, "with_beta") else self.policy,
                             self.beta_map, beta)

    def init(self, obs: Observation, context: dict[str, Tensor] | None = None) -> dict:
        context = dict(context or {})
        beta = context.get("beta", torch.full((obs.num_episodes,), self.beta))
        teacher, inner = self.beta_map.resolve(beta.to(obs.status.device))
        policy_mem = self.policy.init(self._policy_view(obs), {**context, "beta": inner.float()})
        teacher_mem = self.teacher.init(obs, {"cmc_beta": inner})
        return {"teacher": teacher, "policy": policy_mem, "cmc": teacher_mem}

    def act(self, obs: Observation, memory: dict) -> tuple[Action, dict]:
        teacher = memory["teacher"]
        runs_teacher, runs_policy = any_true(teacher), any_true(~teacher)
        memory = dict(memory)
        a = b = None
        if runs_policy:
            a, memory["policy"] = self.policy.act(self._policy_view(obs), memory["policy"])
        if runs_teacher:
            b, memory["cmc"] = self.teacher.act(obs, memory["cmc"])
        if a is None:
            return _offset(b, len(self.policy.reasons)), memory
        if b is None:
            return a, memory
        return merge_actions(teacher, a, _offset(b, len(self.policy.reasons)), obs), memory


def _offset(action: Action, by: int) -> Action:
    """`action` with its reason codes moved past the policy's (the switch's `reasons` lists both)."""
    if not action.why:
        return action
    why = {k: torch.where(v >= 0, v + by, v) for k, v in action.why.items()}
    return Action(action.stop, action.answer, action.prune, action.advance, action.open, action.full_read,
                  action.priority, why)


def merge_actions(rows: Tensor, a: Action, b: Action, obs: Observation) -> Action:
    """Each episode's action: `b`'s where `rows` [E], else `a`'s (a field None in one is its no-op)."""
    e, slots, dev = obs.num_episodes, obs.slots, obs.status.device

    def pick(x: Tensor | None, y: Tensor | None, fill: Tensor) -> Tensor | None:
        if x is None and y is None:
            return None
        x = fill if x is None else x
        y = fill if y is None else y
        mask = rows if x.dim() == 1 else rows[:, None]
        return torch.where(mask, y, x)

    zeros_eb = torch.zeros((e, slots), dtype=torch.int32, device=dev)
    zeros_e = torch.zeros(e, dtype=torch.long, device=dev)
    slot_order = torch.arange(slots, dtype=torch.int32, device=dev).expand(e, slots)
    why = None
    if a.why or b.why:
        why = {}
        for key in set(a.why or {}) | set(b.why or {}):
            x, y = (a.why or {}).get(key), (b.why or {}).get(key)
            shape = (e, slots) if key == "branch" else (e,)
            dtype = (x if x is not None else y).dtype
            why[key] = pick(x, y, torch.full(shape, -1, dtype=dtype, device=dev))
    return Action(stop=torch.where(rows, b.stop, a.stop), answer=torch.where(rows, b.answer, a.answer),
                  prune=pick(a.prune, b.prune, zeros_eb.bool()), advance=pick(a.advance, b.advance, zeros_eb),
                  open=pick(a.open, b.open, zeros_e), full_read=pick(a.full_read, b.full_read, zeros_e.bool()),
                  priority=pick(a.priority, b.priority, slot_order), why=why)


def switch_of(policy: Any, record: dict | None, source: str = "manifest") -> Any:
    """`policy` wrapped in a `TeacherSwitch` when `record` (a manifest's ``beta_map``) uses the teacher."""
    if not record:
        return policy
    beta_map = BetaMap.from_record(record, source)
    return TeacherSwitch(policy, beta_map, getattr(policy, "beta", DEFAULT_BETA)) if beta_map.uses_teacher else policy


__all__ = ["BetaMap", "TeacherSwitch", "merge_actions", "switch_of"]
