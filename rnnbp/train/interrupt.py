"""Ctrl-C during ``fit``: the first press asks for a stop at the next batch boundary, a second aborts."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Callable


@contextlib.contextmanager
def catch_sigint(on_first: Callable[[], None], notice: bool = True):
    """Within the block, SIGINT calls ``on_first()`` once; the next SIGINT raises KeyboardInterrupt.

    Only in the main thread (Python sets signal handlers nowhere else; elsewhere the block runs
    unchanged). The handler that was installed before is restored on exit, however the block ends.

    Args:
        on_first : callable, run in the handler at the first SIGINT (it should only set a flag).
        notice : bool, write a one-line notice to stderr at the first SIGINT.

    Yields:
        A list whose length is the number of SIGINTs received so far.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        received.append(signum)
        if len(received) > 1:
            raise KeyboardInterrupt
        on_first()
        if notice:
            # A raw write: print() from a signal handler can hit a reentrant buffered write.
            with contextlib.suppress(OSError):
                os.write(2, b"\nCtrl-C: stopping after the running batch and saving; "
                            b"press Ctrl-C again to abort at once\n")

    signal.signal(signal.SIGINT, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
