"""Stop requests by signal (SIGTERM, and a ``mannrl compare --jobs`` child's stop): raised
once, remembered.

Python runs a signal handler between two bytecodes of the main thread, wherever it is. A
handler that raises ``KeyboardInterrupt`` stops the run as Ctrl-C does (the trainer keeps
its last checkpoint), but two things can go wrong: a second signal raises again inside the
cleanup the first started (the checkpoint's write, the run directory's release, an atexit
callback), and a raise that lands in a finalizer or an atexit callback is printed as
"Exception ignored" and lost, so the run goes on. ``on_signal`` therefore raises at the first
signal only and keeps a flag; the trainer calls ``raise_if_requested`` after each epoch, so a
lost raise stops the run one epoch later instead of never.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable

_requested: list[int] = []  # the signals received, in order (empty: no stop asked)


def requested() -> bool:
    """Whether a stop has been asked for by signal in this process."""
    return bool(_requested)


def raise_if_requested(make: Callable[[], BaseException] = KeyboardInterrupt) -> None:
    """Raise ``make()`` if a stop was asked for (its first raise may have been lost)."""
    if _requested:
        raise make()


def on_signal(make: Callable[[], BaseException], signals: tuple[int, ...] = (signal.SIGTERM,),
              ignore: tuple[int, ...] = ()) -> Callable[[], None]:
    """From now on each of ``signals`` asks for a stop: the first raises ``make()`` where the
    main thread is, later ones are only counted; ``ignore`` are ignored outright. Returns a
    function that puts the previous handlers back. Outside the main thread (where Python
    cannot set handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        first = not _requested
        _requested.append(signum)
        if first:
            raise make()

    previous = {signum: signal.signal(signum, handler) for signum in signals}
    previous.update({signum: signal.signal(signum, signal.SIG_IGN) for signum in ignore})

    def restore() -> None:
        for signum, before in previous.items():
            signal.signal(signum, before)
    return restore


def done() -> None:
    """The process's work is written (a trainer's ``results:``, or its interrupted line):
    SIGTERM and SIGINT are ignored from now on, so they cannot kill the exit that follows
    (wandb's teardown, about a second) and turn a finished run into a failed one (a sweep's
    trial: its value lost), nor print a traceback from an exit handler (Ctrl-C pressed again
    and again). A sweep that stops its trials still kills one whose exit hangs
    (``sweeps.stopping.KILL_AFTER_S``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def forget() -> None:
    """Clear the flag (a process that goes on after a stop it has handled, such as a test)."""
    _requested.clear()
