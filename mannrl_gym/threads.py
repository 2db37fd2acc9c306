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
* ``split_matmul(x, w)``: a large NumPy product (f's act) on two cores without a second
  spinning pool: half of w's columns go to one helper thread that sleeps when idle.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch
from threadpoolctl import threadpool_limits

SPLIT_MACS = 1 << 22  # a product's multiply-adds from which two halves pay for the hand-off


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


class HelperThread:
    """One daemon thread that runs a job on request and sleeps (no spinning) in between;
    ``jobs`` counts the jobs it ran."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one caller at a time; a second computes unsplit
        self.jobs = 0
        self._start, self._done = threading.Event(), threading.Event()
        self._job: Callable[[], None] | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._serve, name="mannrl-split-matmul", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self._start.wait()
            self._start.clear()
            try:
                self._job()
            except BaseException as error:  # handed to the caller in ``join``
                self._error = error
            self.jobs += 1
            self._done.set()

    def submit(self, job: Callable[[], None]) -> None:
        """Start ``job`` on the thread (the previous one joined)."""
        self._job, self._error = job, None
        self._done.clear()
        self._start.set()

    def join(self) -> None:
        """Wait for the job; raise what it raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error


_helper: HelperThread | None = None


def helper() -> HelperThread:
    """This process's helper thread, started on first use."""
    global _helper
    if _helper is None:
        _helper = HelperThread()
    return _helper


def _forget_helper() -> None:
    global _helper
    _helper = None  # a forked child has no helper thread: start its own on first use


os.register_at_fork(after_in_child=_forget_helper)


def split_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w, (..., B, I) @ (..., I, O) -> (..., B, O). With two or more torch threads
    (``limit_threads``) and at least ``SPLIT_MACS`` multiply-adds, w's last O/2 columns are
    multiplied on the helper thread while the caller does the first (NumPy releases the GIL);
    each output element is the same dot product either way."""
    columns = w.shape[-1]
    if (torch.get_num_threads() < 2 or columns < 2
            or x.shape[-2] * x.shape[-1] * columns < SPLIT_MACS):
        return np.matmul(x, w)
    thread = helper()
    if not thread.lock.acquire(blocking=False):
        return np.matmul(x, w)
    try:
        stack = np.broadcast_shapes(x.shape[:-2], w.shape[:-2])
        out = np.empty(stack + (x.shape[-2], columns), np.result_type(x, w))
        half = columns // 2
        thread.submit(lambda: np.matmul(x, w[..., half:], out=out[..., half:]))
        try:
            np.matmul(x, w[..., :half], out=out[..., :half])
        finally:
            thread.join()
        return out
    finally:
        thread.lock.release()
