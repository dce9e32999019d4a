"""One way for a test to wait for something another thread or process does: poll a condition until a deadline.

The deadline only guards against a hang: it is far longer than the wait takes on a healthy machine, however
slow or busy (`HANG_GUARD_S`), so a verdict never depends on speed. A test that must show something does NOT
happen waits for an event that proves it instead (a call still blocked, a count), never for "N seconds passed".

Plain Python 3.7 (the edge tests import it on the device's Python too).
"""

import time

# What takes milliseconds on an idle machine may take seconds on a loaded 2-core one (the CI stress pass runs
# the timing-sensitive tests under `stress-ng --cpu 4`); a minute means "hung", never "slow".
HANG_GUARD_S = 60.0


def wait_for(condition, timeout=HANG_GUARD_S, interval=0.01):
    """Call `condition()` every `interval` seconds until it is true or `timeout` seconds have passed.

    Returns the last answer (truthy or not), so a test writes `assert wait_for(lambda: up.stats()["uploaded"] == 3)`
    and a failure shows in the assertion, not as a hang.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = condition()
        if answer:
            return answer
        time.sleep(interval)
    return condition()
