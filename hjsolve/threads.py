"""Numba's thread count for a kernel call, from the work it has."""
from contextlib import contextmanager

import numba

#: Grid cells (or particles) per thread below which a parallel kernel runs on fewer threads:
#: launching threads costs more than it saves on small grids, and much more on a busy machine.
WORK_PER_THREAD = 16_384


def thread_count(work):
    """Threads worth using for ``work`` independent items: at least 1, at most Numba's."""
    return max(1, min(numba.config.NUMBA_NUM_THREADS, work // WORK_PER_THREAD))


@contextmanager
def use_threads(work):
    """Numba's thread count for kernel calls over ``work`` independent items (`thread_count`),
    inside the ``with`` block only: the caller's count is restored after it (other solvers run
    in the same process). Numba's count is per Python thread."""
    before = numba.get_num_threads()
    numba.set_num_threads(thread_count(work))
    try:
        yield
    finally:
        numba.set_num_threads(before)
