"""The in-process Greengrass V2 control plane's records of core devices, and the service's paging.

Kept apart from `greengrassv2_service` (the operations) so each stays one concern: what the cloud knows about a
core device and how it reacts to deployments, and how list operations page their answers.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeplens_cli.simulator.greengrassv2_http import ApiError


@dataclass
class CoreDeviceRecord:
    """A core device as the cloud sees it, and how it reacts to deployments.

    behaviour: "healthy" (downloads artifacts, checks digests, runs the components), "fail" (reports `failure`),
    "reject", "offline" (never picks the deployment up), "timeout" (the IoT job times out) or "external" (a
    simulated nucleus elsewhere takes the deployment and reports its progress itself).
    """

    thing: str
    nucleus_version: str = "2.14.3"
    runtime: str = "aws_nucleus_classic"
    architecture: str = "aarch64"
    behaviour: str = "healthy"
    failure: dict[str, Any] = field(default_factory=lambda: {
        "reason": "COMPONENT_BROKEN: FAILED_ROLLBACK_COMPLETE: com.deeplens.FaceCrops is broken",
        "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"],
        "errorTypes": ["COMPONENT_ERROR"]})
    component_state: str = "RUNNING"  # lifecycle state a healthy core reports for deployed components
    polls_until_done: int = 2  # ListEffectiveDeployments calls that still see the deployment pending
    status: str = "HEALTHY"
    last_status: float = field(default_factory=time.time)
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)


def page_of(items: list[Any], query: dict[str, str], limit: int) -> tuple[list[Any], str | None]:
    """One page as the service pages: `maxResults` (at most `limit`, the model's maximum; the service default is
    the maximum too) from the offset in `nextToken`, and the token of the next page when there is one."""
    size = int(query.get("maxResults") or limit)
    if not 1 <= size <= limit:
        raise ApiError(400, "ValidationException", f"maxResults must be between 1 and {limit}")
    start = int(query.get("nextToken") or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def check_bundle(iot: Any, region: str, thing: str, bundle: Path) -> None:
    """A nucleus' first connection with this device bundle: the thing, an active certificate of it, the role
    alias and the endpoints must all be the ones IoT has (AssertionError otherwise)."""
    import yaml

    config = yaml.safe_load((bundle / "config.yaml").read_text())
    assert config["system"]["thingName"] == thing, "config.yaml names another thing"
    nucleus = config["services"]["aws.greengrass.Nucleus"]["configuration"]
    assert nucleus["awsRegion"] == region
    # moto invents a new endpoint prefix on every DescribeEndpoint call, so check the endpoint kinds
    assert re.fullmatch(rf"[a-z0-9]+-ats\.iot\.{region}\.amazonaws\.com", nucleus["iotDataEndpoint"])
    assert re.fullmatch(rf"[a-z0-9]+\.credentials\.iot\.{region}\.amazonaws\.com", nucleus["iotCredEndpoint"])
    iot.describe_role_alias(roleAlias=nucleus["iotRoleAlias"])  # raises when missing
    certificate = (bundle / "device.pem.crt").read_text()
    principals = iot.list_thing_principals(thingName=thing)["principals"]
    active = []
    for principal in principals:
        described = iot.describe_certificate(certificateId=principal.rsplit("/", 1)[-1])["certificateDescription"]
        if described["status"] == "ACTIVE":
            active.append(described["certificatePem"])
    assert certificate in active, "the bundle's certificate is not an active certificate of the thing"
