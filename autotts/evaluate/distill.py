"""Distil a controller into short readable rules: one shallow decision tree per policy head.

The trees are fitted to the policy's own head decisions (mean mode, before
guards) on replayed episodes, over the named observation features and β, and
scored on held-out episodes: fidelity is the share of those decisions a tree
reproduces. Features are in the units of `autotts.controllers.features`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch

from autotts.controllers.features import BRANCH_FEATURES, POOL_FEATURES, policy_inputs
from autotts.controllers.learned import open_count
from autotts.env.rollout import rollout
from autotts.env.state import ACTIVE, index_tree
from autotts.evaluate.runner import protocol_episodes
from autotts.store.replay_store import ReplayStore

EPISODE_X = tuple(POOL_FEATURES) + ("beta",)
BRANCH_X = tuple(BRANCH_FEATURES) + tuple(f"pool.{n}" if n in BRANCH_FEATURES else n for n in POOL_FEATURES) + ("beta",)
HEADS = {"stop": EPISODE_X, "open": EPISODE_X, "width": EPISODE_X,
         "prune": BRANCH_X, "advance": BRANCH_X, "fast": BRANCH_X}


class DecisionRecorder:
    """Rollout recorder: features and the program's head decisions of every live episode, each round."""

    def __init__(self, controller: Any, beta: float):
        self.program = controller.engine.program
        self.max_open, self.beta = controller.spec.max_open, float(beta)
        self.samples: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {h: [] for h in HEADS}

    def on_state(self, state: Any, rows: torch.Tensor) -> None:
        pass

    def on_action(self, state: Any, action: Any, reasons: tuple[str, ...], rows: torch.Tensor) -> None:
        live = (~state.obs.done).nonzero().squeeze(1)
        if live.numel() == 0:
            return
        obs = index_tree(state.obs, live)
        px, bx = policy_inputs(obs)
        beta = torch.full((obs.num_episodes,), self.beta)
        with torch.no_grad():
            _, d = self.program.update(obs, {"beta": beta})
        ex = torch.cat([px, beta[:, None]], 1)
        episode = rows[live]
        self._add("stop", ex, d["stop"], episode)
        self._add("open", ex, d["open"], episode)
        opens = d["open"]
        self._add("width", ex[opens], open_count(d["width_p"], self.max_open)[opens], episode[opens])
        active = obs.status == ACTIVE
        b = bx.shape[1]
        brx = torch.cat([bx, px[:, None, :].expand(-1, b, -1), beta[:, None, None].expand(-1, b, 1)], 2)
        ep_b = episode[:, None].expand(-1, b)
        self._add("prune", brx[active], d["prune"][active], ep_b[active])
        self._add("advance", brx[active], d["advance"][active], ep_b[active])
        fast = active & d["advance"] & ~d["prune"]
        self._add("fast", brx[fast], d["fast"][fast], ep_b[fast])

    def _add(self, head: str, x: torch.Tensor, y: torch.Tensor, episode: torch.Tensor) -> None:
        if x.shape[0]:
            self.samples[head].append((x.cpu().double().numpy(), y.cpu().long().numpy(), episode.cpu().numpy()))


def decision_samples(controller: Any, stores: Sequence[ReplayStore], betas: Sequence[float], seeds: int,
                     protocol: str = "reference") -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per head: features X, decisions y, and a held-out mask (odd episodes) over all stores and β."""
    parts: dict[str, list] = {h: [] for h in HEADS}
    for store in stores:
        episodes = protocol_episodes(store, protocol, seeds)
        for beta in betas:
            rec = DecisionRecorder(controller, beta)
            rollout(store, episodes, controller.with_beta(beta), recorder=rec)
            for head, chunks in rec.samples.items():
                parts[head].extend(chunks)
    out = {}
    for head, chunks in parts.items():
        if chunks:
            x, y, ep = (np.concatenate([c[i] for c in chunks]) for i in range(3))
            out[head] = (x, y, ep % 2 == 1)
    return out


@dataclass(frozen=True)
class HeadRules:
    """A head's rule list: `default` unless one of `rules` (each "VALUE if CONDITIONS") applies."""

    head: str
    default: str
    rules: tuple[str, ...]
    fidelity: float        # share of held-out decisions the rules reproduce
    test_decisions: int
    train_decisions: int

    def as_dict(self) -> dict:
        return asdict(self)


def distil(samples: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], depth: int = 3) -> list[HeadRules]:
    """One decision tree of `depth` per head, fitted on even episodes, scored on odd ones."""
    from sklearn.tree import DecisionTreeClassifier

    out = []
    for head, names in HEADS.items():
        if head not in samples:
            continue
        x, y, test = samples[head]
        train = ~test if (~test).any() else test
        tree = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=max(5, int(0.01 * train.sum())),
                                      random_state=0).fit(x[train], y[train])
        held = test if test.any() else train
        fidelity = float((tree.predict(x[held]) == y[held]).mean())
        default, rules = _rules(tree, names, head)
        out.append(HeadRules(head, default, tuple(rules), fidelity, int(held.sum()), int(train.sum())))
    return out


def _label(head: str, value: int) -> str:
    return f"open {value}" if head == "width" else ("yes" if value else "no")


def _rules(tree: Any, names: Sequence[str], head: str) -> tuple[str, list[str]]:
    """(default label, ["LABEL if CONDITIONS  [n]", ...]): leaves whose class is not the default, largest first."""
    t = tree.tree_
    classes = tree.classes_

    def walk(node: int) -> tuple:
        if t.children_left[node] < 0:
            return ("leaf", int(classes[int(np.argmax(t.value[node][0]))]), int(t.n_node_samples[node]))
        left, right = walk(t.children_left[node]), walk(t.children_right[node])
        if left[0] == right[0] == "leaf" and left[1] == right[1]:  # a split that changes nothing
            return ("leaf", left[1], left[2] + right[2])
        return ("split", int(t.feature[node]), float(t.threshold[node]), left, right)

    leaves: list[tuple[list, int, int]] = []

    def collect(node: tuple, conds: list) -> None:
        if node[0] == "leaf":
            leaves.append((conds, node[1], node[2]))
            return
        _, f, thr, left, right = node
        collect(left, conds + [(f, "<=", thr)])
        collect(right, conds + [(f, ">", thr)])

    collect(walk(0), [])
    support: dict[int, int] = {}
    for _, cls, n in leaves:
        support[cls] = support.get(cls, 0) + n
    default = max(support, key=support.get)
    rules = [f"{_label(head, cls)} if {_conditions(conds, names)}  [{n}]"
             for conds, cls, n in sorted(leaves, key=lambda leaf: -leaf[2]) if cls != default]
    return _label(head, default), rules


def _conditions(conds: list[tuple[int, str, float]], names: Sequence[str]) -> str:
    """Tightest bounds per feature: "0.2 < depth <= 0.5 and beta > 0.4"."""
    low: dict[int, float] = {}
    high: dict[int, float] = {}
    order: list[int] = []
    for f, op, thr in conds:
        if f not in order:
            order.append(f)
        if op == ">":
            low[f] = max(low.get(f, -np.inf), thr)
        else:
            high[f] = min(high.get(f, np.inf), thr)
    parts = []
    for f in order:
        lo, hi = low.get(f), high.get(f)
        if lo is not None and hi is not None:
            parts.append(f"{lo:.3g} < {names[f]} <= {hi:.3g}")
        elif lo is not None:
            parts.append(f"{names[f]} > {lo:.3g}")
        else:
            parts.append(f"{names[f]} <= {hi:.3g}")
    return " and ".join(parts)
