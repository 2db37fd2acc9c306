"""Freed memory stays with the process: no page faults on the training loop's hot path.

glibc's malloc serves a block of 128 KiB or more by ``mmap`` (a threshold it raises as such
blocks are freed, up to 32 MiB) and returns it to the kernel on ``free``; it also trims the
heap's top beyond 128 KiB. Torch's CPU allocator caches nothing, so a tensor of a few MiB
made and dropped every update (f's gradients and RMSprop's temporaries, 1216 x 1024 floats
on the sentence task) comes back as fresh pages each time, and every page is a fault the
kernel zero-fills: about 2,500 minor faults an update of f and 130 to 150 an env step on
the sentence task, none with the settings below (docs/benchmarks.md).

``keep_freed_memory()`` sets glibc's mmap threshold to its largest (32 MiB: larger blocks
are still mapped and returned) and its trim threshold to 1 GiB, so freed blocks are reused.
For the whole process and for good (the trainer calls it); a process may then hold up to
1 GiB more than it uses at a time. Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's upper limit for it on 64-bit systems
TRIM_THRESHOLD_BYTES = 1 << 30

_kept = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks (see the module); True where it applied (glibc),
    False elsewhere. Idempotent."""
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # no C library found, or one without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # musl's mallopt does nothing and returns 0: False there
    _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _kept
