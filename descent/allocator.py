"""Keep freed frame buffers in the process instead of handing them back to the kernel at once.

Every frame allocates a few buffers of a megabyte or more (the decoded picture, its grey copy, the
warped output). On worker threads, glibc's malloc gives such blocks back to the kernel as soon as
they are freed, so the next frame's buffer is mapped again and every one of its pages faults in:
about 650 page faults a frame at 1024x1024, a sixth of pass 1's CPU time in the kernel.

Raising the thresholds keeps those blocks for reuse. The process then holds on to its largest
working set (a few frames' buffers), which does not grow with the number of frames. glibc only;
elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's own ceiling for its adaptive threshold
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024

_done = False


def keep_freed_memory() -> None:
    """Tune glibc's malloc for frame-sized buffers (once per process)."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
