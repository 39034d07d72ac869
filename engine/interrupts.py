"""Ctrl-C and SIGTERM as a request to stop cleanly.

Python raises KeyboardInterrupt wherever the main thread happens to be, also inside a weakref callback or
a ``__del__``, where it is printed and lost (the run would then go on to the end). So while a long run is
open, the first Ctrl-C or SIGTERM only calls ``request`` (which sets a flag that the run checks after each
frame); a second Ctrl-C raises KeyboardInterrupt at once. Outside the main thread, signals are left alone.

The one owner of signal handling: ``track``, ``batch``, ``live`` and ``train`` use ``StopRequests``;
commands with nothing to finish (``camera-sim``, ``listen``) use ``interrupt_on_signals``.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, as Ctrl-C does (also when started in the background, where
    the shell leaves SIGINT ignored)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)


class StopRequests:
    """While open, the first Ctrl-C or SIGTERM prints ``notice`` (unless None) and calls ``request``."""

    def __init__(self, request: Callable[[], None], notice: str | None = None):
        self.request, self.notice = request, notice
        self._previous: dict = {}
        self._requested = False

    def _handle(self, signum, frame) -> None:
        if self._requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._requested = True
        if self.notice is not None:
            print(f"\n{self.notice} (Ctrl-C again to quit now)", file=sys.stderr)
        self.request()

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
