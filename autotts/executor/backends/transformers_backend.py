"""A local Hugging Face causal LM as a backend: batched decoding that reuses each branch's KV cache.

Every branch keeps its token ids, the KV cache of those ids and the logits of
its next token, so extending it by Δ tokens costs Δ decoding steps and never
re-encodes the prefix. Branches of different lengths share a batch through
left padding, explicit position ids and an attention mask.

Reproducibility: branch j draws its tokens from its own ``torch.Generator``
(one uniform number per token, inverse-CDF sampling), so its text does not
depend on which branches share the batch or how its tokens are split into
calls. Batched float math can still differ in the last bits between batch
shapes; in float64 (the tiny test model) that never flips a token in
practice, in bf16/fp16 it can: pass ``batch_size=1`` when bit-exact replay
of a collected store matters more than speed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from autotts.errors import AutottsError
from autotts.executor.backends.base import Branch, Sampling

KV = list[tuple[Tensor, Tensor]]  # per layer: keys, values [1, heads, T, dim]


@dataclass
class _Seq:
    """Backend state of one branch: ids (prompt + generated, no EOS), their cache, next-token logits."""

    ids: list[int]
    n_prompt: int
    generator: torch.Generator
    kv: KV | None = None
    logits: Tensor | None = None


class TransformersBackend:
    """Batched sampling from a local causal LM (see the module docstring for the guarantees)."""

    name = "transformers"

    def __init__(self, model: str, sampling: Sampling = Sampling(), device: str = "cpu", dtype: str = "auto",
                 batch_size: int = 64, reuse_prefix: bool = True):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # weight-loading bars would interleave with our own progress output
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=_dtype(dtype)).to(device).eval()
        except (OSError, ValueError) as err:
            raise AutottsError(f"cannot load model '{model}': {str(err).strip().splitlines()[0]}") from None
        self.sampling, self.device = sampling, torch.device(device)
        self.batch_size, self.reuse_prefix = max(1, int(batch_size)), reuse_prefix
        self.eos = _eos_ids(self.model, self.tokenizer)
        self._pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos)
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    # ---- Backend interface --------------------------------------------------------------------

    def open(self, prompt: str, seeds: Sequence[int]) -> list[Branch]:
        ids = self._encode(prompt)
        if not ids:
            raise AutottsError("empty prompt: the prompt template produced no tokens")
        shared = _Seq(list(ids), len(ids), torch.Generator())
        if self.reuse_prefix:
            self._prefill([shared])  # one prompt encoding serves every branch
        out = []
        for seed in seeds:
            seq = _Seq(list(ids), len(ids), torch.Generator().manual_seed(int(seed)), shared.kv, shared.logits)
            out.append(Branch(prompt=prompt, seed=int(seed), state=seq))
        return out

    def extend(self, branches: Sequence[Branch], budgets: Sequence[int]) -> None:
        work = [(b, n) for b, n in zip(branches, budgets) if n > 0 and not b.eos]
        for i in range(0, len(work), self.batch_size):
            chunk = work[i:i + self.batch_size]
            self._ensure_cache([b.state for b, _ in chunk])
            self._decode([b for b, _ in chunk], [n for _, n in chunk])
            if not self.reuse_prefix:
                for b, _ in chunk:
                    b.state.kv = b.state.logits = None

    def probe(self, branches: Sequence[Branch], cue: str, max_tokens: int,
              done: Callable[[str], bool] | None = None) -> list[str]:
        cue_ids = self._encode(cue)
        out: list[str] = []
        for i in range(0, len(branches), self.batch_size):
            seqs = [b.state for b in branches[i:i + self.batch_size]]
            self._ensure_cache(seqs)
            out.extend(self._greedy(seqs, cue_ids, max_tokens, done))
            if not self.reuse_prefix:
                for s in seqs:
                    s.kv = s.logits = None
        return out

    def text(self, branch: Branch) -> str:
        """Generated text such that prompt + text is the whole branch (keeps a leading space if any)."""
        seq: _Seq = branch.state
        head = self.tokenizer.decode(seq.ids[:seq.n_prompt], skip_special_tokens=True)
        full = self.tokenizer.decode(seq.ids, skip_special_tokens=True)
        if full.startswith(head):
            return full[len(head):]
        return self.tokenizer.decode(seq.ids[seq.n_prompt:], skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def release(self, branches: Sequence[Branch]) -> None:
        for b in branches:
            b.state.kv = b.state.logits = None  # ids stay: text() and a later re-encode still work

    # ---- decoding -----------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _ensure_cache(self, seqs: list[_Seq]) -> None:
        missing = [s for s in seqs if s.kv is None]
        if missing:
            self._prefill(missing)

    @torch.no_grad()
    def _prefill(self, seqs: list[_Seq]) -> None:
        """Encode each sequence's ids from scratch (left-padded batch); store its cache and next logits."""
        lens = [len(s.ids) for s in seqs]
        width = max(lens)
        ids = torch.full((len(seqs), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - lens[r]:] = torch.tensor(s.ids)
            mask[r, width - lens[r]:] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        out = self._forward(ids, mask, pos, None)
        kv = _cache_tensors(self._cache_of(out))
        for r, s in enumerate(seqs):
            s.kv = [(k[r:r + 1, :, width - lens[r]:], v[r:r + 1, :, width - lens[r]:]) for k, v in kv]
            s.logits = out.logits[r, -1]

    @torch.no_grad()
    def _decode(self, branches: list[Branch], budgets: list[int]) -> None:
        """Sample up to budgets[r] tokens per row, one batched forward per step; rows stop at EOS."""
        seqs: list[_Seq] = [b.state for b in branches]
        cache, mask, lens, width = self._stack(seqs, max(budgets))
        logits = torch.stack([s.logits for s in seqs])
        fed = [0] * len(seqs)
        alive = [True] * len(seqs)
        for t in range(max(budgets)):
            rows = [r for r in range(len(seqs)) if alive[r]]
            tokens = self._sample(logits, rows, seqs)
            feed = torch.zeros(len(seqs), dtype=torch.long)
            step_ids = torch.full((len(seqs), 1), self._pad, dtype=torch.long)
            for r in rows:
                tok = int(tokens[r])
                branches[r].tokens += 1
                if tok in self.eos:
                    branches[r].eos, alive[r] = True, False
                    continue
                seqs[r].ids.append(tok)
                step_ids[r, 0], feed[r] = tok, 1
                fed[r] += 1
                alive[r] = t + 1 < budgets[r]
            if not bool(feed.any()):
                break
            mask[:, width + t] = feed
            pos = (lens + t)[:, None]
            out = self._forward(step_ids, mask[:, :width + t + 1], pos, cache)
            cache = self._cache_of(out)
            new = out.logits[:, -1]
            logits = torch.where(feed.bool().to(new.device)[:, None], new, logits)
        kv = _cache_tensors(cache)
        for r, s in enumerate(seqs):
            lo, hi = width - int(lens[r]), width + fed[r]
            s.kv = [(k[r:r + 1, :, lo:hi], v[r:r + 1, :, lo:hi]) for k, v in kv]
            s.logits = logits[r]

    @torch.no_grad()
    def _greedy(self, seqs: list[_Seq], cue_ids: list[int], max_tokens: int,
                done: Callable[[str], bool] | None) -> list[str]:
        """Greedy continuation of ids + cue for each row, without touching the rows' caches."""
        n_cue = len(cue_ids)
        cache, mask, lens, width = self._stack(seqs, n_cue + max_tokens)
        mask[:, width:width + n_cue] = 1
        ids = torch.tensor([cue_ids] * len(seqs), dtype=torch.long)
        if n_cue:
            pos = lens[:, None] + torch.arange(n_cue)[None, :]
            out = self._forward(ids, mask[:, :width + n_cue], pos, cache)
            cache, logits = self._cache_of(out), out.logits[:, -1]
        else:
            logits = torch.stack([s.logits for s in seqs])
        outs: list[list[int]] = [[] for _ in seqs]
        open_rows = set(range(len(seqs)))
        for t in range(max_tokens):
            best = logits.argmax(-1).tolist()
            for r in list(open_rows):
                if best[r] in self.eos:
                    open_rows.discard(r)
                    continue
                outs[r].append(best[r])
                if done is not None and done(self.tokenizer.decode(outs[r], skip_special_tokens=True)):
                    open_rows.discard(r)
            if not open_rows or t + 1 == max_tokens:
                break
            col = width + n_cue + t
            mask[:, col] = 0
            mask[list(open_rows), col] = 1
            step = torch.tensor([[b] for b in best], dtype=torch.long)
            pos = (lens + n_cue + t)[:, None]
            out = self._forward(step, mask[:, :col + 1], pos, cache)
            cache, logits = self._cache_of(out), out.logits[:, -1]
        return [self.tokenizer.decode(o, skip_special_tokens=True) for o in outs]

    def _sample(self, logits: Tensor, rows: list[int], seqs: list[_Seq]) -> list[int | None]:
        """One token per row in `rows`: greedy at temperature 0, else inverse CDF with the row's generator."""
        out: list[int | None] = [None] * len(seqs)
        if not rows:
            return out
        sub = logits[rows].to(torch.float64)
        if self.sampling.temperature <= 0:
            picks = sub.argmax(-1).tolist()
        else:
            u = torch.stack([torch.rand((), generator=seqs[r].generator, dtype=torch.float64) for r in rows])
            picks = _inverse_cdf(sub / self.sampling.temperature, u.to(sub.device), self.sampling.top_p).tolist()
        for r, tok in zip(rows, picks):
            out[r] = tok
        return out

    def _stack(self, seqs: list[_Seq], extra: int) -> tuple[object, Tensor, Tensor, int]:
        """Left-pad the rows' caches into one batch cache; mask has `extra` free columns for new tokens."""
        from transformers import DynamicCache

        lens = torch.tensor([len(s.ids) for s in seqs], dtype=torch.long)
        width = int(lens.max())
        mask = torch.zeros((len(seqs), width + extra), dtype=torch.long)
        layers = []
        for li in range(len(seqs[0].kv)):
            k0 = seqs[0].kv[li][0]
            keys = k0.new_zeros((len(seqs), k0.shape[1], width, k0.shape[3]))
            values = keys.clone()
            for r, s in enumerate(seqs):
                k, v = s.kv[li]
                keys[r, :, width - k.shape[2]:] = k[0]
                values[r, :, width - v.shape[2]:] = v[0]
            layers.append((keys, values))
        for r in range(len(seqs)):
            mask[r, width - int(lens[r]):width] = 1
        return DynamicCache(ddp_cache_data=layers), mask, lens, width

    def _forward(self, ids: Tensor, mask: Tensor, pos: Tensor, cache: object):
        kwargs = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                  "position_ids": pos.to(self.device), "use_cache": True, "logits_to_keep": 1}
        if cache is not None:
            kwargs[self._cache_arg] = cache
        return self.model(**kwargs)

    @staticmethod
    def _cache_of(out) -> object:
        cache = out.get("cache") if hasattr(out, "get") else None
        return cache if cache is not None else out.past_key_values


def _inverse_cdf(logits: Tensor, u: Tensor, top_p: float) -> Tensor:
    """Token whose cumulative probability first exceeds u (per row), within the top-p nucleus."""
    probs = torch.softmax(logits, -1)
    if top_p < 1.0:
        probs, order = probs.sort(-1, descending=True)
        keep = probs.cumsum(-1) - probs < top_p
        probs = probs * keep
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None]).squeeze(1).clamp(max=probs.shape[-1] - 1)
    return order.gather(1, idx[:, None]).squeeze(1) if top_p < 1.0 else idx


def _cache_tensors(cache: object) -> KV:
    """(keys, values) per layer of a transformers cache, across cache API versions."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):
        return list(zip(cache.key_cache, cache.value_cache))
    return [(k, v) for k, v in cache]


def _eos_ids(model, tokenizer) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    if not ids:
        raise AutottsError("the model defines no end-of-sequence token (generation_config.eos_token_id)")
    return ids


def _dtype(name: str):
    if name == "auto":
        return "auto"
    try:
        return {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16,
                "float16": torch.float16}[name]
    except KeyError:
        raise AutottsError(f"--dtype {name}: expected auto, float64, float32, bfloat16 or float16") from None
