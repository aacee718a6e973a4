"""Replay stores: recorded traces as integer tensors, their file formats and a synthetic generator."""

from autotts.store.io import discover, load_compact, load_store, save_compact
from autotts.store.replay_store import PAD, ReplayStore, build_store, to_records

__all__ = ["PAD", "ReplayStore", "build_store", "discover", "load_compact", "load_store", "save_compact", "to_records"]
