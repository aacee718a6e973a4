"""The hand-made baselines and the published discovered controller, as rule programs.

`make_baseline(name, knob)` builds one with the knob the reference sweep varies
(a scalar, or one value per episode: a whole sweep as one rollout); the other
parameters are the ones `reference/reference_sweep.csv` was run with.
"""

from __future__ import annotations

from autotts.controllers.baselines.cmc import CMC
from autotts.controllers.baselines.full_reads import AdaptiveConsistency, EarlyStoppingConsistency, SelfConsistency
from autotts.controllers.baselines.knobs import Knob
from autotts.controllers.baselines.parallel_probe import ParallelProbe
from autotts.controllers.rules import RuleEngine
from autotts.errors import AutottsError

# name -> (builder from the knob, knob name, default sweep). CMC's knob is β.
BASELINES = {
    "sc": (lambda k: SelfConsistency(k), "N", [1, 2, 4, 8, 16, 32, 64]),
    "asc": (lambda k: AdaptiveConsistency(k, 0.95), "max_samples", [2, 4, 8, 16, 32, 64]),
    "esc": (lambda k: EarlyStoppingConsistency(k, 8), "max_samples", [16, 32, 64]),
    "parallel_probe": (lambda k: ParallelProbe(k, T=40, prune_patience=7, warm_up=15), "num_chains",
                       [2, 4, 8, 16, 32, 64]),
    "cmc": (lambda b: CMC(b), "beta", [round(0.1 * i, 1) for i in range(11)]),
}

# Names used by the reference sweep CSV.
REFERENCE_NAMES = {"sc": "SC", "asc": "ASC", "esc": "ESC", "parallel_probe": "ParallelProbe", "cmc": "CMC"}


def make_baseline(name: str, knob: Knob) -> RuleEngine:
    """A baseline controller in a rule engine: only the engine's own `open_before_stop`, which baselines never reach.

    `knob`: a number, or an [E] tensor with one value per episode of the rollout.
    """
    if name not in BASELINES:
        raise AutottsError(f"unknown controller '{name}' (expected one of {', '.join(BASELINES)} or an export dir)")
    return RuleEngine(BASELINES[name][0](knob))


__all__ = ["BASELINES", "CMC", "REFERENCE_NAMES", "AdaptiveConsistency", "EarlyStoppingConsistency",
           "ParallelProbe", "SelfConsistency", "make_baseline"]
