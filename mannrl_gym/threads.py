"""Thread counts: no thread pool spins while another needs the cores.

Torch's OpenMP pool and NumPy's BLAS (OpenBLAS's own pthreads) both keep their idle workers
busy-waiting after each parallel call (libgomp's for about 8 ms). With both pools on two
threads a 2-core machine holds three busy threads, and every parallel call waits at its
barrier for a worker pushed off its core: A's step went from 0.9 to 12-21 ms. Other
processes on the cores do the same to one spinning pool: a 2-thread sentence run on the
shared machine trained 5 to 10 times slower than a 1-thread one (docs/benchmarks.md,
Sentences). Hence, for a run given ``num_threads`` = n:

* ``limit_threads(n)``: torch's pool gets n threads (for code that relies on it), NumPy's
  BLAS always one, and ``cores()`` says n.
* ``one_thread()``: torch on one thread for the mannrl path's own pieces (A's step, f's
  update), so torch's pool stays asleep there.
* ``split_matmul`` / ``split_bmm``: the large products (f's act, f's update) in two halves,
  one on the caller's thread, one on a helper thread that sleeps when idle: two cores where
  they pay, and a busy machine costs a late hand-off instead of a barrier per operation.
  ``in_halves``: the same for elementwise passes over large arrays (f's RMSprop, its fold).
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
SPLIT_ELEMENTS = 1 << 18  # an elementwise pass's elements from which two halves pay
_cores = 1  # what ``limit_threads`` last set


def cores() -> int:
    """The thread count ``limit_threads`` set for this process (1 until it is called)."""
    return _cores


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def beyond_cores_note(count: int) -> str | None:
    """A line for a run asking ``count`` threads on fewer cores (None where they fit)."""
    usable = usable_cores()
    if count <= usable:
        return None
    return (f"num_threads={count}, but this process may run on {usable} core"
            f"{'s' if usable > 1 else ''}: the threads beyond them wait for a core and slow "
            f"every step; num_threads={usable} at most is faster")


def limit_threads(count: int) -> "ThreadLimits":
    """For this whole process: torch (and OpenMP) ``count`` threads, NumPy's BLAS one,
    ``cores()`` = count. As a context manager, the previous settings come back on leaving."""
    return ThreadLimits(count)


class ThreadLimits(contextlib.AbstractContextManager):
    """The settings ``limit_threads`` applied, and the ones before (see there)."""

    def __init__(self, count: int) -> None:
        global _cores
        self._previous = (torch.get_num_threads(), _cores)
        torch.set_num_threads(count)
        _cores = count
        self._pools = threadpool_limits(limits={"openmp": count, "blas": 1})

    def __exit__(self, *exc) -> None:
        global _cores
        self._pools.restore_original_limits()
        torch.set_num_threads(self._previous[0])
        _cores = self._previous[1]


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
        threading.Thread(target=self._serve, name="mannrl-half-products", daemon=True).start()

    def _serve(self) -> None:
        # this thread's own OpenMP and MKL counts (per thread; the caller's stay as they are):
        # else its torch products could start a second spinning pool
        torch.set_num_threads(1)
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


def _in_halves(macs: int, halves: int, first: Callable[[], None],
               second: Callable[[], None]) -> bool:
    """Run ``second`` on the helper thread while ``first`` runs here, when ``cores()`` >= 2,
    the product has ``macs`` >= SPLIT_MACS and ``halves`` >= 2 (rows or columns to split);
    False (nothing run) otherwise or while another caller holds the helper."""
    if halves < 2 or macs < SPLIT_MACS:
        return False
    return in_halves(first, second)


def in_halves(first: Callable[[], None], second: Callable[[], None]) -> bool:
    """Run ``second`` on the helper thread while ``first`` runs here when ``cores()`` >= 2
    and the helper is free; False (nothing run) otherwise: the caller runs both itself.
    For work that releases the GIL (NumPy's and torch's kernels on large arrays)."""
    if _cores < 2:
        return False
    thread = helper()
    if not thread.lock.acquire(blocking=False):
        return False
    try:
        thread.submit(second)
        try:
            first()
        finally:
            thread.join()
        return True
    finally:
        thread.lock.release()


def split_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w, (..., B, I) @ (..., I, O) -> (..., B, O); split (``_in_halves``) by w's
    columns. Each output element is the same dot product either way.

    In NumPy, except for a 2-D w stored (O, I) (its (I, O) view, as
    ``networks.fold_batch_norm`` gives f's body on the sentence task): that goes through
    torch's BLAS (one thread a half), which multiplies by a transposed weight 1.5 times
    faster at 16 x 1216 x 1024 than NumPy's OpenBLAS by a plain one."""
    columns = w.shape[-1]
    out = np.empty(np.broadcast_shapes(x.shape[:-2], w.shape[:-2]) + (x.shape[-2], columns),
                   np.result_type(x, w))
    half = columns // 2
    macs = out.size * x.shape[-1]
    if x.ndim == 2 and w.ndim == 2 and w.T.flags.c_contiguous and not w.flags.c_contiguous:
        rows, weight, result = (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(w.T),
                                torch.from_numpy(out))

        @torch.no_grad()
        def columns_of(low: int, high: int) -> None:
            torch.mm(rows, weight[low:high].t(), out=result[:, low:high])
        with one_thread():
            if not _in_halves(macs, columns, lambda: columns_of(0, half),
                              lambda: columns_of(half, columns)):
                columns_of(0, columns)
        return out
    if not _in_halves(macs, columns,
                      lambda: np.matmul(x, w[..., :half], out=out[..., :half]),
                      lambda: np.matmul(x, w[..., half:], out=out[..., half:])):
        np.matmul(x, w, out=out)
    return out


def split_bmm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b per group in torch, (G, N, K) @ (G, K, O) -> (G, N, O), plus ``bias`` (G, 1, O)
    if given (``torch.baddbmm``), into ``out`` if given (a view of a larger tensor, say);
    split (``_in_halves``) by a's rows N on the CPU (a device's tensors as one call). No
    autograd: for a hand-written backward's products."""
    groups, rows, inner = a.shape
    if out is None:
        out = torch.empty((groups, rows, b.shape[2]), dtype=a.dtype, device=a.device)

    @torch.no_grad()  # grad mode is per thread: the helper's too
    def rows_of(low: int, high: int) -> None:
        if bias is None:
            torch.bmm(a[:, low:high], b, out=out[:, low:high])
        else:
            torch.baddbmm(bias, a[:, low:high], b, out=out[:, low:high])

    def part(low: int, high: int) -> Callable[[], None]:
        return lambda: rows_of(low, high)
    half = rows // 2
    if a.device.type != "cpu" or not _in_halves(groups * rows * inner * b.shape[2], rows,
                                                 part(0, half), part(half, rows)):
        part(0, rows)()
    return out
