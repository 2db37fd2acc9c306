"""Stopping a sweep: SIGINT (Ctrl-C) or SIGTERM ends the trials it runs, then the sweep.

A process that gets the signal sets a flag; the loop waiting for its children passes SIGTERM
on: to its trainer (a trial runs in its own process group) or, in ``mannrl sweep --workers N``,
to its workers. A second signal sends SIGKILL instead. A trial stopped this way is marked FAIL with
the user attribute ``interrupted`` (the signal's name); the command prints one line and exits
128 + the signal's number. Workers start with SIGINT ignored: Ctrl-C reaches the whole
terminal process group, and the parent alone decides what happens.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
KILL_AFTER_S = 15.0  # a process still alive this long after SIGTERM gets SIGKILL
POLL_S = 0.25  # how often waiting loops look at the stop flag


class Interrupted(Exception):
    """The sweep was told to stop (SIGINT / SIGTERM) while a trial was starting or running."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class Stop:
    """The stop flag of one process, set by SIGINT / SIGTERM once :meth:`install` ran.

    The handler only records the signal; the loops that wait for child processes read
    :meth:`wanted` every POLL_S and signal the children themselves."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.signals = 0
        self.since = 0.0  # time.monotonic() of the first signal
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM here (a signal this process ignores stays ignored)."""
        for signum in SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum, self.since = signum, time.monotonic()
        self.signals += 1

    def wanted(self) -> int | None:
        """The signal children should get now: none, SIGTERM once a stop was asked for,
        SIGKILL after a second signal or KILL_AFTER_S."""
        if self.signum is None:
            return None
        if self.signals > 1 or time.monotonic() - self.since > KILL_AFTER_S:
            return signal.SIGKILL
        return signal.SIGTERM

    def check(self) -> None:
        """Raise Interrupted if a stop was asked for."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    @property
    def exit_code(self) -> int:
        """The shell's code for a command ended by this signal (130 SIGINT, 143 SIGTERM)."""
        return 128 + (self.signum or 0)


def signal_group(leader_pid: int, signum: int) -> None:
    """Send ``signum`` to the process group led by a child that was not reaped yet."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader_pid, signum)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while the block starts processes: they inherit it ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
