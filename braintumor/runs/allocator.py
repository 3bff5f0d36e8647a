"""Keep freed memory in the process instead of handing it back to the OS after every step.

glibc's malloc returns large blocks (activations, gradients) to the system with ``munmap`` or
``trim`` as soon as they are freed, and a training step then pays page faults to get them back.
:func:`tune_malloc` sets the same three knobs as the ``MALLOC_*_`` environment variables of the
Makefile, at run time (``mallopt``), so ``python train.py`` gets them too. Forked loader
workers inherit them. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling for mallopt on 64-bit systems
TRIM_THRESHOLD = 16 * 1024**3
TOP_PAD = 256 * 1024**2
# the same settings as environment variables (the Makefile's MALLOC_ENV; child processes)
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_MAX),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
    "MALLOC_TOP_PAD_": str(TOP_PAD),
}
ENV_KEYS = tuple(MALLOC_ENV)


def tune_malloc(
    mmap_threshold: int = MMAP_THRESHOLD_MAX,
    trim_threshold: int = TRIM_THRESHOLD,
    top_pad: int = TOP_PAD,
) -> bool:
    """Apply the settings with glibc's ``mallopt``; True when they were applied.

    Settings already given in the environment (``MALLOC_*_``) are left as they are.
    """
    if any(key in os.environ for key in ENV_KEYS):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(
        mallopt(param, min(value, 2**31 - 1)) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, mmap_threshold),
            (M_TRIM_THRESHOLD, trim_threshold),
            (M_TOP_PAD, top_pad),
        )
    )
    if ok:
        log.debug("malloc tuned: freed memory is kept for the next step")
    return ok
