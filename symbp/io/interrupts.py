"""Ctrl-C and SIGTERM: unwind like an exception, so every ``finally`` cleans up.

Python turns SIGINT into ``KeyboardInterrupt`` but lets SIGTERM kill the process on the spot,
which would leave staged ``.tmp`` files, TeX's temporary folders and worker processes behind.
:func:`terminate_as_exception` makes SIGTERM raise :class:`Terminated` instead. The CLI exits
with the shell's status for a death by that signal: 128 + 2 = 130 (SIGINT), 128 + 15 = 143
(SIGTERM).

:func:`signals_deferred` holds both signals back while a few renames must all happen or none
(see :mod:`symbp.io.files`): a signal arriving then takes effect right after.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

INTERRUPT_STATUS = {signal.SIGINT: 128 + signal.SIGINT, signal.SIGTERM: 128 + signal.SIGTERM}
DEFERRED = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, like KeyboardInterrupt: no ``except Exception`` eats it)."""

    signal = signal.SIGTERM


def _raise_terminated(signum, frame):
    raise Terminated()


def terminate_as_exception() -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def exit_status(err: BaseException) -> int:
    """130 for Ctrl-C (KeyboardInterrupt), 143 for SIGTERM (Terminated)."""
    return INTERRUPT_STATUS[signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT]


@contextmanager
def signals_deferred():
    """Run the body with SIGINT and SIGTERM held back; the first that arrived is raised after.

    Replaces the Python-level handlers (a thread mask would not do: a signal may be delivered
    to another thread, and Python runs its handler in the main thread anyway). Outside the
    main thread, where handlers cannot be set, the body just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda s, frame: received.append(s)) for signum in DEFERRED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if received:
            signal.raise_signal(received[0])
