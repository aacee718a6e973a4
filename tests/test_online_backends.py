"""Backends on the tiny local model: batch- and split-invariant sampling, prefix reuse, probes, real HTTP."""

from __future__ import annotations

import pytest
from online_support import CompletionServer

from autotts.executor.backends.base import Sampling, branch_seed
from autotts.executor.backends.openai_backend import OpenAIBackend
from autotts.executor.backends.transformers_backend import TransformersBackend
from autotts.executor.intervals import TO_END, IntervalReader, Probe

PROMPTS = ["What is the sum of 3 and 5 ?", "Find the number of prime divisors of 1000 ."]
CUE = Probe().cue


@pytest.fixture(scope="module")
def backend(model_dir) -> TransformersBackend:
    return TransformersBackend(str(model_dir))


def _ids(branches) -> list[list[int]]:
    return [list(b.state.ids) for b in branches]


def _grow(backend, prompt: str, seeds: list[int], steps: list[int]):
    branches = backend.open(prompt, seeds)
    for n in steps:
        backend.extend(branches, [n] * len(branches))
    return branches


def test_a_branch_samples_the_same_tokens_alone_or_in_any_batch(backend) -> None:
    seeds = [branch_seed(0, PROMPTS[0], j) for j in range(6)]
    together = _grow(backend, PROMPTS[0], seeds, [48])
    alone = [_grow(backend, PROMPTS[0], [s], [48])[0] for s in seeds]
    assert _ids(together) == _ids(alone)
    # Mixed prompts, lengths and budgets in one batch: each row still follows its own seed.
    other = backend.open(PROMPTS[1], [7])
    backend.extend(other, [5])
    mixed = backend.open(PROMPTS[0], seeds[:2])
    batch = mixed + other
    backend.extend(batch, [48, 48, 43])
    assert _ids(mixed) == _ids(together[:2])
    assert _ids(other) == _ids(_grow(backend, PROMPTS[1], [7], [48]))
    assert len({tuple(i) for i in _ids(together)}) == len(seeds)  # seeds matter


def test_splitting_generation_into_intervals_does_not_change_the_text(backend) -> None:
    seeds = [11, 12, 13]
    one_call = _grow(backend, PROMPTS[1], seeds, [40])
    intervals = _grow(backend, PROMPTS[1], seeds, [16, 16, 8])
    uneven = _grow(backend, PROMPTS[1], seeds, [1, 7, 32])
    assert _ids(one_call) == _ids(intervals) == _ids(uneven)
    assert [b.tokens for b in one_call] == [b.tokens for b in uneven]


def test_eos_counts_as_a_token_and_ends_the_branch(backend) -> None:
    branches = _grow(backend, PROMPTS[0], list(range(40)), [96])
    ended = [b for b in branches if b.eos]
    assert ended, "the tiny model should end some branches with EOS within 96 tokens"
    for b in ended:
        assert b.tokens == len(b.state.ids) - b.state.n_prompt + 1  # EOS is counted, not kept in the ids
        before = b.tokens
        backend.extend([b], [16])
        assert b.tokens == before  # an ended branch never grows
    for b in branches:
        assert b.eos or b.tokens == 96


def test_reencoding_prefixes_gives_the_same_tokens_and_probes(model_dir, backend) -> None:
    fresh = TransformersBackend(str(model_dir), reuse_prefix=False)
    seeds = [3, 4, 5, 6]
    reuse, reencode = backend.open(PROMPTS[0], seeds), fresh.open(PROMPTS[0], seeds)
    for _ in range(3):
        backend.extend(reuse, [16] * 4)
        fresh.extend(reencode, [16] * 4)
        assert backend.probe(reuse, CUE, 6) == fresh.probe(reencode, CUE, 6)
    assert _ids(reuse) == _ids(reencode)
    assert all(s.state.kv is None for s in reencode)  # nothing kept between intervals


def test_probing_leaves_the_branch_untouched(backend) -> None:
    seeds = [21, 22]
    probed = _grow(backend, PROMPTS[0], seeds, [16])
    plain = _grow(backend, PROMPTS[0], seeds, [16])
    first = backend.probe(probed, CUE, 8)
    assert backend.probe(probed, CUE, 8) == first
    backend.extend(probed, [16, 16])
    backend.extend(plain, [16, 16])
    assert _ids(probed) == _ids(plain)
    # Greedy probes of each row alone equal the batched ones.
    assert [backend.probe([b], CUE, 8)[0] for b in probed] == backend.probe(probed, CUE, 8)


def test_interval_reader_probes_after_every_non_final_interval(backend) -> None:
    reader = IntervalReader(backend, delta=16, max_tokens=96)
    tracks = reader.open(PROMPTS[1], [branch_seed(0, PROMPTS[1], j) for j in range(8)])
    reader.reveal(tracks, [TO_END] * 8)
    for t in tracks:
        assert t.ended and 0 < t.tokens <= 96
        assert len(t.probes) == -(-t.tokens // 16) - 1  # K = ceil(L / delta) - 1
    assert any(t.probes for t in tracks) and any(not t.probes for t in tracks)
    assert all(t.branch.state.kv is None for t in tracks)  # ended branches hold no KV cache
    assert backend.count_tokens("the sum of two numbers") == 5


@pytest.fixture(scope="module")
def server(model_dir):
    with CompletionServer(model_dir) as srv:
        yield srv


def test_openai_backend_over_http_is_reproducible_and_batch_free(server) -> None:
    client = OpenAIBackend("tiny", server.url, sampling=Sampling(1.0, 1.0), timeout=30, retries=0, concurrency=4)
    seeds = [branch_seed(0, PROMPTS[0], j) for j in range(4)]
    together = client.open(PROMPTS[0], seeds)
    for _ in range(3):
        client.extend(together, [16] * 4)
    alone = [client.open(PROMPTS[0], [s])[0] for s in seeds]
    for b in alone:
        for _ in range(3):
            client.extend([b], [16])
    assert [client.text(b) for b in together] == [client.text(b) for b in alone]
    assert [b.tokens for b in together] == [b.tokens for b in alone]
    assert all(b.eos or b.tokens == 48 for b in together)
    probes = client.probe(together, CUE, 6)
    assert probes == client.probe(together, CUE, 6) and all(isinstance(p, str) for p in probes)
    assert client.count_tokens("the sum of two numbers") == 5
