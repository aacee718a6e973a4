"""Scaling benchmark: one ES generation's time and peak memory on synthetic stores.

    python scripts/bench_scale.py [--only SWEEP ...] [--max-gb 4] [--device cpu] [--generations 3] [--syncs]
                                  [--step-mode auto|sparse|dense] [--syncs-only]

One factor at a time around a base case -- population 16, 3 β values, 32
episodes per store, one store of 30 questions x 64 branches (the public
stores' width) -- the sweeps vary the population, the episodes per store, the
number of stores, the branches per question (to 1,024) and the questions per
store (to 10,000). Each row is a real generation (sample the batch, score the
population in one rollout, PGPE step), the best of `--generations` in wall
clock and in this process's CPU time (the VM is shared: CPU time is the cost;
on a GPU read the wall clock), with the rollout rows (population x β x
episodes), the env rounds, the rows x rounds actually stepped (finished
episodes leave the batch, so this is the work done), the peak
memory above the generation's starting RSS (Linux VmHWM, reset per case), the
env state's size for those rows and the stores' size. Episode batches are
uniform (not stratified) so the episode count is what the row says. A case
whose stores would not fit in `--max-gb` is skipped, with the estimate.

`--syncs` lists the host syncs of the base case's generation by call site,
per round (what a GPU would wait for; counted on any device); `--syncs-only`
skips the timing sweeps. `--step-mode` picks the env step of every rollout
(auto: dense on CUDA, sparse on CPU; dense makes one sync per round).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROBES = 80  # probes per branch at Δ = 500 (the synthetic default, as in the public stores)


@dataclass(frozen=True)
class Case:
    sweep: str
    popsize: int = 16
    betas: int = 3
    episodes: int = 32      # per store and β
    stores: int = 1
    questions: int = 30
    branches: int = 64

    @property
    def rows(self) -> int:
        return self.popsize * self.betas * self.episodes * self.stores

    def store_gb(self) -> float:
        """Store tensors: probes in the store and in the union, the union's probe-run table (int64) and its
        packed probe lookup (int32)."""
        return self.stores * self.questions * self.branches * PROBES * (3 * 8 + 4) / 1e9


BASE = Case("base")
SWEEPS = {
    "population": [replace(BASE, sweep="population", popsize=p) for p in (8, 32, 64)],
    "episodes": [replace(BASE, sweep="episodes", episodes=e) for e in (16, 64, 128)],
    "stores": [replace(BASE, sweep="stores", stores=s) for s in (2, 4)],
    "branches": [replace(BASE, sweep="branches", branches=n) for n in (256, 1024)],
    "questions": [replace(BASE, sweep="questions", questions=q) for q in (1_000, 10_000)]
                 + [replace(BASE, sweep="questions", questions=10_000, branches=1024)],
}


@dataclass
class Row:
    case: Case
    rounds: int = 0
    row_rounds: int = 0     # batch rows stepped, summed over rounds (what the env and policy work on)
    seconds: float = 0.0    # wall clock
    cpu_seconds: float = 0.0  # this process's CPU time: what the generation costs, whoever else runs
    peak_mb: float = 0.0
    state_mb: float = 0.0
    store_mb: float = 0.0
    skipped: str = ""


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    _cheap_sc64()
    _quiet_evotorch()
    cases = [BASE] + [c for name, group in SWEEPS.items() if not args.only or name in args.only for c in group]
    if not args.syncs_only:
        print(f"one ES generation (PGPE, best of {args.generations}) on {args.device}, {args.threads} thread(s), "
              f"step mode {args.step_mode}; µs/row·rd = CPU time per batch row per env round")
        print(_header())
        rows = []
        for case in cases:
            row = _skip(case, args.max_gb) or _in_child(args.device, measure, case, args.device, args.generations,
                                                        args.step_mode)
            rows.append(row)
            print(_line(row), flush=True)
        print_fit([r for r in rows if not r.skipped])
    if args.syncs or args.syncs_only:
        print_syncs(BASE, args.device, args.step_mode)


def measure(case: Case, device: str, generations: int, step_mode: str = "auto") -> Row:
    """Time and peak memory of `generations` ES generations of `case` (stores and objective built first)."""
    from autotts.controllers.policy import PolicyShape, initial_weights
    from autotts.discovery.module import generation_generator
    from autotts.discovery.objective import Objective, ObjectiveConfig
    from autotts.discovery.search import SearchConfig, evaluator_of, make_searcher

    stores = _stores(case)
    cfg = ObjectiveConfig(episodes_per_store=case.episodes, betas=case.betas, stratified=False)
    objective = Objective(stores, cfg, step_mode=step_mode).to(device)
    _ = objective.union.probe_run, objective.union.probe_lookup  # built once per store on first use, not per generation
    searcher = make_searcher(SearchConfig(popsize=case.popsize), initial_weights(PolicyShape()), 0, device)
    row = Row(case, store_mb=sum(_store_bytes(s) for s in stores + [objective.union]) / 1e6,
              state_mb=_state_bytes(objective, case) / 1e6)
    start_rss = _reset_peak()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    wall, cpu = [], []
    with _counting_rounds() as rounds:
        for g in range(generations):
            start, start_cpu = time.perf_counter(), time.process_time()
            evaluator_of(searcher).bind(objective, objective.sample(generation_generator(0, g)))
            searcher.step()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    row.seconds, row.cpu_seconds, row.rounds = min(wall), min(cpu), rounds[0] // generations  # the VM is shared
    row.row_rounds = rounds[1] // generations
    row.peak_mb = (_status_kb("VmHWM") - start_rss) / 1e3
    if device.startswith("cuda"):  # the rollout's memory is on the device
        row.peak_mb = torch.cuda.max_memory_allocated() / 1e6
    return row


def print_fit(rows: list[Row]) -> None:
    """Least-squares lines through the measured cases: CPU seconds against the rows x rounds stepped, peak memory
    against the rollout rows (the first rounds hold every row)."""

    def line(x: list[float], y: list[float]) -> tuple[float, float]:
        design = torch.tensor([[1.0, v] for v in x], dtype=torch.float64)
        a, b = torch.linalg.lstsq(design, torch.tensor(y, dtype=torch.float64)[:, None]).solution[:, 0].tolist()
        return a, b

    a, b = line([r.row_rounds for r in rows], [r.cpu_seconds for r in rows])
    print(f"\nCPU time per generation ~ {a:.2f} s + {1e6 * b:.1f} µs per row·round ({len(rows)} cases, "
          f"{a / rows[0].rounds * 1e3:.1f} ms fixed per round)")
    a, b = line([r.case.rows for r in rows], [r.peak_mb for r in rows])
    print(f"peak memory per generation ~ {a:.0f} MB + {1e3 * b:.1f} KB per rollout row")


def print_syncs(case: Case, device: str, step_mode: str = "auto") -> None:
    """Host syncs of one generation of `case`, by call site, per env round."""
    from autotts.controllers.policy import PolicyShape, initial_weights
    from autotts.discovery.objective import Objective, ObjectiveConfig
    from autotts.scale.syncs import HostSyncs

    cfg = ObjectiveConfig(episodes_per_store=case.episodes, betas=case.betas, stratified=False)
    objective = Objective(_stores(case), cfg, step_mode=step_mode).to(device)
    g = torch.Generator().manual_seed(0)
    weights = initial_weights(PolicyShape()) + 0.1 * torch.randn(case.popsize, PolicyShape().size, generator=g)
    batch = objective.sample(torch.Generator().manual_seed(0))
    with _counting_rounds() as rounds, HostSyncs() as syncs:
        objective(weights.to(device), batch)
    from autotts.env.dense import resolve_step_mode
    mode = resolve_step_mode(step_mode, device)
    print(f"\nhost syncs of one generation ({case.rows} rows, {rounds[0]} rounds, {mode} step): {syncs.total} "
          f"= {syncs.total / rounds[0]:.2f} per round")
    print(f"{'per round':>9}  {'op':<12} site")
    for (op, path, line, fn), n in sorted(syncs.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n / rounds[0]:>9.2f}  {op:<12} {path}:{line} ({fn})")


def _in_child(device: str, fn, *args):  # type: ignore[no-untyped-def]
    """`fn(*args)` in a child process: each case starts from the parent's small heap, so its peak is its own
    (memory a previous case freed would otherwise be reused without showing up). Forked on CPU; spawned
    for CUDA, which cannot be used in a forked child."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn" if device.startswith("cuda") else "fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_send, args=(child, fn, args))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def _send(conn, fn, args) -> None:  # type: ignore[no-untyped-def]
    conn.send(fn(*args))


def _stores(case: Case) -> list:
    from autotts.store.synthetic import synthetic_store
    return [synthetic_store(questions=case.questions, branches=case.branches, seed=1 + i) for i in range(case.stores)]


def _skip(case: Case, max_gb: float) -> Row | None:
    need = case.store_gb()
    if need <= max_gb:
        return None
    return Row(case, skipped=f"skipped: stores need ~{need:.1f} GB "
                             "(probes x2 + probe runs, int64; packed lookup, int32) "
                             f"> --max-gb {max_gb:g}")


def _cheap_sc64() -> None:
    """The SC@64 token unit on 1 reference seed instead of 100: it only rescales fitness, and 100 seeds of a
    10,000-question store would take longer than the benchmark."""
    from autotts.discovery import objective

    objective.sc64_tokens = functools.partial(objective.sc64_tokens, seeds=1)


def _quiet_evotorch() -> None:
    import logging

    import evotorch  # noqa: F401 -- it sets its logger's level on import; ours comes after
    logging.getLogger("evotorch").setLevel(logging.ERROR)


@contextmanager
def _counting_rounds() -> Iterator[list[int]]:
    """Count env steps taken by rollouts inside the block, and the batch rows they stepped (rows x rounds)."""
    module = sys.modules["autotts.env.rollout"]
    steps, count = {name: getattr(module, name) for name in ("step", "dense_step")}, [0, 0]

    def counting(step):  # type: ignore[no-untyped-def]
        def counted(store, state, *args, **kwargs):  # type: ignore[no-untyped-def]
            count[0] += 1
            count[1] += state.obs.num_episodes  # the batch shrinks as finished episodes are dropped
            return step(store, state, *args, **kwargs)
        return counted

    for name, step in steps.items():
        setattr(module, name, counting(step))
    try:
        yield count
    finally:
        for name, step in steps.items():
            setattr(module, name, step)


def _state_bytes(objective, case: Case) -> int:
    """Bytes of the env state (observation, hidden oracle, vote pool) for the generation's rows."""
    from autotts.env.batched import reset
    from autotts.env.episodes import concat_episodes

    batch = objective.sample(torch.Generator().manual_seed(0))
    state = reset(objective.union, concat_episodes([batch.episodes] * (case.popsize * case.betas)),
                  objective.spec.slots)
    return sum(_tensor_bytes(getattr(state, f.name)) for f in fields(state))


def _tensor_bytes(obj) -> int:  # type: ignore[no-untyped-def]
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    return sum(_tensor_bytes(getattr(obj, f.name)) for f in fields(obj))


def _store_bytes(store) -> int:  # type: ignore[no-untyped-def]
    from autotts.store.replay_store import TENSOR_FIELDS
    run, lookup = store.__dict__.get("probe_run"), store.__dict__.get("probe_lookup")  # cached once built
    return (sum(_tensor_bytes(getattr(store, k)) for k in TENSOR_FIELDS)
            + (_tensor_bytes(run) if run is not None else 0)
            + (_tensor_bytes(lookup[0]) if lookup is not None else 0))


def _reset_peak() -> int:
    """Reset this process's peak RSS to the current RSS (Linux clear_refs 5); returns that RSS in kB."""
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back what building the stores freed, so reuse shows up
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        sys.exit("bench_scale.py: cannot reset the peak RSS (/proc/self/clear_refs): Linux only")
    return _status_kb("VmRSS")


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _header() -> str:
    return (f"{'sweep':<10} {'pop':>4} {'β':>2} {'ep/st':>5} {'st':>2} {'questions':>9} {'branches':>8} {'rows':>6} "
            f"{'rounds':>6} {'row·rds':>8} {'wall s':>6} {'CPU s':>6} {'µs/row·rd':>9} {'peak MB':>7} "
            f"{'state MB':>8} {'store MB':>8}")


def _line(r: Row) -> str:
    c = r.case
    head = (f"{c.sweep:<10} {c.popsize:>4} {c.betas:>2} {c.episodes:>5} {c.stores:>2} {c.questions:>9,} "
            f"{c.branches:>8,} {c.rows:>6,}")
    if r.skipped:
        return f"{head}  {r.skipped}"
    per = 1e6 * r.cpu_seconds / max(r.row_rounds, 1)
    return (f"{head} {r.rounds:>6} {r.row_rounds:>8,} {r.seconds:>6.2f} {r.cpu_seconds:>6.2f} {per:>9.1f} "
            f"{r.peak_mb:>7.0f} {r.state_mb:>8.1f} {r.store_mb:>8.0f}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", choices=list(SWEEPS), help="sweeps to run after the base case (default all)")
    p.add_argument("--max-gb", type=float, default=4.0, help="skip cases whose stores need more (default 4)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when present, like trainer.accelerator=auto)")
    p.add_argument("--generations", type=int, default=3, help="generations per case, best time kept (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--syncs", action="store_true", help="also list the base case's host syncs per round")
    p.add_argument("--syncs-only", action="store_true", help="only list the base case's host syncs (no timings)")
    p.add_argument("--step-mode", choices=("auto", "sparse", "dense"), default="auto",
                   help="env step of the rollouts (default auto: dense on CUDA, sparse on CPU)")
    return p


if __name__ == "__main__":
    main()
