"""Count the host syncs a piece of code would make on a GPU, on any device (CPU included).

On CUDA, reading a value on the host (``bool(t)``, ``int(t)``, ``.item()``,
``.tolist()``) or making a tensor whose size depends on the data (``nonzero``,
boolean-mask indexing, ``bincount``, ``unique``) waits for every queued kernel.
Those calls are the same whatever the device, so a `torch` function mode
that sees every call can list them -- by call site -- on a machine with no
GPU, and a test can pin their number per round.
"""

from __future__ import annotations

import traceback
from collections import Counter
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

VALUE_READS = {"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy", "cpu"}
DATA_SHAPED = {"nonzero", "argwhere", "bincount", "unique", "unique_consecutive", "masked_select"}

Site = tuple[str, str, int, str]  # (op, file relative to the package, line, function)


class HostSyncs(TorchFunctionMode):
    """Counts sync-making torch calls made from files under `package`, keyed by `Site`."""

    def __init__(self, package: str = "autotts") -> None:
        super().__init__()
        self.package = package
        self.counts: Counter[Site] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if _syncs(name, args, kwargs):
            site = self._site(name)
            if site is not None:
                self.counts[site] += 1
        return func(*args, **kwargs)

    def _site(self, name: str) -> Site | None:
        marker = f"/{self.package}/"
        for frame in reversed(traceback.extract_stack()):
            if marker in frame.filename and not frame.filename.endswith("scale/syncs.py"):
                return name, frame.filename.split(marker, 1)[1], frame.lineno or 0, frame.name
        return None

    def by_file(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, path, _, _), n in self.counts.items():
            out[path] += n
        return out

    def count(self, op: str | None = None, path: str | None = None) -> int:
        """Syncs made by `op` (any op if None) from `path` (any file if None)."""
        return sum(n for (o, p, _, _), n in self.counts.items() if op in (None, o) and path in (None, p))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _syncs(name: str, args: tuple, kwargs: dict) -> bool:
    if name in VALUE_READS or name in DATA_SHAPED:
        return True
    if name in ("__getitem__", "__setitem__") and len(args) > 1:
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)
    if name == "repeat_interleave":  # tensor repeats: the output size is their sum
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        return isinstance(repeats, torch.Tensor) and "output_size" not in kwargs
    return False
