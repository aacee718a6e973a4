"""The live environment: the replay env's `step`, run on a store that a live model fills on demand.

Before each round's action is applied, the branches it touches are generated
just far enough (`IntervalReader.reveal`) for the replay `step` to read what
it needs: advancing k intervals from depth d needs probes d..d+k-1 or the
branch's end; a probe-open needs probe 0 or the end; a full read or FINISH
needs the end. Then a snapshot of everything revealed so far is built as a
`ReplayStore` and the replay env's own `reset`/`step` update the
observation. Cost accounting and observation updates therefore have one
source (`autotts.env.batched`), and the tokens generated equal the tokens
charged (checked by `check_costs`), in total per branch and along the critical
path: per round the most tokens one branch generated, summed (`seq_cost`).

Episodes are the questions; slot s of every question opens branch
``order[s]`` with ``order = python_shuffle(n, shuffle_seed)``, the reference
protocol, and branch j is generated with ``branch_seed(base_seed, question, j)``.
Answer ids are assigned per question in order of first appearance, so the
env's pool tallies (sized by the vocabulary) are widened as answers appear.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from autotts.env.batched import reset, step
from autotts.env.episodes import Episodes, python_shuffle
from autotts.env.pool import UNSEEN
from autotts.env.state import ACTIVE, Action, EnvState, Observation, PoolTable
from autotts.executor.backends.base import branch_seed
from autotts.executor.intervals import TO_END, IntervalReader, Track
from autotts.store.replay_store import PAD, ReplayStore


@dataclass(frozen=True)
class LiveQuestion:
    text: str    # what seeds the branches
    prompt: str  # what the model reads


class LiveEnv:
    """E questions as E episodes of a live model; same `reset`/`step` contract as the replay env."""

    def __init__(self, reader: IntervalReader, questions: list[LiveQuestion], n: int, slots: int,
                 shuffle_seed: int = 0, base_seed: int = 0):
        self.reader, self.questions, self.n, self.slots = reader, questions, int(n), int(slots)
        self.base_seed = int(base_seed)
        self.order = python_shuffle(self.n, int(shuffle_seed))
        e = len(questions)
        self.tracks: list[dict[int, Track]] = [{} for _ in range(e)]
        self.vocab: list[dict[str, int]] = [{} for _ in range(e)]
        self.waited = [0] * e  # per question: per round the most tokens one branch generated, summed
        as_t = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
        self.episodes = Episodes(question=torch.arange(e), order=as_t([list(self.order)] * e),
                                 n_avail=torch.full((e,), self.n), seed=torch.full((e,), int(shuffle_seed)))
        self.store = self.snapshot()

    def reset(self) -> EnvState:
        return reset(self.store, self.episodes, self.slots)

    def step(self, state: EnvState, action: Action) -> EnvState:
        """Generate what `action` will read, then apply it with the replay env's `step`."""
        self._generate(state.obs, action)
        self.store = self.snapshot()
        hidden = reset(self.store, self.episodes, self.slots).hidden
        pool = _widen(state.pool, self.store.final_vocab_size)
        new = step(self.store, EnvState(state.obs, hidden, pool), action)
        for e in (new.obs.done & ~state.obs.done).nonzero().squeeze(1).tolist():
            self.reader.release(list(self.tracks[e].values()))  # a question that answered reads nothing more
        return new

    def answer(self, question: int, answer_id: int) -> str | None:
        return self.store.answer(question, answer_id)

    def store_view(self) -> "StoreView":
        """The current snapshot for readers that keep a store reference across rounds (trace recorders)."""
        return StoreView(self)

    def branch_tokens(self, question: int, branch: int) -> int:
        track = self.tracks[question].get(branch)
        return 0 if track is None else track.tokens

    def check_costs(self, obs: Observation) -> None:
        """Tokens generated per branch, and along the critical path, must equal what the replay accounting charged."""
        for e in range(obs.num_episodes):
            if int(obs.seq_cost[e]) != self.waited[e]:
                raise RuntimeError(f"question {e}: the critical path generated {self.waited[e]} tokens but "
                                   f"{int(obs.seq_cost[e])} were charged as sequential tokens")
            for slot in range(int(obs.n_open[e])):
                j = self.order[slot]
                charged, made = int(obs.cost[e, slot]), self.branch_tokens(e, j)
                if charged != made:
                    raise RuntimeError(f"question {e} branch {j}: generated {made} tokens but charged {charged}")

    # ---- generation on demand -----------------------------------------------------------------

    def _generate(self, obs: Observation, action: Action) -> None:
        acting = ~obs.done & ~action.stop
        work: list[tuple[int, Track, int]] = []  # (question, track, probes wanted)
        if action.advance is not None:
            want = (action.advance > 0) & acting[:, None] & (obs.status == ACTIVE)
            if action.prune is not None:
                want &= ~action.prune  # the env prunes before it advances
            for e, slot in want.nonzero().tolist():
                track = self.tracks[e][self.order[slot]]
                work.append((e, track, int(obs.depth[e, slot]) + int(action.advance[e, slot])))
        if action.open is not None:
            work += self._opens(obs, action, acting)
        if work:
            before = [t.tokens for _, t, _ in work]
            self.reader.reveal([t for _, t, _ in work], [min(goal, TO_END) for _, _, goal in work])
            peak: dict[int, int] = {}
            for (e, track, _), was in zip(work, before):
                peak[e] = max(peak.get(e, 0), track.tokens - was)
            for e, tokens in peak.items():
                self.waited[e] += tokens

    def _opens(self, obs: Observation, action: Action, acting: Tensor) -> list[tuple[int, Track, int]]:
        """Open the branches the env will open (same count rule as `batched._open`)."""
        count = torch.where(acting, action.open.clamp(min=0), 0)
        count = torch.minimum(count, obs.n_avail - obs.n_open)
        work = []
        for e in count.nonzero().squeeze(1).tolist():
            first = int(obs.n_open[e])
            js = [self.order[s] for s in range(first, first + int(count[e]))]
            q = self.questions[e]
            tracks = self.reader.open(q.prompt, [branch_seed(self.base_seed, q.text, j) for j in js])
            full = bool(action.full_read[e]) if action.full_read is not None else False
            for j, track in zip(js, tracks):
                self.tracks[e][j] = track
                work.append((e, track, TO_END if full else 1))
        return work

    # ---- the revealed part as a replay store --------------------------------------------------

    def snapshot(self) -> ReplayStore:
        """Everything revealed so far as a `ReplayStore` (unfinished branches: known probes, no length)."""
        e, n = len(self.questions), self.n
        k_max = max([1] + [len(t.probes) for tracks in self.tracks for t in tracks.values()])
        probes = torch.full((e, n, k_max), PAD, dtype=torch.long)
        n_probes = torch.zeros((e, n), dtype=torch.long)
        length = torch.zeros((e, n), dtype=torch.long)
        final = torch.full((e, n), PAD, dtype=torch.long)
        for q in range(e):
            for slot in range(n):
                j = self.order[slot]
                track = self.tracks[q].get(j)
                if track is None:
                    continue
                ids = [self._id(q, a) for a in track.probes]
                if ids:
                    probes[q, j, :len(ids)] = torch.tensor(ids)
                n_probes[q, j] = len(ids)
                if track.ended:
                    length[q, j] = track.tokens
                    final[q, j] = self._id(q, track.final)
        vocab = [list(v) for v in self.vocab]
        return ReplayStore(probes=probes, n_probes=n_probes, length=length, final=final,
                           n_branches=torch.full((e,), n), delta=torch.full((e,), self.reader.delta),
                           gold=torch.full((e,), PAD), n_final_ids=torch.tensor([len(v) for v in vocab]),
                           vocab=vocab, questions=[q.text for q in self.questions], model="live", dataset="live")

    def _id(self, question: int, answer: str) -> int:
        ids = self.vocab[question]
        return ids.setdefault(answer, len(ids))


class StoreView:
    """Attribute access to the live env's latest snapshot (snapshots are replaced every round)."""

    def __init__(self, env: LiveEnv):
        self._env = env

    def __getattr__(self, name: str):
        return getattr(self._env.store, name)


def _widen(pool: PoolTable, width: int) -> PoolTable:
    """The pool tallies with room for answer ids up to `width` (live vocabularies grow between rounds)."""
    extra = width - pool.count.shape[1]
    if extra <= 0:
        return pool
    pad = torch.nn.functional.pad
    return PoolTable(count=pad(pool.count, (0, extra), value=0), first=pad(pool.first, (0, extra), value=UNSEEN))
