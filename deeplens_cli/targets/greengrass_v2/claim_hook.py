"""The pre-provisioning hook of a fleet's claim: the Lambda function AWS IoT asks before it registers a camera.

Why it exists: the claim certificate ships in every camera's bundle, so whoever reads one camera's SD card holds
it. Without a hook, IoT registers whatever `DeviceName` the claim holder sends: the name of a camera that already
exists (a new certificate on that thing: its deployments, its topics, its AWS credentials) or any number of new
things. This hook lets a registration through only when the name

* follows the device-name rule (letters, digits, hyphens, at most 100),
* is on the fleet's allow-list, a JSON object the operator writes with `register-device --fleet G --claim --allow`
  (`{"fleet": G, "names": [...]}` in S3, read on every call, so an edit applies at once), and
* is not a thing yet: a name registers once, and a camera that exists is never registered again.

Anything unexpected - an event of the wrong shape, a list that cannot be read or parsed, an error while asking IoT
whether the thing exists - refuses. IoT calls the function with the event documented in the AWS IoT Developer
Guide ("Pre-provisioning hooks": claimCertificateId, certificateId, certificatePem, templateArn, clientId,
parameters) and provisions only on `{"allowProvisioning": true}`.

This file is the function's whole code (packaged alone, see claim_guard.hook_package): the standard library, and
boto3 from the Lambda runtime, imported only by `handler`. `decide` is the logic as plain code, testable with no
AWS at all.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

# The rule of deeplens_cli/settings/device_names.py (this file cannot import it: it runs alone in Lambda; a test
# keeps the two equal).
DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}\Z")
MAX_ALLOW_LIST_BYTES = 1_000_000  # ~10,000 names of 100 characters; a larger object is refused, not parsed
ENV_BUCKET, ENV_KEY, ENV_FLEET, ENV_TEMPLATE, ENV_PREFIX = (
    "ALLOW_LIST_BUCKET", "ALLOW_LIST_KEY", "FLEET", "TEMPLATE_NAME", "THING_PREFIX")


@dataclass(frozen=True)
class Decision:
    """The hook's answer and why (the reason goes to the function's log, never to the device)."""

    allow: bool
    reason: str

    def response(self) -> dict[str, Any]:
        return {"allowProvisioning": self.allow}


def parse_allow_list(data: bytes, fleet: str) -> frozenset[str]:
    """The names of an allow-list object; ValueError for anything but the strict shape the tool writes."""
    if len(data) > MAX_ALLOW_LIST_BYTES:
        raise ValueError(f"allow-list larger than {MAX_ALLOW_LIST_BYTES} bytes")

    def no_constant(value: str) -> Any:
        raise ValueError(f"not JSON: {value}")

    document = json.loads(data.decode("utf-8"), parse_constant=no_constant)
    if not isinstance(document, dict) or document.get("fleet") != fleet or not isinstance(document.get("names"), list):
        raise ValueError("not an allow-list of this fleet")
    names = document["names"]
    if not all(isinstance(name, str) and DEVICE_NAME.fullmatch(name) for name in names):
        raise ValueError("allow-list holds a name that breaks the device-name rule")
    return frozenset(names)


def decide(event: Any, template: str, allowed: Callable[[], frozenset[str]],
           thing_exists: Callable[[str], bool], thing_prefix: str = "deeplens-") -> Decision:
    """Whether IoT may register the camera this event asks for.

    `allowed` reads the allow-list and `thing_exists` asks IoT; both are called only for a well-formed event and
    an error in either refuses.
    """
    if not isinstance(event, dict):
        return Decision(False, "event is not an object")
    template_arn = event.get("templateArn")
    if not isinstance(template_arn, str) or not template_arn.endswith(f":provisioningtemplate/{template}"):
        return Decision(False, f"event names template {_shown(template_arn)}, not {template}")
    parameters = event.get("parameters")
    name = parameters.get("DeviceName") if isinstance(parameters, dict) else None
    if not isinstance(name, str) or not DEVICE_NAME.fullmatch(name):
        return Decision(False, f"DeviceName {_shown(name)} is not a valid device name")
    try:
        if name not in allowed():
            return Decision(False, f"DeviceName {name!r} is not on the allow-list")
        if thing_exists(thing_prefix + name):
            return Decision(False, f"thing {thing_prefix + name!r} already exists")
    except Exception as exc:  # noqa: BLE001 - any failure refuses (fail closed), and says which
        return Decision(False, f"cannot check {name!r}: {exc.__class__.__name__}")
    return Decision(True, f"{name!r} is allowed and not registered yet")


def _shown(value: Any) -> str:
    """A value from the device, for the log: escaped (repr) and bounded."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point: the allow-list from S3, the thing from IoT, the decision logged and returned."""
    import boto3

    bucket, key, fleet = os.environ[ENV_BUCKET], os.environ[ENV_KEY], os.environ[ENV_FLEET]

    def allowed() -> frozenset[str]:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{MAX_ALLOW_LIST_BYTES}")
        return parse_allow_list(body["Body"].read(), fleet)

    def thing_exists(thing: str) -> bool:
        iot = boto3.client("iot")
        try:
            iot.describe_thing(thingName=thing)
        except iot.exceptions.ResourceNotFoundException:
            return False
        return True

    decision = decide(event, os.environ[ENV_TEMPLATE], allowed, thing_exists, os.environ.get(ENV_PREFIX, "deeplens-"))
    print(json.dumps({"allowProvisioning": decision.allow, "reason": decision.reason}))  # to CloudWatch Logs
    return decision.response()
