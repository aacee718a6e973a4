"""Replay stores: recorded traces as integer tensors, their file formats and a synthetic generator.

Names are imported on first use (PEP 562) so that tools needing only the JSON
reader (`autotts.store.autotts_json`, e.g. scripts/download_data.py) start
without importing torch.
"""

from importlib import import_module

_HOME = {"PAD": "replay_store", "ReplayStore": "replay_store", "build_store": "replay_store",
         "to_records": "replay_store", "discover": "io", "load_compact": "io", "load_store": "io",
         "save_compact": "io"}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'autotts.store' has no attribute '{name}'")
    return getattr(import_module(f"autotts.store.{_HOME[name]}"), name)
