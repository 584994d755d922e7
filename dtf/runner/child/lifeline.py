"""Tie a process's life to its parent's: when the parent dies, even by SIGKILL, so does it.

Used by the pytest processes a worker starts and by the workers `dtf run` starts, which run
in sessions of their own (so Ctrl-C and process-group kills can be aimed) and would
otherwise be orphaned.  Linux only (prctl PR_SET_PDEATHSIG); elsewhere it does nothing and
the child notices the parent when its pipes close.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int | None = None) -> None:
    """Ask the kernel for SIGKILL when our parent dies; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    # The parent may have died before prctl ran; then we were re-parented already.
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
