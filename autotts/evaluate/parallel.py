"""Evaluate settings in worker processes: the sweeps' only parallelism (one torch thread per process).

The env's ops are small and memory-bound, so torch's intra-op threads only
contend with each other; separate processes, one thread each, do scale with
cores. Workers are forked after the store and episodes are loaded, so they
share them without copying, and results come back in task order.
"""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable, Iterable, Iterator, Sequence

_TASK: Callable[[Any], Any] | None = None  # the function the forked workers run (inherited, never pickled)


def _run(item: Any) -> Any:
    assert _TASK is not None
    return _TASK(item)


def ordered_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 1) -> Iterator[Any]:
    """`map(fn, items)`, in order, over `workers` forked processes (1 = in this process)."""
    global _TASK
    if workers <= 1 or len(items) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(fn, items)
        return
    _TASK = fn
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(items)), initializer=_one_thread) as pool:
            yield from pool.imap(_run, items)
    finally:
        _TASK = None


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def chunks(values: Sequence[float], size: int) -> Iterable[list[float]]:
    for start in range(0, len(values), max(1, size)):
        yield list(values[start:start + max(1, size)])


__all__ = ["chunks", "ordered_map"]
