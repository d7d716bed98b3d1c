"""Waiting for what the mail system does asynchronously (delivery, queueing, reloads, DNS queries)."""

import time


def wait_until(probe, done=bool, timeout=20.0, interval=0.2):
    """Call PROBE until DONE(its result) holds or TIMEOUT seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while not done(result := probe()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result
