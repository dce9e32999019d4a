"""Face crops in S3, newest first, without listing the whole bucket.

S3 lists keys in lexical order only, and the crop layout (`faces/{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg`,
unpadded numbers, no year) does not sort lexically by time. So the newest crop cannot be found by listing from the
start. Instead the key template is read as a tree of folders: each folder level of the template (`{month}_{day}`,
then `{hour}_{minute}`) is listed with `Delimiter='/'` (one call returns up to 1,000 folder names, never the crops
inside them), its names are parsed back into numbers and visited newest first, and only the newest leaf folders
are listed for their crops. A bucket with a million crops answers the newest page with a handful of calls.

* Times in folder names are the device's local time (the workshop layout), so folders are ordered by that clock;
  `--since` prunes a folder only when even the furthest time zone (UTC-12) could not bring it inside the window,
  and every crop is then checked against its exact time (`{timestamp}` in the key, else S3's LastModified).
* A template without a year (the default) is read against today: a `{month}_{day}` after today is last year's.
* A folder level without a time (`{device}/...`) is merged: each child is read newest first and the streams are
  merged by time, so one device's crops never hide another's newer ones.
* `--device` filters through the key when the template has `{device}`; otherwise through each crop's object
  metadata (`device`, written by edge_function.keys.object_metadata), one HEAD per crop, bounded by
  `MAX_METADATA_SCAN` so a device that never uploaded still answers quickly (the result says it was bounded).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

TIME_FIELDS = ("year", "month", "day", "hour", "minute", "second")
EXACT_FIELDS = ("timestamp_ms", "timestamp")
NUMERIC_FIELDS = frozenset(TIME_FIELDS + EXACT_FIELDS + ("counter", "track"))
TZ_SLACK = dt.timedelta(hours=14)  # the largest UTC offset there is (UTC+14 / UTC-12): folder times are local
MAX_METADATA_SCAN = 2000
_UNIT = {"year": None, "month": None, "day": dt.timedelta(days=1), "hour": dt.timedelta(hours=1),
         "minute": dt.timedelta(minutes=1), "second": dt.timedelta(seconds=1)}


@dataclass(frozen=True)
class CropObject:
    """One crop as listed: key, its time (exact when the key carries it), size, the fields parsed from the key."""

    key: str
    time: dt.datetime
    size: int
    key_fields: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Crop:
    """A crop with what the edge function wrote into its object metadata (None when absent)."""

    key: str
    time: dt.datetime
    size: int
    device: str | None
    confidence: float | None
    track: int | None
    captured_at: str | None
    detector: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "time": self.time.isoformat(), "size": self.size, "device": self.device,
                "confidence": self.confidence, "track": self.track, "captured_at": self.captured_at,
                "detector": self.detector}


@dataclass
class Listing:
    """What a search found, and how much it read to find it (the figures the pagination tests check)."""

    crops: list[Crop]
    list_calls: int = 0
    head_calls: int = 0
    scan_bounded: bool = False  # the metadata filter stopped at MAX_METADATA_SCAN crops
    more: bool = False  # at least one more crop matched beyond the limit


@dataclass(frozen=True)
class _Level:
    text: str
    pattern: re.Pattern[str] | None  # None: a literal folder name
    fields: tuple[str, ...]

    @property
    def timed(self) -> bool:
        return any(f in TIME_FIELDS or f in EXACT_FIELDS for f in self.fields)


def _level(segment: str) -> _Level:
    parts: list[str] = []
    fields: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(segment):
        parts.append(re.escape(literal))
        if name is None:
            continue
        if name in fields:
            parts.append(f"(?P={name})")
            continue
        fields.append(name)
        parts.append(f"(?P<{name}>\\d+)" if name in NUMERIC_FIELDS else f"(?P<{name}>[^/]+?)")
    if not fields:
        return _Level(segment, None, ())
    return _Level(segment, re.compile("^" + "".join(parts) + "$"), tuple(fields))


class CropIndex:
    """The crops of one bucket/prefix/template, read newest first (see the module docstring)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, key_template: str, now: dt.datetime) -> None:
        self.s3 = s3
        self.bucket = bucket
        root = prefix.strip("/")
        self.root = root + "/" if root else ""
        segments = [s for s in key_template.split("/") if s]
        self.levels = [_level(s) for s in segments[:-1]]
        self.leaf = _level(segments[-1])
        self.now = now
        self.list_calls = 0
        self.head_calls = 0

    @property
    def device_in_key(self) -> bool:
        return any("device" in level.fields for level in self.levels + [self.leaf])

    # -- listing ------------------------------------------------------------------------------------------

    def newest_first(self, since: dt.datetime | None = None, device: str | None = None) -> Iterator[CropObject]:
        """Every crop under the prefix, newest first, lazily: each S3 call is made only when needed."""
        key_device = device if self.device_in_key else None
        return self._walk(self.root, 0, {}, since, key_device)

    def _walk(self, path: str, depth: int, fields: dict[str, str], since: dt.datetime | None,
              device: str | None) -> Iterator[CropObject]:
        if depth == len(self.levels):
            yield from self._leaf(path, fields, since, device)
            return
        level = self.levels[depth]
        if level.pattern is None:
            yield from self._walk(f"{path}{level.text}/", depth + 1, fields, since, device)
            return
        children = []
        for name in self._folders(path):
            match = level.pattern.match(name)
            if not match:
                continue  # not a crop folder (someone else's objects under the prefix)
            found = {**fields, **match.groupdict()}
            if device is not None and found.get("device", device) != device:
                continue
            if since is not None and _latest_possible(found, self.now) < since:
                continue
            children.append((name, found))
        if level.timed:
            children.sort(key=lambda child: _order_key(child[1], level.fields, self.now), reverse=True)
            for name, found in children:
                yield from self._walk(f"{path}{name}/", depth + 1, found, since, device)
        else:  # no time in this level: merge the children's newest-first streams by time
            streams = [self._walk(f"{path}{name}/", depth + 1, found, since, device) for name, found in children]
            yield from heapq.merge(*streams, key=lambda crop: crop.time, reverse=True)

    def _folders(self, path: str) -> list[str]:
        names = []
        for page in self._pages(path):
            names.extend(p["Prefix"][len(path):].rstrip("/") for p in page.get("CommonPrefixes", []))
        return names

    def _leaf(self, path: str, fields: dict[str, str], since: dt.datetime | None,
              device: str | None) -> Iterator[CropObject]:
        crops = []
        for page in self._pages(path):
            for item in page.get("Contents", []):
                name = item["Key"][len(path):]
                match = self.leaf.pattern.match(name) if self.leaf.pattern else (name == self.leaf.text or None)
                if not match:
                    continue
                found = {**fields, **(match.groupdict() if self.leaf.pattern else {})}
                if device is not None and found.get("device", device) != device:
                    continue
                crop = CropObject(item["Key"], _exact_time(found) or item["LastModified"], item.get("Size", 0), found)
                if since is None or crop.time >= since:
                    crops.append(crop)
        crops.sort(key=lambda crop: (crop.time, crop.key), reverse=True)
        yield from crops

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=path, Delimiter="/"):
            self.list_calls += 1
            yield page

    # -- metadata -----------------------------------------------------------------------------------------

    def describe(self, obj: CropObject) -> Crop:
        """HEAD one crop for the metadata the edge function wrote (device, confidence, track, capture time)."""
        self.head_calls += 1
        meta = self.s3.head_object(Bucket=self.bucket, Key=obj.key).get("Metadata", {})
        return Crop(key=obj.key, time=obj.time, size=obj.size,
                    device=meta.get("device") or obj.key_fields.get("device"),
                    confidence=_number(meta.get("confidence"), float),
                    track=_number(meta.get("track-id") or obj.key_fields.get("track"), int),
                    captured_at=meta.get("captured-at"), detector=meta.get("detector"))

    def search(self, limit: int, since: dt.datetime | None = None, device: str | None = None) -> Listing:
        """The newest `limit` crops (of `device`, within `since`), with their metadata."""
        stream = self.newest_first(since, device)
        filter_by_metadata = device is not None and not self.device_in_key
        crops: list[Crop] = []
        scanned = 0
        bounded = more = False
        for obj in stream:
            if filter_by_metadata and scanned >= MAX_METADATA_SCAN:
                bounded = True
                break
            scanned += 1
            crop = self.describe(obj)
            if filter_by_metadata and crop.device != device:
                continue
            if len(crops) == limit:
                more = True
                break
            crops.append(crop)
        return Listing(crops, self.list_calls, self.head_calls, bounded, more)


def _number(value: str | None, kind: Callable[[str], Any]) -> Any:
    try:
        return kind(value) if value not in (None, "") else None
    except ValueError:
        return None


def _exact_time(fields: dict[str, str]) -> dt.datetime | None:
    if "timestamp_ms" in fields:
        return dt.datetime.fromtimestamp(int(fields["timestamp_ms"]) / 1000, dt.timezone.utc)
    if "timestamp" in fields:
        return dt.datetime.fromtimestamp(int(fields["timestamp"]), dt.timezone.utc)
    return None


def _year(fields: dict[str, str], now: dt.datetime) -> int:
    """The year of a folder: given, or the latest year in which its month/day is not after tomorrow (a device
    ahead of UTC is already in tomorrow; a month/day after that was last year's)."""
    if "year" in fields:
        return int(fields["year"])
    month, day = int(fields.get("month", 1)), int(fields.get("day", 1))
    limit = (now + dt.timedelta(days=1)).date()
    for year in (limit.year, limit.year - 1, limit.year - 2, limit.year - 3, limit.year - 4):
        try:
            if dt.date(year, month, day) <= limit:
                return year
        except ValueError:
            continue  # 29 February outside a leap year (or a folder that is not a date at all)
    return limit.year - 1


def _order_key(fields: dict[str, str], level_fields: Iterable[str], now: dt.datetime) -> tuple[int, ...]:
    """Sort key among sibling folders: their time fields from most to least significant."""
    present = set(level_fields)
    key: list[int] = []
    if "month" in present and "year" not in fields:
        key.append(_year(fields, now))
    key.extend(int(fields[f]) for f in itertools.chain(TIME_FIELDS, EXACT_FIELDS) if f in present)
    return tuple(key)


def _latest_possible(fields: dict[str, str], now: dt.datetime) -> dt.datetime:
    """The latest UTC instant a crop in this folder can have; far future when the folder does not say."""
    exact = _exact_time(fields)
    if exact is not None:
        return exact + dt.timedelta(seconds=1)
    known = [f for f in TIME_FIELDS if f in fields]
    if not known or "day" not in fields and "month" not in fields and "year" not in fields:
        return dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    year = _year(fields, now)
    try:
        start = dt.datetime(year, int(fields.get("month", 1)), int(fields.get("day", 1)), int(fields.get("hour", 0)),
                            int(fields.get("minute", 0)), int(fields.get("second", 0)), tzinfo=dt.timezone.utc)
    except ValueError:
        return dt.datetime.max.replace(tzinfo=dt.timezone.utc)  # not a real date: never prune what we cannot read
    finest = known[-1]
    if finest == "year":
        end = start.replace(year=year + 1)
    elif finest == "month":
        end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    else:
        end = start + _UNIT[finest]
    return end + TZ_SLACK
