"""Keep freed tensor memory in glibc's heap instead of returning it to the OS.

The env allocates many short-lived [E,B] tensors per round. With glibc's
defaults each allocation above the (dynamic) mmap threshold is a fresh mmap,
and first-touch page faults made a 1.5 MB clone cost ~2.5 ms on our CI VMs
(~70 us after this). Set AUTOTTS_NO_MALLOPT=1 to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds (Linux/glibc only); returns whether it applied."""
    if not sys.platform.startswith("linux") or os.environ.get("AUTOTTS_NO_MALLOPT"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False
