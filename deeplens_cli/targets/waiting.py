"""Every wait on a device or a service: one clock and one poll loop.

A deployment, a component version becoming DEPLOYABLE and a fleet rollout are all "read, report, stop on an
answer or at the timeout, sleep, read again". Each wait supplies only its `check`; the loop, the clock that
measures it and the rule for the last sleep (never past the deadline) live here once.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

Result = TypeVar("Result")


class WaitClock:
    """Elapsed time of a wait: the larger of the clock and the time spent sleeping.

    Tests inject a `sleep` that returns at once (and may inject the clock); counting the sleeps too means such a
    wait still reaches its timeout after the same number of polls as a real one.
    """

    def __init__(self, sleep: Callable[[float], None], now: Callable[[], float] = time.monotonic) -> None:
        self.sleep = sleep
        self.now = now
        self.started = now()
        self.slept = 0.0

    def elapsed(self) -> float:
        return max(self.slept, self.now() - self.started)

    def wait(self, seconds: float) -> None:
        self.sleep(seconds)
        self.slept += seconds


def poll_until(check: Callable[[], Result | None], clock: WaitClock, timeout_s: float,
               interval_s: float, whole_intervals: bool = False) -> Result | None:
    """Call `check()` every `interval_s` until it returns an answer (anything but None).

    None when `timeout_s` passes first; the caller then reports what its last check saw (a check that reports
    progress reads `clock.elapsed()` itself). The last sleep ends at the deadline, so a timeout is reported on
    time rather than one interval late; with `whole_intervals` every sleep is a full interval, so each read
    comes exactly one interval after the last (the Greengrass V2 waits keep that spacing).
    """
    while True:
        answer = check()
        if answer is not None:
            return answer
        elapsed = clock.elapsed()
        if elapsed >= timeout_s:
            return None
        clock.wait(interval_s if whole_intervals else min(interval_s, timeout_s - elapsed))
