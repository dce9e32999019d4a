"""The fleet as `devices` and `status` show it: every device with a status read in bulk, filtered, counted and
cut into pages of output.

The reads cost pages, not devices: each target lists its things (250 a call) and summarises them from its bulk
reads (`fleet_statuses`: for Greengrass V2, ListCoreDevices and ListDeployments at 100 a call), and reads a
device in full only when its summary shows a problem the summary cannot explain, or with `--details`.

Output pages work as in the AWS CLI: `--max-items N` shows N devices and, when more are left, a next token;
`--starting-token T` continues after the last device shown. The token names that device (target and thing
name, the sort order), so it stays valid when devices are added or removed in between.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from deeplens_cli.errors import ConfigError
from deeplens_cli.targets.registry import each_target

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.cli.output import Reporter
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.base import Device, DeviceStatus

HEALTH_FILTERS = ("HEALTHY", "UNHEALTHY")  # --status: "ok", or anything else


@dataclass(frozen=True)
class FleetRow:
    """One device and what its target's bulk reads (or, where needed, its deep read) say about it."""

    device: Device
    status: DeviceStatus

    @property
    def healthy(self) -> bool:
        return self.status.health == "ok"

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.device.name, self.device.target, self.device.thing_name)

    def to_dict(self) -> dict[str, Any]:
        return {**self.device.to_dict(), "status": self.status.to_dict()}


@dataclass(frozen=True)
class FleetPage:
    """The rows of one output page, the fleet's counts (over every device, before the filter and the page) and
    the token of the next page."""

    rows: list[FleetRow]
    total: int
    by_health: dict[str, int] = field(default_factory=dict)
    by_deployment: dict[str, int] = field(default_factory=dict)
    next_token: str | None = None

    def summary_dict(self) -> dict[str, Any]:
        return {"devices": self.total, "by_health": self.by_health, "by_deployment": self.by_deployment}


def read_fleet(ctx: AwsContext, settings: Settings, reporter: Reporter | None = None,
               details: bool = False) -> list[FleetRow]:
    """Every device of every target with its bulk status, sorted by name."""
    def read(target: Any) -> list[FleetRow]:
        devices = target.list_devices()
        statuses = target.fleet_statuses(devices, details=details)
        return [FleetRow(device, statuses[device.thing_name]) for device in devices]

    rows = each_target(ctx, settings, read, reporter)
    return sorted(rows, key=lambda row: row.sort_key)


def page_of(rows: list[FleetRow], health: str | None = None, max_items: int | None = None,
            starting_token: str | None = None) -> FleetPage:
    """Count, filter (`--status`), then cut one page after the token's device."""
    by_health = dict(Counter(row.status.health for row in rows))
    by_deployment = dict(Counter(row.status.last_deployment_status or "none" for row in rows))
    chosen = [row for row in rows if health is None or row.healthy == (health.upper() == "HEALTHY")]
    if starting_token:
        after = decode_token(starting_token)
        chosen = [row for row in chosen if list(row.sort_key) > after]
    next_token = None
    if max_items is not None and len(chosen) > max_items:
        chosen = chosen[:max_items]
        next_token = encode_token(list(chosen[-1].sort_key))
    return FleetPage(chosen, len(rows), by_health, by_deployment, next_token)


def encode_token(after: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_token(token: str) -> list[str]:
    try:
        after = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["after"]
        if isinstance(after, list) and len(after) == 3 and all(isinstance(x, str) for x in after):
            return after
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise ConfigError(f"--starting-token {token!r} is not a token this command printed",
                      "pass the NextToken of the previous page, or leave --starting-token out to start at the top")


def needs_attention(rows: list[FleetRow]) -> list[FleetRow]:
    return [row for row in rows if not row.healthy or row.status.problems]


def counts_line(counts: dict[str, int], describe: Callable[[str], str] = str) -> str:
    return ", ".join(f"{count} {describe(state)}" for state, count in sorted(counts.items(), key=lambda kv: -kv[1]))


def health_caveats(statuses: Iterable[DeviceStatus | None]) -> list[str]:
    """What a table's health column cannot say per row (V2 health can be a day old): each caveat once."""
    return sorted({s.details["health_caveat"] for s in statuses if s is not None and s.details.get("health_caveat")})


def health_text(status: DeviceStatus) -> str:
    """A device's health for a table: the verdict plus, where the target gives one, when the device reported it
    (Greengrass V2 health is whatever the device last said, which can be a day old)."""
    return f"{status.health} ({status.health_detail})" if status.health_detail else status.health
