"""`--since`: one grammar for faces and logs - durations back from now, or ISO 8601 times (UTC unless given)."""

from __future__ import annotations

import datetime as dt

import pytest

from deeplens_cli.cli.timespec import parse_since
from deeplens_cli.errors import ConfigError

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("90s", NOW - dt.timedelta(seconds=90)),
    ("10m", NOW - dt.timedelta(minutes=10)),
    ("1h", NOW - dt.timedelta(hours=1)),
    ("1.5h", NOW - dt.timedelta(minutes=90)),
    ("2d", NOW - dt.timedelta(days=2)),
    ("1w", NOW - dt.timedelta(weeks=1)),
    ("30 mins", NOW - dt.timedelta(minutes=30)),
    ("2026-11-30T09:00", dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)),
    ("2026-11-30T09:00Z", dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)),
    ("2026-11-30T10:30+02:00", dt.datetime(2026, 11, 30, 8, 30, tzinfo=dt.timezone.utc)),
    ("2026-11-29", dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)),
])
def test_durations_and_iso_times(text, expected):
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "5 fortnights", "2026-02-30", "1h30m"])
def test_anything_else_is_a_usage_error_naming_the_flag(text):
    with pytest.raises(ConfigError) as caught:
        parse_since(text, NOW)
    assert caught.value.exit_code == 2 and "--since" in caught.value.message


def test_a_time_in_the_future_is_refused():
    with pytest.raises(ConfigError, match="in the future"):
        parse_since("2026-12-01T00:00", NOW)


WEEKS_SINCE_1970 = (NOW - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).days // 7


@pytest.mark.parametrize("text", [
    "100000000d",  # the old tree: OverflowError (date value out of range)
    "9" * 40 + "s",  # the old tree: OverflowError (int too large to convert)
    f"{WEEKS_SINCE_1970 + 1}w",  # one week more than there has been since 1970
])
def test_a_duration_reaching_before_the_epoch_is_a_usage_error(text):
    with pytest.raises(ConfigError) as caught:
        parse_since(text, NOW)
    assert caught.value.exit_code == 2
    assert caught.value.message == f"--since {text!r} reaches back before 1970-01-01 (the Unix epoch)"
    assert parse_since(f"{WEEKS_SINCE_1970}w", NOW).year == 1970


@pytest.mark.parametrize("text", ["1960-01-01", "1969-12-31T23:59:59Z", "0001-01-01"])
def test_a_time_before_the_epoch_is_a_usage_error(text):
    with pytest.raises(ConfigError, match=r"is before 1970-01-01 \(the Unix epoch\)") as caught:
        parse_since(text, NOW)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("text", ["0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00", "1e49s"])
def test_times_python_cannot_hold_in_utc_are_usage_errors_not_overflows(text):
    with pytest.raises(ConfigError, match="is not a time") as caught:  # the old tree: OverflowError for the first two
        parse_since(text, NOW)
    assert caught.value.exit_code == 2


def test_the_epoch_itself_and_a_duration_back_to_it_are_accepted():
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_since("1970-01-01", NOW) == epoch
    assert parse_since(f"{(NOW - epoch).total_seconds():.0f}s", NOW) == epoch
