"""Thread counts: one thread pool spins, the other stays single-threaded.

Two pools serve a step here: torch's OpenMP pool (its products, the fused Adam, f's update)
and NumPy's BLAS (OpenBLAS's own pthreads). Each pool's idle workers busy-wait for a while
after every parallel call, so with both pools at two threads a 2-core machine holds three
busy threads, and every parallel call waits at its barrier for a worker that the other
pool's spinning pushed off its core: A's step went from 0.9 to 12-21 ms with two threads
(docs/benchmarks.md, Sentences). Hence:

* ``limit_threads(n)``: torch's pool gets n threads, NumPy's BLAS always one.
* ``one_thread()``: torch on one thread for a piece too small to split (A's step: 16-row
  products, whose two-thread BLAS rate is no better than one's), so that no barrier waits on
  a descheduled worker there even when other processes share the cores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from threadpoolctl import threadpool_limits


def limit_threads(count: int) -> threadpool_limits:
    """For this whole process: torch (and OpenMP) ``count`` threads, NumPy's BLAS one. As a
    context manager, the BLAS and OpenMP limits are restored on leaving it (torch's are not)."""
    torch.set_num_threads(count)
    return threadpool_limits(limits={"openmp": count, "blas": 1})


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the body with torch on one thread (about 0.3 µs a switch), then restore the count."""
    count = torch.get_num_threads()
    if count == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(count)
