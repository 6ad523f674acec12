"""Worker processes: a worker that ends with its parent, however the parent ends."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal

__all__ = ["end_with_parent"]

_PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """A worker gets SIGTERM when the parent dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
