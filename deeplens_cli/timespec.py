"""`--since` for `faces` and `logs`: a duration back from now (`90s`, `10m`, `1h`, `2d`, `1w`) or an ISO 8601 time.

One grammar for both commands, as SAM's and Chalice's `logs` have: users type the same thing everywhere. An ISO
time without an offset is read as UTC (say `+02:00` or `Z` to be explicit); a bare date means its midnight UTC.
Anything else is a usage error (exit 2) naming what was given and what is expected.
"""

from __future__ import annotations

import datetime as dt
import re

from deeplens_cli.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|w|wk)s?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "day": 86400,
                 "w": 604800, "wk": 604800}
EXPECTED = ("a duration such as 90s, 10m, 1h, 2d, 1w or an ISO time such as 2026-11-30T10:00 (UTC) or "
            "2026-11-30T10:00+02:00")


def parse_since(text: str, now: dt.datetime, flag: str = "--since") -> dt.datetime:
    """The instant `text` names, as an aware UTC datetime; `now` must be aware (tests pass a fixed one)."""
    match = _DURATION.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return (now - dt.timedelta(seconds=amount * _UNIT_SECONDS[unit])).astimezone(dt.timezone.utc)
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not a time, expected {EXPECTED}",
                          "for example --since 1h") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    when = when.astimezone(dt.timezone.utc)
    if when > now + dt.timedelta(minutes=5):
        raise ConfigError(f"{flag} {text!r} is in the future ({when.isoformat()})",
                          "give a past time, or a duration such as 1h")
    return when
