"""How a Greengrass V2 deployment ends: the statuses the device reports, component lifecycle states, and
the explanation (error stack and a hint) of a failed deployment.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

SUCCESS_STATUSES = ("COMPLETED", "SUCCEEDED")  # COMPLETED for a thing target, SUCCEEDED for a thing group
FAILURE_STATUSES = ("FAILED", "TIMED_OUT", "CANCELED", "REJECTED")
RUNNING_STATES = ("RUNNING", "FINISHED")
BROKEN_STATES = ("ERRORED", "BROKEN")

# Where a failed deployment's error stack points, and what to do about it (codes: nucleus DeploymentErrorCode).
FAILURE_HINTS: tuple[tuple[str, str], ...] = (
    ("ARTIFACT_CHECKSUM_MISMATCH", "the artifact object changed after its component version was created; "
                                   "run `deeplens-cli deploy` again: it publishes a new version under a new key"),
    ("S3_", "the token exchange role cannot read the artifact: run `deeplens-cli register-roles` (it grants "
            "s3:GetObject on the artifact prefix)"),
    ("ACCESS_DENIED", "the device's IoT policy or token exchange role lacks a permission: run "
                      "`deeplens-cli register-roles`, then deploy again (deploy repairs the device policy)"),
    ("NO_AVAILABLE_COMPONENT_VERSION", "another deployment to this device (e.g. its thing group) requires "
                                       "different component versions; deploy to one target only"),
    ("COMPONENT_VERSION_REQUIREMENTS_NOT_MET", "another deployment to this device (e.g. its thing group) requires "
                                               "different component versions; deploy to one target only"),
    ("COMPONENT_BROKEN", "the component failed to start: read /greengrass/v2/logs/<component>.log on the device"),
    ("INSTALL", "the Install step failed (pip): read /greengrass/v2/logs/<component>.log on the device"),
)


# ---------------------------------------------------------------------------------------------- outcomes


def describe_failure(effective: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(detail, errors) of a failed effective deployment: status and reason, the error stack and a hint."""
    status = effective.get("coreDeviceExecutionStatus", "FAILED")
    reason = effective.get("reason") or "no reason reported"
    details = effective.get("statusDetails") or {}
    stack = list(details.get("errorStack") or [])
    types = list(details.get("errorTypes") or [])
    errors = []
    if stack:
        errors.append("error stack: " + " > ".join(stack))
    if types:
        errors.append("error types: " + ", ".join(types))
    hint = failure_hint([*stack, reason])
    if hint:
        errors.append("hint: " + hint)
    return f"{status}: {reason}", tuple(errors)


def failure_hint(codes: Iterable[str]) -> str | None:
    text = " ".join(codes)
    for needle, hint in FAILURE_HINTS:
        if needle in text:
            return hint
    return None


def iso_time(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="seconds")
    return None if value is None else str(value)

