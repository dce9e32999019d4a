"""A clock a test moves by hand, for code that takes a `clock` callable (the face gate, the edge loop).

Plain Python 3.7 (the edge tests import it on the device's Python too).
"""


class FakeClock:
    """`clock()` answers `clock.now`; a test advances time with `clock.now += seconds`."""

    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now
