"""Keep freed memory in the process instead of handing it back to the kernel.

glibc's malloc serves blocks over 32 MB with fresh ``mmap`` pages and unmaps them on free; the
stages allocate and free arrays of hundreds of megabytes, so the kernel zeroed every page again
on each reuse. In this sandbox's virtual machine that page clearing (``clear_page_erms``) was 18%
of the dedup stage's samples under ``perf``, and keeping the memory (``M_MMAP_MAX`` 0,
``M_TRIM_THRESHOLD`` off) cut the stage's system time from 6.2-6.9 s to 3.3-4.0 s at a million
records (``flywheel dedup``, alternating runs). Arrow's own allocator is left as it is.

Peak resident memory grows a little (3.11 GB to 3.29 GB for that stage): freed blocks stay
mapped. Only the ``flywheel`` command and its worker processes call ``keep_freed_memory``;
importing the library changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above; False where it is not glibc (nothing changes then)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
