"""Waiting in tests for something another thread or process does: the one poll of the suite.

State outside the test's reach (a file another process flushes, a worker's process, a socket's counter)
cannot signal an event; ``wait_until`` checks it every ``every`` seconds until it holds, and fails with
what it waited for after ``timeout``. Never a fixed sleep that hopes the other side is done.
"""

from __future__ import annotations

import time


def wait_until(condition, timeout: float = 30.0, what: str = "", every: float = 0.01) -> None:
    """Wait for ``condition()`` to hold, checking every ``every`` s, up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what or condition}"
        time.sleep(every)
