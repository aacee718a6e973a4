"""Summary statistics of replay stores: what the synthetic generator is fitted to.

One function, `store_stats`, computes every figure from the store tensors so
that the fit script, the synthetic generator's tests and anyone comparing a
new store with the public ones read the same numbers. Stores are pooled by
question (each question counts once, whatever store it comes from).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autotts.store.replay_store import ReplayStore

ACC_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
LENGTH_QUANTILES = (0.1, 0.5, 0.9)
DECILES = 10
SC_SUBSETS = 32  # random 64-branch subsets per question for SC@64


def store_stats(stores: ReplayStore | Sequence[ReplayStore], seed: int = 0) -> dict[str, float]:
    """Figures of one store or of several pooled (flat dict, name -> value)."""
    stores = [s.to("cpu") for s in ([stores] if isinstance(stores, ReplayStore) else stores)]
    parts = [_arrays(s) for s in stores]
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    rng = np.random.default_rng(seed)
    sc64 = np.concatenate([_sc_accuracy(s, 64, rng) for s in stores])
    return _summarise(cat, sc64)


def _arrays(store: ReplayStore) -> dict[str, np.ndarray]:
    """Per-branch and per-question numpy arrays of one store (valid branches only)."""
    nb = store.n_branches.numpy()
    valid = np.arange(store.max_branches)[None, :] < nb[:, None]
    length = store.length.numpy()
    n_probes = store.n_probes.numpy()
    final = store.final.numpy()
    delta = store.delta.numpy()[:, None]
    correct = final == store.gold.numpy()[:, None]
    near_cap = length >= length[valid].max() - delta  # within one interval of the longest branch
    acc_q = (correct & valid).sum(1) / nb
    mean_len_q = np.where(valid, length, 0).sum(1) / nb
    return {
        "length": length[valid], "n_probes": n_probes[valid], "correct": correct[valid],
        "near_cap": near_cap[valid], "overshoot": (delta * n_probes > length)[valid],
        "acc_q": acc_q, "mean_len_q": mean_len_q, "ratio_q": _wrong_right_ratio(length, correct, valid),
        "distinct_q": store.n_final_ids.numpy().astype(float),
        **_probe_arrays(store),
    }


def _wrong_right_ratio(length: np.ndarray, correct: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per question with 10-90 % accuracy: geometric-mean length of wrong over right branches."""
    out = []
    for q in range(length.shape[0]):
        c, v = correct[q][valid[q]], np.log(length[q][valid[q]].clip(min=1))
        if 0.1 < c.mean() < 0.9:
            out.append(np.exp(v[~c].mean() - v[c].mean()))
    return np.asarray(out, dtype=float)


def _probe_arrays(store: ReplayStore) -> dict[str, np.ndarray]:
    """Per-probe figures: agreement with the final by relative position, runs, junk share."""
    probes = store.probes.numpy()
    n_probes = store.n_probes.numpy()
    k = np.arange(store.max_probes)
    has = k[None, None, :] < n_probes[..., None]
    rel = np.minimum(DECILES - 1, (DECILES * k[None, None, :]) // np.maximum(n_probes, 1)[..., None])
    agree = probes == store.final.numpy()[..., None]
    same_prev = has[..., 1:] & (probes[..., 1:] == probes[..., :-1])
    not_final = probes >= store.n_final_ids.numpy()[:, None, None]  # ids past the finals: probe-only answers
    ordered = np.sort(np.where(has, probes, -1), axis=-1)  # padding (-1) sorts first
    ordered = np.concatenate([np.full(ordered.shape[:-1] + (1,), -1), ordered], axis=-1)
    distinct = (ordered[..., 1:] != ordered[..., :-1]).sum(-1)[n_probes > 0].astype(float)
    return {
        "agree_sum": np.bincount(rel[has], weights=agree[has], minlength=DECILES)[None, :],
        "agree_cnt": np.bincount(rel[has], minlength=DECILES)[None, :],
        "same_prev": np.array([same_prev.sum(), has[..., 1:].sum()])[None, :],
        "not_final": np.array([not_final[has].sum(), has.sum()])[None, :],
        "first_agree": np.array([agree[..., 0][n_probes > 0].sum(), (n_probes > 0).sum()])[None, :],
        "distinct_branch": distinct,
    }


def _sc_accuracy(store: ReplayStore, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per question: accuracy of the majority of `n` random branches (ties: first in the draw)."""
    out = []
    for q in range(store.num_questions):
        nb, votes = int(store.n_branches[q]), int(store.n_final_ids[q])
        size = min(n, nb)
        draws = rng.permuted(np.tile(np.arange(nb), (SC_SUBSETS, 1)), axis=1)[:, :size]
        cell = store.final[q, :nb].numpy()[draws] + votes * np.arange(SC_SUBSETS)[:, None]
        counts = np.bincount(cell.ravel(), minlength=votes * SC_SUBSETS).reshape(SC_SUBSETS, votes)
        first = np.full(votes * SC_SUBSETS, size)
        np.minimum.at(first, cell.ravel(), np.tile(np.arange(size), SC_SUBSETS))
        winner = np.argmax(counts * (size + 1) - first.reshape(SC_SUBSETS, votes), axis=1)
        out.append((winner == int(store.gold[q])).mean())
    return np.asarray(out)


def _summarise(a: dict[str, np.ndarray], sc64: np.ndarray) -> dict[str, float]:
    ratio = a["ratio_q"]
    out = {
        "mean_length": a["length"].mean(),
        **{f"length_q{int(q * 100)}": np.quantile(a["length"], q) for q in LENGTH_QUANTILES},
        "share_near_cap": a["near_cap"].mean(),
        "acc_near_cap": a["correct"][a["near_cap"]].mean() if a["near_cap"].any() else float("nan"),
        "acc_below_cap": a["correct"][~a["near_cap"]].mean(),
        "mean_probes": a["n_probes"].mean(),
        "share_overshoot": a["overshoot"].mean(),
        **{f"acc_q{int(q * 100)}": np.quantile(a["acc_q"], q) for q in ACC_QUANTILES},
        "share_q_acc0": (a["acc_q"] == 0).mean(),
        "share_q_acc1": (a["acc_q"] == 1).mean(),
        "sc1": a["acc_q"].mean(),
        "sc64": sc64.mean(),
        "distinct_finals_mean": a["distinct_q"].mean(),
        "distinct_finals_median": np.median(a["distinct_q"]),
        "corr_acc_length": np.corrcoef(a["acc_q"], a["mean_len_q"])[0, 1],
        "wrong_right_length": np.median(ratio) if ratio.size else float("nan"),
        "probe_same_prev": _ratio(a["same_prev"]),
        "probe_not_final": _ratio(a["not_final"]),
        "probe_first_agree": _ratio(a["first_agree"]),
        "distinct_probes_branch": a["distinct_branch"].mean(),
    }
    agree = a["agree_sum"].sum(0) / np.maximum(a["agree_cnt"].sum(0), 1)
    out.update({f"agree_d{d}": agree[d] for d in range(DECILES)})
    return {k: float(v) for k, v in out.items()}


def _ratio(pairs: np.ndarray) -> float:
    num, den = pairs.sum(0)
    return num / den if den else float("nan")
