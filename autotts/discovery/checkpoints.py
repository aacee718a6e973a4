"""Reading a discovery checkpoint given as ``ckpt_path=`` or ``init=``: ours and whole, or one line.

Lightning and pickle fail on a foreign, truncated or edited file with a traceback
deep inside the fit loop; these checks run before the loop starts.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any, Callable

import torch

from autotts.errors import AutottsError

STATE_KEY = "autotts"
LIGHTNING_KEYS = ("epoch", "global_step", "loops", "state_dict")  # what resuming a Lightning fit reads


def _int_in(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _weights(v: Any) -> bool:
    return v is None or (isinstance(v, torch.Tensor) and v.dim() == 1 and v.is_floating_point()
                         and bool(torch.isfinite(v).all()))


# The ES state `DiscoveryModule.state()` writes: field -> (check, what was expected).
STATE_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "generation": (_int_in(0, 10**9), "a generation count"),
    "searcher": (lambda v: isinstance(v, bytes), "the pickled searcher (bytes)"),
    "algorithm": (lambda v: isinstance(v, str), "an algorithm name"),
    "policy_size": (_int_in(1, 10**9), "a weight count"),
    "best": (_weights, "a 1-D tensor of finite weights"),
    "best_score": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v),
                   "a number"),
    "best_generation": (_int_in(-1, 10**9), "a generation (-1: none yet)"),
    "history": (lambda v: isinstance(v, list), "a list"),
    "validations": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v), "a list of objects"),
}
OPTIONAL_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {  # absent in checkpoints from before they existed
    "finalists": (lambda v: isinstance(v, list) and all(isinstance(x, dict) and _weights(x.get("weights"))
                                                       for x in v), "a list of {generation, score, weights}"),
    "seconds": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e9,
                "seconds of search so far (a number >= 0)"),
}


def read_checkpoint(path: str, key: str = "ckpt_path", resume: bool = True) -> dict:
    """The ES state of the discovery checkpoint at `path`, or a one-line error naming `key`, the file and field.

    `resume`: the file must also hold what Lightning restores (``ckpt_path=``; ``init=`` needs only the state).
    """
    where = f"{key}={path}"
    if not Path(path).is_file():
        raise AutottsError(f"{where}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # our own file: holds the ES pickle
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise AutottsError(f"{where}: not a checkpoint ({type(err).__name__})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(STATE_KEY), dict):
        raise AutottsError(f"{where}: not an autotts discovery checkpoint (no ES state)")
    state = checkpoint[STATE_KEY]
    for name, (ok, expected) in STATE_FIELDS.items():
        if name not in state:
            raise AutottsError(f"{where}: field '{STATE_KEY}.{name}': missing")
        if not ok(state[name]):
            raise AutottsError(f"{where}: field '{STATE_KEY}.{name}': expected {expected}, got {_show(state[name])}")
    for name, (ok, expected) in OPTIONAL_FIELDS.items():
        if name in state and not ok(state[name]):
            raise AutottsError(f"{where}: field '{STATE_KEY}.{name}': expected {expected}, got {_show(state[name])}")
    if resume:
        missing = [k for k in LIGHTNING_KEYS if k not in checkpoint]
        if missing:
            raise AutottsError(f"{where}: field '{missing[0]}': missing (Lightning needs it to resume)")
        try:  # Lightning restores with torch.load's default (weights-only) unpickler, stricter than ours above
            torch.load(path, map_location="cpu")
        except Exception as err:
            raise AutottsError(f"{where}: not a checkpoint Lightning can restore ({type(err).__name__})") from None
        try:
            pickle.loads(state["searcher"])  # noqa: S301 -- the checkpoint is trusted as much as torch.load trusts it
        except Exception as err:  # a damaged pickle raises any error type
            raise AutottsError(f"{where}: field '{STATE_KEY}.searcher': unreadable ({type(err).__name__})") from None
    return state


def _show(x: Any) -> str:
    text = f"tensor of shape {list(x.shape)}" if isinstance(x, torch.Tensor) else repr(x)
    return text if len(text) <= 60 else text[:57] + "..."
