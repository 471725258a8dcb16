"""One BLAS thread for the training view's workers.

numpy's bundled OpenBLAS splits a matrix product over two threads on this
2-core machine; beside the screen's own thread (frames, keys) and any other
load, the two fight for the cores and an update gets many times slower
(train-explode: ~40 updates/s instead of ~250 on a busy machine). The
engine's results are bit-identical at one and two threads, so a worker
thread asks OpenBLAS for one thread, for itself only
(`openblas_set_num_threads_local`, OpenBLAS >= 0.3.27): the process-wide
setting, and a user's OPENBLAS_NUM_THREADS, are left alone.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from pathlib import Path

import numpy as np


@cache
def _set_local():
    """OpenBLAS's per-thread setter in numpy's bundled library, or None (another BLAS)."""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in sorted(libs.glob("libscipy_openblas*")) if libs.is_dir() else []:
        try:
            return ctypes.CDLL(str(lib)).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
    return None


def one_thread_here() -> bool:
    """Make BLAS calls from the calling thread single-threaded; False if it could not
    (or the user chose a thread count with OPENBLAS_NUM_THREADS)."""
    if "OPENBLAS_NUM_THREADS" in os.environ:
        return False
    setter = _set_local()
    if setter is None:
        return False
    setter(1)
    return True
