"""Episodes per second of the baselines in the batched replay env and in the per-episode reference env.

    AUTOTTS_DATA=... python scripts/bench_env.py [--store Qwen3-0.6B/aime24] [--reference-episodes 60]
                                                 [--repeats 5] [--memory bench|sweep|none]
                                                 [--sweeps | --no-sweeps] [--cold | --no-cold]
                                                 [--steps [--device cuda]]

For SC@64, ASC@64, ESC@64, Parallel-Probe@64, CMC(0.5) and CMC(1.0):

* batched: wall time of the rollout alone (`evaluate`) on the reference protocol (100 shuffles x all
  questions = 3,000 episodes on a public store), best of --repeats (and the best CPU time, which shows
  how much of the wall time other jobs took on a shared machine);
* reference: the same rule-program controller driven one episode at a time on the plain Python env of
  `autotts.env.reference` -- each round a one-row `Observation` is built from the reference episode,
  the controller acts, and `split_action` + the episode's own `step` apply the action -- on the first
  --reference-episodes episodes of the same protocol (a subset: this env is slow); the answers and
  tokens of those episodes are checked against the batched rollout;

printed as seconds, episodes per second and the ratio batched / reference. Then (--sweeps) every
baseline's default sweep run both ways, one rollout per knob and all knobs folded into one rollout
(`autotts.evaluate.folded`), on the full protocol and on 10 seeds, as seconds and the ratio
per-knob / folded; then (--cold) `autotts eval` of each setting as a fresh process (best of three;
import time counts) and `autotts report` on the store as a fresh process. With --steps, instead of all
of that: the dense masked step (`autotts.env.dense`, what CUDA runs) against the sparse one, both timed
in this run on the same episodes, with every episode's answer, tokens, rounds and opened branches
compared. Then the peak RSS
(resource.getrusage) of a fresh process that evaluates the six settings (--memory bench) or every knob
of every baseline's default sweep (--memory sweep) on all public stores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter

import torch

from autotts.controllers.baselines import BASELINES, make_baseline
from autotts.env.episodes import Episodes
from autotts.env.reference import ReferenceEpisode, ReferenceQuestion, split_action
from autotts.env.rollout import Rollout
from autotts.env.state import FINISHED, NOT_FINISHED, Observation
from autotts.evaluate.runner import evaluate, protocol_episodes
from autotts.store import discover, load_store, to_records
from autotts.store.replay_store import ReplayStore

SETTINGS = [("sc", 64, "SC@64"), ("asc", 64, "ASC@64"), ("esc", 64, "ESC@64"),
            ("parallel_probe", 64, "Parallel-Probe@64"), ("cmc", 0.5, "CMC(0.5)"), ("cmc", 1.0, "CMC(1.0)")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="Qwen3-0.6B/aime24")
    ap.add_argument("--reference-episodes", type=int, default=60, help="episodes run on the slow reference env")
    ap.add_argument("--repeats", type=int, default=5, help="batched timings: best of this many runs")
    ap.add_argument("--memory", choices=("bench", "sweep", "none"), default="bench")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sweeps", action=argparse.BooleanOptionalAction, default=True,
                    help="time every default sweep per knob and folded into one rollout")
    ap.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True,
                    help="time `autotts eval` per setting and `autotts report` as fresh processes")
    ap.add_argument("--steps", action="store_true", help="time the dense step against the sparse one instead")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="device of the --steps comparison (default: cuda when present)")
    ap.add_argument("--peak-memory-child", choices=("bench", "sweep"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_memory_child:
        return peak_memory_child(args.peak_memory_child)
    store = load_store(args.store)
    episodes = protocol_episodes(store, "reference")
    if args.steps:
        compare_steps(store.to(args.device), episodes, args.repeats, args.threads)
        if args.memory != "none":
            print(peak_memory(args.memory, args.threads))
        return 0
    n_ref = min(args.reference_episodes, len(episodes))
    print(f"store {store.name}: reference protocol, {len(episodes)} episodes batched, first {n_ref} on the "
          f"reference env (a subset: it runs one episode at a time); torch threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'setting':18s} {'batched s':>9s} {'(cpu s)':>8s} {'batched ep/s':>12s} {'reference ep/s':>14s} "
          f"{'batched/ref':>11s}  check")
    for name, knob, label in SETTINGS:
        wall, cpu, result = batched_timing(store, episodes, name, knob, args.repeats)
        ref_wall, answers, tokens = run_reference(store, episodes, name, knob, n_ref)
        same = sum(a == store.answer(int(q), int(b)) and t == int(bt) for a, t, q, b, bt in
                   zip(answers, tokens, episodes.question, result.answer, result.tokens))
        batched_eps, ref_eps = len(episodes) / wall, n_ref / ref_wall
        print(f"{label:18s} {wall:9.3f} {cpu:8.3f} {batched_eps:12.0f} {ref_eps:14.1f} {batched_eps / ref_eps:10.0f}x  "
              f"{same}/{n_ref} episodes same answer and tokens", flush=True)
    if args.sweeps:
        sweep_timings(store, args.repeats)
    if args.cold:
        cold_timings(args.store, args.threads)
    if args.memory != "none":
        print(peak_memory(args.memory, args.threads))
    return 0


def compare_steps(store: ReplayStore, episodes: Episodes, repeats: int, threads: int) -> None:
    """Sparse and dense step on every setting, timed in one run; outcomes checked episode by episode."""
    print(f"store {store.name} on {store.device}: reference protocol, {len(episodes)} episodes; torch threads "
          f"{threads}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'setting':18s} {'sparse s':>8s} {'dense s':>8s} {'sparse ep/s':>11s} {'dense ep/s':>10s} "
          f"{'dense/sparse':>12s}  check")
    for name, knob, label in SETTINGS:
        sparse_wall, _, sparse = batched_timing(store, episodes, name, knob, repeats, "sparse")
        dense_wall, _, dense = batched_timing(store, episodes, name, knob, repeats, "dense")
        same = torch.ones(len(episodes), dtype=torch.bool)
        for f in ("answer", "tokens", "rounds", "opened"):
            same &= getattr(sparse, f).cpu() == getattr(dense, f).cpu()
        n = len(episodes)
        print(f"{label:18s} {sparse_wall:8.3f} {dense_wall:8.3f} {n / sparse_wall:11.0f} {n / dense_wall:10.0f} "
              f"{sparse_wall / dense_wall:11.2f}x  {int(same.sum())}/{n} episodes same answer, tokens, rounds, "
              "opened", flush=True)


def batched_timing(store: ReplayStore, episodes: Episodes, name: str, knob: float, repeats: int,
                   step_mode: str = "auto") -> tuple[float, float, Rollout]:
    """Best wall and CPU seconds of the rollout alone over `repeats` runs (CPU time shows how much of the
    wall time other jobs on a shared machine took), and the last rollout."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        result, seconds = evaluate(store, episodes, make_baseline(name, knob), step_mode=step_mode)
        wall, cpu = min(wall, seconds), min(cpu, time.process_time() - start)
    return wall, cpu, result


# ---- sweeps: one rollout per knob against one folded rollout -----------------------------------

def sweep_timings(store: ReplayStore, repeats: int) -> None:
    """Every baseline's default sweep, per knob and folded, on the full protocol and on 10 seeds (best of runs)."""
    from autotts.evaluate.folded import fold_size, sweep_rollouts
    print(f"\n{'sweep':16s} {'episodes':>8s} {'per-knob s':>10s} {'folded s':>9s} {'per-knob/folded':>15s} "
          f"{'auto folds':>10s}")
    for seeds in (100, 10):
        episodes = protocol_episodes(store, "reference", seeds)
        for name, (_, _, knobs) in BASELINES.items():
            per = folded = float("inf")
            for _ in range(max(1, repeats // 2)):
                per = min(per, sum(w for _, _, w in sweep_rollouts(store, episodes, name, knobs, fold=1)))
                folded = min(folded, sum(w for _, _, w in sweep_rollouts(store, episodes, name, knobs,
                                                                          fold=len(knobs))))
            auto = fold_size(len(knobs), len(episodes), store.device)
            print(f"{name + f' ({len(knobs)} knobs)':16s} {len(episodes):8d} {per:10.3f} {folded:9.3f} "
                  f"{per / folded:14.2f}x {auto:>10d}", flush=True)


def cold_timings(store: str, threads: int) -> None:
    """Wall seconds of `autotts eval` per setting (best of three) and of `autotts report`, as fresh processes."""
    import tempfile
    cli = [sys.executable, "-m", "autotts.cli"]
    print(f"\ncold (fresh process, import time included) on {store}:")
    for name, knob, label in SETTINGS:
        flag = "--beta" if name == "cmc" else "--knob"
        cmd = cli + ["eval", "--store", store, "--controller", name, flag, str(knob), "--json",
                     "--threads", str(threads)]
        best = min(_wall(cmd) for _ in range(3))
        print(f"  autotts eval {label:18s} {best:6.2f} s", flush=True)
    with tempfile.TemporaryDirectory() as out:
        print("  autotts report (one store, default sweeps) "
              f"{_wall(cli + ['report', '--store', store, '--out', out]):6.2f} s", flush=True)


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


# ---- the reference env, driven by the same controllers ---------------------------------------

def run_reference(store: ReplayStore, episodes: Episodes, name: str, knob: float, count: int
                  ) -> tuple[float, list[str | None], list[int]]:
    """Run the first `count` episodes one at a time on `ReferenceEpisode`; (seconds, answers, tokens)."""
    questions = [ReferenceQuestion.from_record(r) for r in to_records(store)]
    ids = [{a: i for i, a in enumerate(words)} for words in store.vocab]
    controller = make_baseline(name, knob)
    answers, tokens = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(count):
            q = int(episodes.question[i])
            order = episodes.order[i, : min(int(episodes.n_avail[i]), controller.slots)].tolist()
            ep = drive(ReferenceEpisode(questions[q], order), controller, q, ids[q], store.vocab[q])
            answers.append(ep.result)
            tokens.append(ep.total_cost)
    return time.perf_counter() - start, answers, tokens


def drive(ep: ReferenceEpisode, controller, question: int, ids: dict[str, int], words: list[str],
          max_rounds: int = 10_000) -> ReferenceEpisode:
    """One episode: observe, act on a one-row batch, apply the row's action with the episode's own step."""
    obs = observe(ep, controller.slots, question, ids)
    memory = controller.init(obs, None)
    for _ in range(max_rounds):
        if ep.done:
            return ep
        action, memory = controller.act(obs, memory)
        ep.step(split_action(action, [words])[0])
        obs = observe(ep, controller.slots, question, ids)
    raise RuntimeError(f"controller did not stop within {max_rounds} rounds")


def observe(ep: ReferenceEpisode, slots: int, question: int, ids: dict[str, int]) -> Observation:
    """The one-row `Observation` of a reference episode; the pool vote is recomputed from its completions."""
    finals = [ep.slots[s].answer for s in ep.completions]
    winner, top1, top2 = ordered_vote(finals)
    key = {s: rank for rank, s in enumerate(ep.completions)}
    row32 = lambda xs: torch.tensor([xs], dtype=torch.int32)  # noqa: E731
    one = lambda x: torch.tensor([x], dtype=torch.long)  # noqa: E731
    as_id = lambda a: -1 if a is None else ids[a]  # noqa: E731
    status = ep.status(slots)
    return Observation(
        status=row32(status), depth=row32(ep.depth(slots)), answer=row32([as_id(a) for a in ep.answer(slots)]),
        streak=row32(ep.streak(slots)), cost=row32(ep.cost(slots)),
        finish_key=torch.tensor([[key[s] if st == FINISHED else NOT_FINISHED for s, st in enumerate(status)]]),
        opened_round=row32(ep.opened_round(slots)), n_open=one(ep.n_open), n_avail=one(ep.n_avail),
        round=one(ep.round), done=torch.tensor([ep.done]), result=one(as_id(ep.result)),
        delta=one(ep.question.delta), question=one(question), seq_cost=one(ep.seq_cost),
        pool_winner=one(as_id(winner)), pool_top1=one(top1), pool_top2=one(top2), pool_size=one(len(finals)))


def ordered_vote(answers: list[str]) -> tuple[str | None, int, int]:
    """Spec §0.1 in plain Python: most common answer, ties to the earliest first appearance; (winner, top1, top2)."""
    ranked = Counter(answers).most_common(2)
    if not ranked:
        return None, 0, 0
    return ranked[0][0], ranked[0][1], ranked[1][1] if len(ranked) > 1 else 0


# ---- peak memory ------------------------------------------------------------------------------

def peak_memory(which: str, threads: int) -> str:
    """Peak RSS of a fresh process evaluating the baselines on every public store."""
    cmd = [sys.executable, os.path.abspath(__file__), "--peak-memory-child", which, "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    what = ", ".join(label for _, _, label in SETTINGS) if which == "bench" else "every knob of every baseline"
    return (f"peak RSS evaluating {what} ({info['settings']} settings) on {info['stores']} stores "
            f"(3,000 or so episodes each): {info['peak_mb']:.0f} MB in {info['seconds']:.0f} s")


def peak_memory_child(which: str) -> int:
    stores = sorted(discover())
    plan = ([(n, k) for n, k, _ in SETTINGS] if which == "bench"
            else [(n, k) for n, (_, _, knobs) in BASELINES.items() for k in knobs])
    start = time.perf_counter()
    for path in stores:
        store = load_store(path)
        episodes = protocol_episodes(store, "reference")
        for name, knob in plan:
            evaluate(store, episodes, make_baseline(name, knob))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"peak_mb": peak_mb, "stores": len(stores), "settings": len(plan),
                      "seconds": time.perf_counter() - start}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
