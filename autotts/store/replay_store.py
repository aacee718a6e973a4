"""`ReplayStore`: recorded reasoning traces as integer tensors.

Answers are strings in the files but integers here: each question has its own
answer vocabulary, so votes are cheap scatter/argmax ops. Ids are laid out so
that the final answers come first (``id < n_final_ids[q]``), which lets votes
over completed branches use a small table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from itertools import chain

import numpy as np
import torch
from torch import Tensor

PAD = -1  # padding id for probes beyond a branch's probe list and for missing branches


@dataclass(frozen=True)
class ReplayStore:
    """Q questions x N branches x K probes; all tensors are int64 on ``device``.

    Attributes:
        probes: [Q, N, K] answer id after each full interval (PAD beyond ``n_probes``).
        n_probes: [Q, N] number of recorded probes of each branch.
        length: [Q, N] total tokens of each branch (``branch_tokens``).
        final: [Q, N] final answer id of each branch.
        n_branches: [Q] branches per question (rows beyond are padding).
        delta: [Q] probe interval in tokens (``probe_freq``).
        gold: [Q] id of the gold answer in the question's vocabulary.
        n_final_ids: [Q] ids below this are final answers of some branch.
        vocab: per question, answer id -> answer string.
    """

    probes: Tensor
    n_probes: Tensor
    length: Tensor
    final: Tensor
    n_branches: Tensor
    delta: Tensor
    gold: Tensor
    n_final_ids: Tensor
    vocab: list[list[str]]
    questions: list[str]
    model: str = "unknown"
    dataset: str = "unknown"
    source: str = ""

    @property
    def num_questions(self) -> int:
        return int(self.probes.shape[0])

    @property
    def max_branches(self) -> int:
        return int(self.probes.shape[1])

    @property
    def max_probes(self) -> int:
        return int(self.probes.shape[2])

    @property
    def vocab_size(self) -> int:
        """Largest per-question vocabulary: the width of a vote table over any answer."""
        return max(len(v) for v in self.vocab)

    @property
    def final_vocab_size(self) -> int:
        """Largest number of distinct final answers: the width of a vote table over finals."""
        return int(self.n_final_ids.max())

    @property
    def name(self) -> str:
        return f"{self.model}/{self.dataset}"

    @property
    def device(self) -> torch.device:
        return self.probes.device

    def answer(self, question: int, answer_id: int) -> str | None:
        """The answer string of an id (None for PAD / no answer)."""
        return None if answer_id < 0 else self.vocab[question][answer_id]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the content (not the file bytes): identical data -> identical fingerprint."""
        h = hashlib.sha256()
        for t in (self.probes, self.n_probes, self.length, self.final, self.n_branches, self.delta, self.gold):
            h.update(t.detach().cpu().to(torch.int64).numpy().tobytes())
        for words in self.vocab:
            h.update("\x1f".join(words).encode("utf-8"))
            h.update(b"\x1e")
        return h.hexdigest()[:16]

    @cached_property
    def probe_run(self) -> Tensor:
        """[Q,N,K] length of the run of equal probe answers ending at each probe (0 on padding)."""
        run = torch.zeros_like(self.probes)
        valid = self.probes != PAD
        run[..., 0] = valid[..., 0].long()
        for k in range(1, self.max_probes):
            same = valid[..., k] & (self.probes[..., k] == self.probes[..., k - 1])
            run[..., k] = torch.where(same, run[..., k - 1] + 1, valid[..., k].long())
        return run

    @cached_property
    def probe_lookup(self) -> tuple[Tensor, int]:
        """(table, bits): every probe's answer id and `probe_run` packed as ``id << bits | run`` in one flat tensor.

        The env reads both for every advanced branch each round; one random gather
        instead of two halves the cache misses. int32 with bits = 16 when ids < 2^15
        and runs < 2^16 (all public stores), else int64 with bits = 32.
        """
        bits = 16 if self.vocab_size < 2**15 and self.max_probes < 2**16 else 32
        packed = (self.probes.to(torch.int64) << bits) | self.probe_run
        return packed.to(torch.int32 if bits == 16 else torch.int64).reshape(-1), bits

    def to(self, device: torch.device | str) -> "ReplayStore":
        tensors = {k: getattr(self, k).to(device) for k in TENSOR_FIELDS}
        return ReplayStore(**tensors, vocab=self.vocab, questions=self.questions,
                           model=self.model, dataset=self.dataset, source=self.source)

    def subset(self, questions: list[int]) -> "ReplayStore":
        """A store with only the given questions (in that order)."""
        idx = torch.as_tensor(questions, dtype=torch.long, device=self.device)
        tensors = {k: getattr(self, k)[idx] for k in TENSOR_FIELDS}
        return ReplayStore(**tensors, vocab=[self.vocab[i] for i in questions],
                           questions=[self.questions[i] for i in questions],
                           model=self.model, dataset=self.dataset, source=self.source)


TENSOR_FIELDS = ("probes", "n_probes", "length", "final", "n_branches", "delta", "gold", "n_final_ids")


def build_store(records: list[dict], model: str = "unknown", dataset: str = "unknown",
                source: str = "") -> ReplayStore:
    """Build a store from *validated* AutoTTS records (see `autotts.store.autotts_json`).

    Vectorised per question (one dict lookup per answer, numpy scatter into the
    padded block) because this runs on every load of a JSON store.
    """
    q_count = len(records)
    n_max = max(len(r["each_branch"]) for r in records)
    k_max = max(1, max(len(b[0]) for r in records for b in r["each_branch"]))
    probes = np.full((q_count, n_max, k_max), PAD, dtype=np.int64)
    n_probes = np.zeros((q_count, n_max), dtype=np.int64)
    length = np.zeros((q_count, n_max), dtype=np.int64)
    final = np.full((q_count, n_max), PAD, dtype=np.int64)
    n_final = np.zeros(q_count, dtype=np.int64)
    gold = np.zeros(q_count, dtype=np.int64)
    vocabs: list[list[str]] = []
    for qi, rec in enumerate(records):
        branches = rec["each_branch"]
        n = len(branches)
        plists, tokens, finals = zip(*branches)
        flat = list(chain.from_iterable(plists))
        ids = _vocabulary(finals, flat, rec["gold_answer"])
        vocabs.append(list(ids))
        counts = np.fromiter(map(len, plists), dtype=np.int64, count=n)
        n_probes[qi, :n] = counts
        probes[qi, :n][np.arange(k_max) < counts[:, None]] = np.fromiter(map(ids.__getitem__, flat),
                                                                          dtype=np.int64, count=len(flat))
        length[qi, :n] = tokens
        final[qi, :n] = np.fromiter(map(ids.__getitem__, finals), dtype=np.int64, count=n)
        n_final[qi] = len(set(finals))
        gold[qi] = ids[rec["gold_answer"]]
    as_t = torch.from_numpy
    return ReplayStore(probes=as_t(probes), n_probes=as_t(n_probes), length=as_t(length), final=as_t(final),
                       n_branches=torch.tensor([len(r["each_branch"]) for r in records], dtype=torch.long),
                       delta=torch.tensor([r["probe_freq"] for r in records], dtype=torch.long),
                       gold=as_t(gold), n_final_ids=as_t(n_final), vocab=vocabs,
                       questions=[r.get("question", "") for r in records],
                       model=model, dataset=dataset, source=source)


def _vocabulary(finals: tuple[str, ...], probes: list[str], gold: str) -> dict[str, int]:
    """Answer -> id: finals first (first appearance), then probe-only answers, then gold."""
    return {a: i for i, a in enumerate(dict.fromkeys(chain(finals, probes, (gold,))))}


def to_records(store: ReplayStore) -> list[dict]:
    """The AutoTTS JSON records of a store (inverse of `build_store`)."""
    probes, n_probes, length, final = (getattr(store, k).cpu().tolist()
                                       for k in ("probes", "n_probes", "length", "final"))
    out = []
    for qi, words in enumerate(store.vocab):
        branches = [[[words[a] for a in probes[qi][j][: n_probes[qi][j]]], length[qi][j], words[final[qi][j]]]
                    for j in range(int(store.n_branches[qi]))]
        out.append({
            "question": store.questions[qi],
            "gold_answer": words[int(store.gold[qi])],
            "probe_freq": int(store.delta[qi]),
            "each_branch": branches,
            "final_answers_trace": [b[2] for b in branches],
        })
    return out


def concat_stores(stores: list[ReplayStore]) -> tuple[ReplayStore, torch.Tensor]:
    """One store holding every question of `stores` (padded), and the store index of each question.

    Lets one batched rollout cover several stores (e.g. the four search stores of an ES generation).
    """
    n = max(s.max_branches for s in stores)
    k = max(s.max_probes for s in stores)
    pad = lambda t, *size: torch.nn.functional.pad(t, size, value=PAD)  # noqa: E731
    probes = torch.cat([pad(s.probes, 0, k - s.max_probes, 0, n - s.max_branches) for s in stores])
    fields = {f: torch.cat([pad(getattr(s, f), 0, n - s.max_branches) if getattr(s, f).dim() == 2 else getattr(s, f)
                            for s in stores]) for f in TENSOR_FIELDS if f != "probes"}
    # padded branch rows must not look like data: zero length / probes
    for f in ("n_probes", "length"):
        fields[f] = fields[f].clamp(min=0)
    union = ReplayStore(probes=probes, **fields, vocab=[v for s in stores for v in s.vocab],
                        questions=[q for s in stores for q in s.questions], model="+".join(s.model for s in stores),
                        dataset="+".join(sorted({s.dataset for s in stores})), source="")
    owner = torch.cat([torch.full((s.num_questions,), i, dtype=torch.long) for i, s in enumerate(stores)])
    return union, owner
