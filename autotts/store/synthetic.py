"""Seeded synthetic replay stores with the statistics of the public AutoTTS stores.

Tests, examples and CI need stores that behave like the real ones without
shipping them. The generator draws, per question: a difficulty (the share of
branches whose final is gold; some questions are never solved, some always),
a few wrong *attractor* answers plus a long tail of one-off junk finals
('ERR', big integers, partial expressions), and per branch a thinking length
(harder questions and wrong branches think longer) that is cut at a thinking
cap, plus a short answer tail. A branch cut at the cap is almost always wrong
and its length lands just above the cap (41,0xx-41,5xx tokens at the default).
Probes are a sticky random walk over the question's intermediate answers
(shared by its branches), with one-off 'ERR' glitches, that settles on the
branch's final answer at a random late point; the last probe is always the
final, as in every public branch. The probe count is ``ceil(thinking/Δ)``,
capped, so ``Δ·probes > length`` in the share of branches whose answer tail is
shorter than the unfinished last interval (the public stores' quirk).

The defaults are fitted to the 8 public stores (4 Qwen3 models x AIME24/25)
with ``scripts/fit_synthetic.py``; both sides pooled by question, the synthetic
side being the default 30 x 128 store at seeds 0-7::

    figure                            public (range over stores)   synthetic
    mean branch length (tokens)       15,602 (13,851..17,567)        14,772
    length q10 / q50 / q90             4,732 / 13,962 / 28,172        5,209 / 12,696 / 27,295
    share within Δ of the cap          0.020 (0.009..0.035)           0.023
    accuracy near cap / below          0.032 / 0.495                  0.029 / 0.519
    mean probes per branch             30.2  (27.0..34.1)             28.5
    share with Δ·K > L                 0.169 (0.130..0.210)           0.162
    question accuracy q25/q50/q75      0.016 / 0.520 / 0.930          0.082 / 0.488 / 0.938
    questions never / always right     0.204 / 0.129                  0.183 / 0.108
    SC@1 / SC@64 accuracy              0.486 / 0.601                  0.507 / 0.621
    distinct finals (mean / median)    24.3 / 19                      25.2 / 18.5
    corr(accuracy, mean length)        -0.58 (-0.88..-0.39)           -0.74
    wrong / right length (median q)    1.52                           1.47
    probe equals previous probe        0.628                          0.621
    probe not any branch's final       0.431                          0.454
    distinct probes per branch         6.68                           6.71
    probe == final by decile of branch .04 .07 .10 .14 .18 .25 .32 .41 .56 .80
                                       .03 .05 .08 .12 .17 .24 .34 .44 .58 .79

`PUBLIC_TARGETS` holds the public figures with the tolerance the tests allow. `autotts.store.shifted`
holds the same generator refitted to a harder benchmark (HMMT25), one store per Qwen3 model
(`shifted_specs()`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from autotts.errors import AutottsError
from autotts.store.replay_store import ReplayStore, build_store

# public figure (pooled, `autotts.store.stats.store_stats`) -> (value, tolerance for the synthetic default)
PUBLIC_TARGETS: dict[str, tuple[float, float]] = {
    "mean_length": (15602.4, 1600), "length_q10": (4732.0, 800), "length_q50": (13962.0, 1600),
    "length_q90": (28172.4, 2000), "share_near_cap": (0.020, 0.01), "acc_near_cap": (0.032, 0.03),
    "acc_below_cap": (0.495, 0.05), "mean_probes": (30.24, 3.0), "share_overshoot": (0.169, 0.03),
    "acc_q25": (0.016, 0.1), "acc_q50": (0.520, 0.12), "acc_q75": (0.930, 0.08),
    "share_q_acc0": (0.204, 0.06), "share_q_acc1": (0.129, 0.06), "sc1": (0.486, 0.05), "sc64": (0.601, 0.06),
    "distinct_finals_mean": (24.25, 4.0), "distinct_finals_median": (19.0, 5.0), "corr_acc_length": (-0.583, 0.2),
    "wrong_right_length": (1.515, 0.15), "probe_same_prev": (0.628, 0.03), "probe_not_final": (0.431, 0.05),
    "probe_first_agree": (0.029, 0.02), "distinct_probes_branch": (6.675, 0.5),
    **{f"agree_d{d}": (v, 0.04) for d, v in enumerate((0.040, 0.065, 0.099, 0.139, 0.180,
                                                        0.248, 0.320, 0.414, 0.556, 0.799))},
}
COMMON_JUNK = ("No", "100", "1000", "12", "10", "2", "0", "1", "2025", "000", "13", "25")
ERR = "ERR"


@dataclass(frozen=True)
class SyntheticParams:
    """Knobs of the generator; defaults fitted to the public stores (see module docstring)."""

    # difficulty: share of branches whose final is gold
    unsolved: float = 0.18  # share of questions whose branches are never right
    solved: float = 0.09  # share of questions whose branches are always right (unless cut)
    difficulty_a: float = 0.6  # Beta(a, b) gold share of the other questions
    difficulty_b: float = 0.45
    # wrong finals
    attractors: float = 2.5  # mean number of wrong attractor answers beyond the first
    attractor_concentration: float = 1.0  # Dirichlet weight of each attractor
    tail_a: float = 2.0  # Beta(a, b) share of wrong finals in the tail (not an attractor)
    tail_b: float = 3.6
    tail_intermediate: float = 0.15  # share of tail finals that are one of the question's intermediate answers
    err_final: float = 0.06  # share of one-off junk finals that are 'ERR'
    # lengths
    length_easy: float = 8.62  # log thinking tokens of a right branch on an always-solved question
    length_hard: float = 0.85  # added for a never-solved question, times (1 - gold share) ** power
    length_hard_power: float = 0.3  # < 1: any unreliability makes a question think long
    length_question_cv: float = 0.36  # question factor 1 + cv * N(0, 1), floored at 0.25: few very long questions
    length_branch_scale: float = 0.23  # branch log-length noise: scale * Student-t (heavy tails both ways)
    length_branch_df: float = 3.0
    wrong_shift: float = 0.41  # wrong branches think exp(shift) = 1.5 times longer
    think_cap: int = 40_960  # thinking tokens at which a branch is cut
    answer_median: float = 560.0  # tokens after thinking (lognormal)
    answer_sd: float = 0.75
    cut_answer: tuple[int, int] = (40, 550)  # forced answer tokens after a cut (uniform)
    cut_right: float = 0.3  # chance a cut branch keeps its right answer
    cut_probe_drop: tuple[float, ...] = (0.13, 0.31, 0.2, 0.13, 0.12, 0.095, 0.015)  # pmf of max_probes - K if cut
    # probes
    settle_a: float = 2.2  # Beta(a, b) relative position where a branch settles on its final
    settle_b: float = 1.0
    stay: float = 0.74  # chance a probe repeats the previous one before settling
    err_glitch: float = 0.07  # chance a probe reads 'ERR' (one-off)
    relapse: float = 0.22  # chance a probe after settling still shows the walk's answer
    intermediates: int = 15  # mean number of intermediate answers per question
    pool_intermediate: float = 0.5  # mixture of a probe draw while walking
    pool_wrong_final: float = 0.15
    pool_gold: float = 0.01  # scaled by the question's gold share
    pool_common: float = 0.18
    pool_fresh: float = 0.015  # one-off junk never seen again


PROBABILITIES = ("unsolved", "solved", "tail_intermediate", "err_final", "cut_right", "stay", "err_glitch",
                 "relapse", "pool_fresh")
SPEC_INTS = ("questions", "branches", "delta", "seed", "max_probes", "intermediates", "think_cap")


def synthetic_store(questions: int = 30, branches: int = 128, delta: int = 500, seed: int = 0,
                    max_probes: int | None = None, params: SyntheticParams | None = None,
                    **overrides: float) -> ReplayStore:
    """A store of `questions` x `branches`, probe interval `delta`, deterministic in `seed`.

    `max_probes` defaults to ``40000 // delta`` (80 at Δ=500, as in the public stores);
    keyword `overrides` replace fields of `params` (e.g. ``unsolved=0.5``).
    """
    params = replace(params or SyntheticParams(), **overrides)
    _check(questions, branches, delta, max_probes, params)
    k_max = max_probes or max(1, 40_000 // delta)
    rng = np.random.default_rng(seed)
    try:
        records = [_question(rng, params, branches, delta, k_max, f"synthetic question {q} (seed {seed})")
                   for q in range(questions)]
    except ValueError as err:  # numpy rejects e.g. a Beta parameter of 0
        raise AutottsError(f"synthetic store: invalid parameters ({err})") from None
    args = {"questions": questions, "branches": branches, "delta": delta, "seed": seed, **overrides}
    source = "synthetic:" + ",".join(f"{k}={v}" for k, v in args.items())
    return build_store(records, model="synthetic", dataset=f"seed{seed}", source=source)


def shifted_specs() -> list[str]:
    """Store specs of the four shifted stores (this generator fitted to HMMT25 per Qwen3 model), e.g. for validation."""
    from autotts.store.shifted import shifted_specs as specs
    return specs()


def _check(questions: int, branches: int, delta: int, max_probes: int | None, params: SyntheticParams) -> None:
    """One-line errors for sizes and parameters numpy would accept but the model cannot."""
    for name, value in (("questions", questions), ("branches", branches), ("delta", delta),
                        ("max_probes", max_probes or 1)):
        if value < 1:
            raise AutottsError(f"synthetic store: {name}={value} must be a positive integer")
    for f in fields(params):
        value = getattr(params, f.name)
        if isinstance(value, (int, float)) and not (0 <= value < float("inf")):
            raise AutottsError(f"synthetic store: {f.name}={value} must be a finite number >= 0")
        if f.name in PROBABILITIES and value > 1:
            raise AutottsError(f"synthetic store: {f.name}={value} is a probability (expected 0..1)")
    if params.unsolved + params.solved > 1:
        raise AutottsError(f"synthetic store: unsolved + solved = {params.unsolved + params.solved} exceeds 1")


def synthetic_from_spec(spec: str) -> ReplayStore:
    """``synthetic[:key=value,...]`` -> `synthetic_store`; keys are its arguments and `SyntheticParams` fields."""
    head, _, body = spec.partition(":")
    if head.strip() != "synthetic":
        raise AutottsError(f"store spec '{spec}': expected 'synthetic' or 'synthetic:key=value,...'")
    floats = {f.name for f in fields(SyntheticParams) if f.type in ("float", float)}
    known = set(SPEC_INTS) | floats
    kwargs: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, sep, value = (x.strip() for x in item.partition("="))
        if not sep:
            raise AutottsError(f"synthetic store spec '{spec}': '{item}' is not key=value")
        if key not in known:
            raise AutottsError(f"synthetic store spec '{spec}': unknown key '{key}' "
                               f"(expected key=value with key in: {', '.join(sorted(known))})")
        try:
            kwargs[key] = int(value) if key in SPEC_INTS else float(value)
        except ValueError:
            kind = "an integer" if key in SPEC_INTS else "a number"
            raise AutottsError(f"synthetic store spec '{spec}': {key}={value!r} is not {kind}") from None
    return synthetic_store(**kwargs)


def _question(rng: np.random.Generator, p: SyntheticParams, n: int, delta: int, k_max: int, text: str) -> dict:
    """One AutoTTS record."""
    share = _gold_share(rng, p)
    words = _Words()
    gold = words.add([str(rng.integers(0, 1000))])[0]
    n_attr = 1 + rng.poisson(p.attractors)
    attractors = words.add(_attractor_strings(rng, n_attr, words.items[gold]))
    inter = words.add(_intermediate_strings(rng, 1 + rng.poisson(p.intermediates - 1), words.items[gold]))
    correct = rng.random(n) < share
    scale = max(0.25, 1 + p.length_question_cv * rng.standard_normal())  # linear: few very long questions
    think = scale * np.exp(p.length_easy + p.length_hard * (1 - share) ** p.length_hard_power
                           + p.wrong_shift * ~correct + p.length_branch_scale * rng.standard_t(p.length_branch_df, n))
    length, n_probes, cut = _lengths(rng, p, think, delta, k_max)
    correct &= ~cut | (rng.random(n) < p.cut_right)
    final = _finals(rng, p, words, correct, gold, attractors, inter)
    probes = _probes(rng, p, words, share, final, n_probes, gold, attractors, inter)
    items = words.items
    flat = [items[i] for i in probes[np.arange(probes.shape[1]) < n_probes[:, None]].tolist()]
    ends = np.cumsum(n_probes).tolist()
    each = [[flat[e - c: e], tok, items[f]]
            for e, c, tok, f in zip(ends, n_probes.tolist(), length.tolist(), final.tolist())]
    return {"question": text, "gold_answer": words.items[gold], "probe_freq": delta,
            "each_branch": each, "final_answers_trace": [b[2] for b in each]}


def _gold_share(rng: np.random.Generator, p: SyntheticParams) -> float:
    u = rng.random()
    if u < p.unsolved:
        return 0.0
    if u < p.unsolved + p.solved:
        return 1.0
    return float(rng.beta(p.difficulty_a, p.difficulty_b))


def _finals(rng: np.random.Generator, p: SyntheticParams, words: "_Words", correct: np.ndarray,
            gold: int, attractors: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """Final answer ids: gold, an attractor (Dirichlet weights), an intermediate answer, or one-off junk."""
    n = correct.size
    weights = rng.dirichlet(np.full(attractors.size, p.attractor_concentration))
    final = attractors[rng.choice(attractors.size, size=n, p=weights)]
    tail = ~correct & (rng.random(n) < rng.beta(p.tail_a, p.tail_b))
    stalled = tail & (rng.random(n) < p.tail_intermediate)
    final[stalled] = inter[rng.choice(inter.size, size=int(stalled.sum()), p=_zipf(inter.size))]
    junk = tail & ~stalled
    err = junk & (rng.random(n) < p.err_final)
    final[junk & ~err] = words.add(_junk(rng, int((junk & ~err).sum())))
    final[err] = words.add([ERR])[0]
    final[correct] = gold
    return final


def _lengths(rng: np.random.Generator, p: SyntheticParams, think: np.ndarray, delta: int,
             k_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Branch tokens, probe counts and which branches were cut.

    A branch is thinking + an answer tail; one that would run past the cap plus
    a short forced answer is cut there (so no branch is longer than the cap + 550).
    """
    n = think.size
    think = np.round(think).astype(np.int64)
    answer = np.round(p.answer_median * np.exp(p.answer_sd * rng.standard_normal(n))).astype(np.int64)
    forced = rng.integers(p.cut_answer[0], p.cut_answer[1] + 1, size=n)
    cut = think + answer > p.think_cap + forced
    length = np.where(cut, p.think_cap + forced, think + answer)
    drop = rng.choice(len(p.cut_probe_drop), size=n, p=np.asarray(p.cut_probe_drop) / sum(p.cut_probe_drop))
    n_probes = np.where(cut, k_max - drop, np.clip(-(-think // delta), 1, k_max)).clip(min=1)
    return length, n_probes, cut


def _probes(rng: np.random.Generator, p: SyntheticParams, words: "_Words", share: float, final: np.ndarray,
            n_probes: np.ndarray, gold: int, attractors: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """[N, K] probe ids: a sticky walk over the question's pool that settles on the final."""
    n, k_max = final.size, int(n_probes.max())
    common = words.add(list(COMMON_JUNK))
    err = words.add([ERR])[0]
    pool = np.concatenate([inter, attractors, [gold], common])
    mix = np.concatenate([_zipf(inter.size) * p.pool_intermediate, _zipf(attractors.size) * p.pool_wrong_final,
                          [p.pool_gold * share], _zipf(common.size) * p.pool_common])
    draw = pool[rng.choice(pool.size, size=(n, k_max), p=mix / mix.sum())]
    k = np.arange(k_max)[None, :]
    settle = np.minimum((rng.beta(p.settle_a, p.settle_b, size=n) * n_probes).astype(np.int64), n_probes - 1)
    walking = k < settle[:, None]
    fresh = walking & (rng.random((n, k_max)) < p.pool_fresh)
    draw[fresh] = words.add(_junk(rng, int(fresh.sum())))
    switch = rng.random((n, k_max)) >= p.stay
    switch[:, 0] = True
    walk = np.take_along_axis(draw, np.maximum.accumulate(np.where(switch, k, 0), axis=1), axis=1)
    shown = walking | (rng.random((n, k_max)) < p.relapse)
    probes = np.where(shown & (k < n_probes[:, None] - 1), walk, final[:, None])
    glitch = (rng.random((n, k_max)) < p.err_glitch) & (k < n_probes[:, None] - 1)
    probes[glitch] = err
    return probes


class _Words:
    """The question's answer strings; `add` returns their ids (equal strings share an id)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._ids: dict[str, int] = {}

    def add(self, strings: list[str]) -> np.ndarray:
        ids = np.empty(len(strings), dtype=np.int64)
        for i, s in enumerate(strings):
            j = self._ids.get(s)
            if j is None:
                j = self._ids[s] = len(self.items)
                self.items.append(s)
            ids[i] = j
        return ids


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def _attractor_strings(rng: np.random.Generator, n: int, gold: str) -> list[str]:
    """Distinct plausible wrong answers (AIME-style integers, sometimes a fraction), never the gold."""
    out: dict[str, None] = {}
    while len(out) < n:
        a = int(rng.integers(0, 1000))
        s = str(a) if rng.random() < 0.9 else f"\\frac{{{a}}}{{{int(rng.integers(2, 20))}}}"
        if s != gold:
            out[s] = None
    return list(out)


def _intermediate_strings(rng: np.random.Generator, n: int, gold: str) -> list[str]:
    """Answers a branch holds mid-way: integers and partial expressions, never the gold itself."""
    nums = rng.integers(0, 2000, size=(n, 3))
    nums[nums[:, 0] == int(gold), 0] += 2000  # a branch that stalls on one of these stays wrong
    forms = rng.integers(0, 4, size=n)
    templates = ("{0}", "{0} + {1}", "{0} + {1}\\sqrt{{{2}}}", "{0} + E[X_{1}]")
    return [templates[f].format(*row) for f, row in zip(forms, nums.tolist())]


def _junk(rng: np.random.Generator, n: int) -> list[str]:
    """One-off junk answers: big integers, fractions and partial expressions (never an AIME-range integer)."""
    nums = rng.integers(1000, 100_000, size=(n, 2))
    forms = rng.integers(0, 4, size=n)
    templates = ("{0}", "\\frac{{{0}}}{{{1}}}", "{0} - 2rs", "x = {1}")
    return [templates[f].format(*row) for f, row in zip(forms, nums.tolist())]
