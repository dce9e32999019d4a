"""`--since` for `faces` and `logs`: a duration back from now (`90s`, `10m`, `1h`, `2d`, `1w`) or an ISO 8601 time.

One grammar for both commands, as SAM's and Chalice's `logs` have: users type the same thing everywhere. An ISO
time without an offset is read as UTC (say `+02:00` or `Z` to be explicit); a bare date means its midnight UTC.
Anything else is a usage error (exit 2) naming what was given and what is expected, and so is a time before the
Unix epoch (CloudWatch Logs refuses a negative start, and a duration of 1e8 days overflows Python's datetime) or
in the future.
"""

from __future__ import annotations

import datetime as dt
import re

from deeplens_cli.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|w|wk)s?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "day": 86400,
                 "w": 604800, "wk": 604800}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)  # S3 and CloudWatch Logs count time from here
_BACK_HINT = "no crop or log event is older than 1970: give a later time, or a duration such as 2d"
EXPECTED = ("a duration such as 90s, 10m, 1h, 2d, 1w or an ISO time such as 2026-11-30T10:00 (UTC) or "
            "2026-11-30T10:00+02:00")


def parse_since(text: str, now: dt.datetime, flag: str = "--since") -> dt.datetime:
    """The instant `text` names, as an aware UTC datetime; `now` must be aware (tests pass a fixed one)."""
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds > (now - EPOCH).total_seconds():  # compared as floats: 1e30 days would overflow a timedelta
            raise ConfigError(f"{flag} {text!r} reaches back before {EPOCH:%Y-%m-%d} (the Unix epoch)",
                              _BACK_HINT)
        return (now - dt.timedelta(seconds=seconds)).astimezone(dt.timezone.utc)
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        when = when.astimezone(dt.timezone.utc)  # year 1 or 9999 with an offset overflows here
    except (ValueError, OverflowError):
        raise ConfigError(f"{flag} {text!r} is not a time, expected {EXPECTED}",
                          "for example --since 1h") from None
    if when < EPOCH:
        raise ConfigError(f"{flag} {text!r} is before {EPOCH:%Y-%m-%d} (the Unix epoch)", _BACK_HINT)
    if when > now + dt.timedelta(minutes=5):
        raise ConfigError(f"{flag} {text!r} is in the future ({when.isoformat()})",
                          "give a past time, or a duration such as 1h")
    return when
