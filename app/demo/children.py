"""The demo's child processes die with it, even when it is killed outright.

Ctrl-C and SIGTERM reach the demo, which stops its worker and phones in order. A SIGKILL gives
it no such chance, so each child asks the Linux kernel, right after it is forked, for a signal
when its parent dies (``prctl(PR_SET_PDEATHSIG)``): SIPp is killed; the worker gets SIGUSR1,
on which it kills its whole process group (itself and its transcription pool, which would
otherwise finish a long decode first). It is not asked to drain: with the demo gone its
stand-ins are gone, and a drain would wait on them. It is what a worker killed mid-run is
anyway: leases and call recovery take it from there. Elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for a child that must not outlive this process (None off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def in_child() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return in_child
