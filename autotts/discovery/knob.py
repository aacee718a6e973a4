"""The β knob's contract: more β buys more tokens and never lower accuracy (issue 11 item 3).

`knob_rule` is the ONE definition of it: on the β grid, tokens strictly rise on
every store; on each split's mean accuracy no β step loses more than
`tolerance` points; on every store β = 1 is within `tolerance` points of that
store's best β. Validation uses it to choose the exported generation
(`Validator`, `DiscoveryModule.validate`) and export records it
(`monotone_check`, the manifest's ``monotone_check.knob``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

KNOB_TOLERANCE = 0.5  # accuracy points a β step (split mean) or β = 1 (per store, against its best β) may lose


def split_of(spec: str) -> str:
    """The split a store spec belongs to: ``Qwen3-8B/aime25`` -> aime25, ``shifted:Qwen3-8B`` -> shifted."""
    if ":" in spec:
        return spec.split(":", 1)[0]
    return spec.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]


def knob_rule(betas: Sequence[float], stores: Mapping[str, Mapping[str, Sequence[float]]],
              splits: Mapping[str, str] | None = None, tolerance: float = KNOB_TOLERANCE) -> dict:
    """Whether a β-sweep keeps the knob's contract; every figure a verdict rests on (JSON-ready).

    `stores` maps a store name to its sweep (``tokens`` and ``accuracy`` in percent, one per β of
    `betas`, ascending); `splits` maps each store name to its split (default: one split, ``all``).
    """
    order = sorted(range(len(betas)), key=lambda i: betas[i])
    if list(order) != list(range(len(betas))) or len(betas) < 2:
        raise ValueError(f"knob_rule needs an ascending grid of >= 2 β values, got {list(betas)}")
    out: dict = {"tolerance": tolerance, "stores": {}, "splits": {}, "failures": []}
    for name, sweep in stores.items():
        tok, acc = list(sweep["tokens"]), list(sweep["accuracy"])
        rises = all(b > a for a, b in zip(tok, tok[1:]))
        best = max(range(len(acc)), key=lambda i: (acc[i], -i))
        gap = acc[best] - acc[-1]
        ok = rises and gap <= tolerance + 1e-9
        out["stores"][name] = {"tokens_rise": rises, "best_beta": betas[best], "top_gap": gap, "holds": ok}
        if not rises:
            at = next(betas[i + 1] for i in range(len(tok) - 1) if tok[i + 1] <= tok[i])
            out["failures"].append(f"{name}: tokens do not rise at β={at:g}")
        if gap > tolerance + 1e-9:
            out["failures"].append(f"{name}: β=1 is {gap:.2f} points below β={betas[best]:g}")
    groups: dict[str, list[str]] = {}
    for name in stores:
        groups.setdefault((splits or {}).get(name, "all"), []).append(name)
    for split, names in groups.items():
        mean = [sum(stores[n]["accuracy"][i] for n in names) / len(names) for i in range(len(betas))]
        steps = [a - b for a, b in zip(mean, mean[1:])]  # accuracy lost by each β step
        worst = max(range(len(steps)), key=lambda i: steps[i])
        ok = steps[worst] <= tolerance + 1e-9
        out["splits"][split] = {"stores": names, "accuracy": mean, "worst_step": max(0.0, steps[worst]),
                                "worst_step_at": betas[worst + 1], "holds": ok}
        if not ok:
            out["failures"].append(f"{split}: mean accuracy loses {steps[worst]:.2f} points from "
                                   f"β={betas[worst]:g} to β={betas[worst + 1]:g}")
    out["holds"] = not out["failures"]
    return out


def unique_name(taken: Mapping, name: str) -> str:
    """`name`, or `name#2`, `name#3`... if taken (two stores may share a name)."""
    key, i = name, 2
    while key in taken:
        key, i = f"{name}#{i}", i + 1
    return key
