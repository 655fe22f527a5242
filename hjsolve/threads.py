"""Numba's thread count for a kernel call, from the work it has."""
from contextlib import contextmanager

import numba

#: Grid cells (or particles) per thread below which a parallel kernel runs on fewer threads:
#: launching threads costs more than it saves on small grids, and much more on a busy machine.
WORK_PER_THREAD = 16_384


@contextmanager
def use_threads(work):
    """Numba's thread count for kernel calls over ``work`` independent items, inside the ``with``
    block only: the caller's count is restored after it (other solvers run in the same process)."""
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, work // WORK_PER_THREAD)))
    try:
        yield
    finally:
        numba.set_num_threads(before)
