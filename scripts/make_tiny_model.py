"""Build a tiny, randomly initialised causal LM and its tokenizer locally (no downloads).

    python scripts/make_tiny_model.py OUTDIR

The model is for tests and demos of `autotts collect` / `autotts run`: a
2-layer Llama with a word-level vocabulary of a few hundred words, saved in
float64 so batched and unbatched generation agree token for token.

A purely random model would never stop and would answer noise, so a few
hidden channels are set by hand on top of the random weights: a constant
channel carries per-word logit biases (texts end at EOS after a few dozen
words), a "box open" channel restricts the word after ``\boxed{`` to a handful
of numbers, an attention-only "selector" channel makes which number depends on
the text so far, and an "answer written" channel closes the box. Probed answers
then vary between branches and intervals yet often agree: enough structure for
votes, early stops and prunes to happen in tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Words of the built-in corpus. The probe cue words ("Final", "answer:", "\boxed{", "}") must be here.
_WORDS = """Let us compute the value of x so that the sum equals the product of two numbers . First note that
the square of a number is never negative , hence the minimum is reached when both terms vanish . Consider the
triangle with sides a b and c ; by the law of cosines the angle opposite c is obtuse . We count the ways to
choose k objects from n , which is the binomial coefficient . Therefore the answer is the remainder when the
number is divided by 1000 . Suppose f is a function with f ( x + y ) = f ( x ) + f ( y ) ; then f is linear .
The probability that a random integer is even is one half , so the expected value is the mean . Wait , let me
check this again : maybe the previous step was wrong . Alternatively we can use modular arithmetic or
induction on n . So the final result follows . Final answer: \\boxed{ } = + - * / ^ ( ) \\frac{ { } sqrt pi
prime divisor digits sequence geometric arithmetic series limit polynomial root roots real complex circle
radius area perimeter volume cube sphere point line plane slope intercept vector matrix determinant graph
vertex edge path cycle tree color colors coin dice card cards game player wins loses probability odds ratio
percent integer integers rational irrational positive negative odd even greatest least common multiple
factor factors exponent logarithm base power sum difference quotient maximum minimum bound inequality
equality equation solve solution solutions unique exactly at most at least each every some none all"""
_NUMBERS = " ".join(str(i) for i in range(100))
SPECIALS = ("<unk>", "<pad>", "</s>")
# A chat template in the corpus' words, so chat requests render to text the word-level tokenizer reads.
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}Let us compute{% endif %}")

# Constant logit offsets: short numeric answers, "}" closes the box, EOS ends texts.
_BIAS = {"</s>": 2.7, "}": 2.0, "1": 4.0, "2": 3.9, "3": 3.8, "5": 3.7, "7": 3.6, "12": 3.5}
_ANSWERS = ("1", "2", "3", "5", "7", "12")
# Weight scales: layers, random word logits, typical size of a normalised channel, "}" after an answer,
# non-answers after "\boxed{", answer selector.
LAYER_STD, HEAD_STD, CHANNEL, CLOSE, SUPPRESS, SELECT_STD = 0.1, 0.3, 4.7, 6.0, 6.0, 6.0


def corpus() -> list[str]:
    """The built-in training text, one sentence per line."""
    return [line for line in (_WORDS + "\n" + _NUMBERS).splitlines() if line.strip()]


def build_tokenizer():
    """A word-level tokenizer trained on `corpus()`; text <-> tokens round-trips on whitespace-split words."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(corpus(), trainers.WordLevelTrainer(special_tokens=list(SPECIALS), min_frequency=1))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>",
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2, eos_bias: float | None = None,
                heads: int = 4, dtype: str = "float64"):
    """A random 2-layer Llama (float64 by default) with the hand-set channels of the module docstring."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=min(2, heads),
                         max_position_embeddings=1024, tie_word_embeddings=False, initializer_range=LAYER_STD,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    model = LlamaForCausalLM(config).to(torch.float64).eval()  # hand-set in float64, saved in `dtype`
    with torch.no_grad():
        _shape_logits(model.model.embed_tokens.weight, model.lm_head.weight, tokenizer, eos_bias)
        for layer in model.model.layers:
            layer.self_attn.v_proj.weight[:, :7] = 0.0  # attention carries word identity only ...
            layer.mlp.down_proj.weight[3:7, :] = 0.0  # ... and only attention writes the answer selector
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(getattr(torch, dtype))


def _shape_logits(emb, head, tokenizer, eos_bias: float | None = None) -> None:
    """Hand-set channels on top of random weights (dims: 0 constant, 1 answer written, 2 box open,
    3-6 answer selector written only by attention, 7+ random word identity)."""
    ids = tokenizer.convert_tokens_to_ids
    answers = [ids(w) for w in _ANSWERS]
    others = [i for i in range(emb.shape[0]) if i not in answers]
    emb.normal_(0.0, 0.5)
    head.normal_(0.0, HEAD_STD)
    emb[:, :7] = 0.0
    head[:, :7] = 0.0
    emb[:, 0] = 4.0
    emb[answers, 1] = 4.0
    emb[ids("\\boxed{"), 2] = 4.0
    emb[ids("\\boxed{"), 7:] = 0.0
    for word, bias in {**_BIAS, **({} if eos_bias is None else {"</s>": eos_bias})}.items():
        head[ids(word), 0] = bias / CHANNEL
    head[ids("}"), 1] = CLOSE / CHANNEL
    head[others, 2] = -SUPPRESS / CHANNEL
    head[answers, 3:7] = head.new_empty(len(answers), 4).normal_(0.0, SELECT_STD)


def make_tiny_model(outdir: str | Path, seed: int = 0, eos_bias: float | None = None, vllm: bool = False) -> Path:
    """Write model + tokenizer to `outdir` (loadable with `from_pretrained`); returns the path.

    `eos_bias` overrides the EOS logit offset (e.g. -30: branches always run to the token cap, for benchmarks).
    `vllm` writes the shape vLLM's CPU build accepts: float32, head_dim 64 (hidden 128, 2 heads, 2 layers).
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    shape = {"hidden": 128, "heads": 2, "dtype": "float32"} if vllm else {}
    build_model(tokenizer, seed, eos_bias=eos_bias, **shape).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="directory to write the model and tokenizer to")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    parser.add_argument("--eos-bias", type=float, default=None, help="EOS logit offset (default 2.7; -30 never ends)")
    parser.add_argument("--vllm", action="store_true", help="float32, head_dim 64 (hidden 128, 2 heads): loads in vLLM")
    args = parser.parse_args(argv)
    path = make_tiny_model(args.outdir, args.seed, args.eos_bias, args.vllm)
    print(f"tiny model written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
