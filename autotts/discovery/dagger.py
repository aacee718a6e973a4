"""DAgger for the warm start: the teachers label the states the *learner* reaches.

Imitation on the teacher's own episodes never shows the heads the states their
own mistakes lead to (the math preset's start idles at low β, a state CMC never
reaches). Here the learner drives the episodes and a shadow teacher, fed the same
observations, says what it would do; the samples join the teacher's own and the
heads are refitted. Off by default: on the math preset it made the start worse,
and its labels showed that the idling was `keep_active`'s (docs/discovery_diagnosis.md, item 10).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from autotts.controllers.learned import ActionSpec, GuardSpec, policy_controller
from autotts.controllers.policy import PolicyShape
from autotts.discovery.imitation import ImitationConfig, _Collector, explicit, pool_samples, teacher
from autotts.env.batched import step
from autotts.env.episodes import Episodes, random_episodes
from autotts.env.rollout import rollout
from autotts.env.state import Action, EnvState, index_tree
from autotts.store.replay_store import ReplayStore


class _Shadow:
    """Recorder on the learner's rollout that asks the teacher what it would do in each state.

    The teacher's memory (CMC's confidence EMA, disagreement counts) follows the
    observations the learner produces; its rows are kept per episode id, since the
    rollout compacts finished episodes away. A teacher round that only opens is
    completed by its next decision on the state after the opening (the policy opens
    and reads in one round), stepped on a copy.
    """

    def __init__(self, store: ReplayStore, program: Any, collector: _Collector):
        self.store, self.program, self.col = store, program, collector
        self.memory: Any = None

    def on_state(self, state: EnvState, rows: Tensor) -> None:
        if self.memory is None:
            with torch.inference_mode():
                self.memory = self.program.init(state.obs)

    def on_action(self, state: EnvState, action: Action, reasons: tuple[str, ...], rows: Tensor) -> None:
        with torch.inference_mode():
            mine, memory = self.program.act(state.obs, index_tree(self.memory, rows))
            _scatter(self.memory, rows, memory)
            mine = self._complete_opens(state, mine, memory)
        self.col.on_action(state, mine, self.program.reasons, rows)

    def _complete_opens(self, state: EnvState, mine: Action, memory: Any) -> Action:
        obs = state.obs
        advance, prune, opened = explicit(mine, obs)
        only = (~obs.done & ~mine.stop & (opened > 0) & ~(advance > 0).any(1)).nonzero().squeeze(1)
        if only.numel() == 0:
            return mine
        after = step(self.store, index_tree(state, only), index_tree(mine, only))
        nxt, _ = self.program.act(after.obs, index_tree(memory, only))
        advance, prune = advance.clone(), prune.clone()
        if nxt.advance is not None:
            advance[only] = nxt.advance.to(advance.dtype)
        if nxt.prune is not None:
            prune[only] = nxt.prune
        return Action(stop=mine.stop, answer=mine.answer, prune=prune, advance=advance, open=opened)


def _scatter(full: Any, rows: Tensor, part: Any) -> None:
    """Write the rows `rows` of a (nested dict of) memory tensors back into the full-batch memory."""
    if isinstance(full, Tensor):
        if full.dim() > 0:
            full[rows] = part
    elif isinstance(full, dict):
        for k, v in full.items():
            _scatter(v, rows, part[k])


def relabel(stores: list[ReplayStore], weights: Tensor, shape: PolicyShape, spec: ActionSpec,
            guards: tuple[GuardSpec, ...], cfg: ImitationConfig, generator: torch.Generator) -> dict[str, Tensor]:
    """Features of the states the policy `weights` reaches at each β, labelled with the teachers' decisions."""
    parts = []
    for name in cfg.teachers:
        for store in stores:
            for beta in cfg.betas:
                eps = random_episodes(store, cfg.episodes_per_store, generator, max_branches=spec.slots)
                learner = policy_controller(weights, shape, spec, guards)
                parts.extend(shadow_samples(store, eps, learner, {"beta": torch.full((len(eps),), beta)},
                                            teacher(name, beta, spec.slots), beta, spec, cfg.keep, generator))
    return pool_samples(parts)


def shadow_samples(store: ReplayStore, episodes: Episodes, driver: Any, context: dict[str, Tensor] | None,
                   program: Any, beta: float, spec: ActionSpec, keep: float,
                   generator: torch.Generator) -> list[dict[str, Tensor]]:
    """Samples of the states `driver` reaches, labelled with what `program` (the teacher at β) would do."""
    col = _Collector(beta, spec, keep, generator, hold_opens=False)
    rollout(store, episodes, driver, context=context, recorder=_Shadow(store, program, col))
    return col.parts
