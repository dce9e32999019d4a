"""One way for a test to wait for something another thread or process does: poll a condition until a deadline.

Plain Python 3.7 (the edge tests import it on the device's Python too).
"""

import time


def wait_for(condition, timeout=10.0, interval=0.01):
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
