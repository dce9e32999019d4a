"""Timings of the lab runs in this session, keyed by root file system; printed by conftest at the end."""

from __future__ import annotations

from typing import Any

TIMINGS: dict[str, dict[str, Any]] = {}
