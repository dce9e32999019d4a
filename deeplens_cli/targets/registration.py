"""A device's certificate, the same for both targets: issue one, keep the one whose key a bundle holds, retire
the others.

IoT hands out a certificate's private key once, in the `CreateKeysAndCertificate` response, so a registration
that was interrupted leaves either a certificate whose key reached the bundle folder (kept: made active and
attached, never replaced) or one whose key is lost (retired: detached, deactivated, deleted). Which certificate
a folder holds is the bundle's business (bundle.py and each target's core_bundle); what happens to it is here.
Plan variables use one set of names: `certificate_arn`, `certificate_id`, `certificate_pem`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.plan import Action, ApiCall, LocalStep, Step, noop
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.iot import NOT_FOUND

RESOURCE = "iot-certificate"
ISSUED = {"certificate_arn": "certificateArn", "certificate_id": "certificateId", "certificate_pem": "certificatePem"}


@dataclass(frozen=True)
class Certificate:
    """An IoT certificate as `DescribeCertificate` describes it."""

    arn: str
    id: str
    status: str
    pem: str

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> Certificate:
        return cls(description["certificateArn"], description["certificateId"], description.get("status", ""),
                   description.get("certificatePem", ""))

    @property
    def resource(self) -> str:
        return certificate_resource(self.id)


def certificate_resource(certificate_id: str) -> str:
    """The plan resource of a certificate: its id's first ten characters, as DeepLens names bundle files."""
    return f"{RESOURCE}/{certificate_id[:10]}"


def describe_certificate(iot: Any, certificate_id: str) -> Certificate | None:
    described = maybe(lambda: iot.describe_certificate(certificateId=certificate_id), NOT_FOUND)
    return Certificate.from_description(described["certificateDescription"]) if described else None


def thing_certificates(iot: Any, thing: str) -> list[Certificate]:
    """The certificates attached to a thing (none when the thing does not exist)."""
    principals = maybe(lambda: collect(iot, "list_thing_principals", "principals", thingName=thing), NOT_FOUND) or []
    found = (describe_certificate(iot, arn.rsplit("/", 1)[-1]) for arn in principals if ":cert/" in arn)
    return [certificate for certificate in found if certificate is not None]


def certificate_of_pem(iot: Any, pem: str) -> Certificate | None:
    """The IoT certificate with this PEM, or None when IoT does not have it.

    An IoT certificate ID is the SHA-256 of the certificate (DER); moto's default is the SHA-256 of the PEM
    text, tried second.
    """
    body = "".join(line for line in pem.splitlines() if line and "-----" not in line)
    candidates = [hashlib.sha256(pem.encode()).hexdigest()]
    try:
        candidates.insert(0, hashlib.sha256(base64.b64decode(body, validate=True)).hexdigest())
    except ValueError:
        pass
    for certificate_id in candidates:
        found = describe_certificate(iot, certificate_id)
        if found and found.pem.strip() == pem.strip():
            return found
    return None


def issue_certificate_call(**more_outputs: str) -> ApiCall:
    """A new active certificate; its ARN, id and PEM become the plan variables `certificate_*`."""
    return ApiCall("iot", "create_keys_and_certificate", {"setAsActive": True}, outputs={**ISSUED, **more_outputs})


def plan_kept_certificate(iot: Any, certificate: Certificate, thing: str, attached: bool, out_dir: str,
                          missing: list[str], complete: Callable[[dict[str, Any]], Any],
                          policy: str | None = None) -> Action:
    """The certificate whose key the bundle holds: made active, attached to the thing (and to `policy` when
    given), and the bundle's `missing` files written by `complete` - never a second certificate."""
    steps: list[Step] = []
    reasons = []
    if certificate.status != "ACTIVE":
        reasons.append(f"{certificate.status}, must be ACTIVE")
        steps.append(ApiCall("iot", "update_certificate", {"certificateId": certificate.id, "newStatus": "ACTIVE"}))
    if not attached:
        reasons.append(f"not attached to {thing}")
        steps.append(ApiCall("iot", "attach_thing_principal", {"thingName": thing, "principal": certificate.arn}))
    if policy is not None and policy not in device_iot.attached_policies(iot, certificate.arn):
        reasons.append(f"not attached to {policy}")
        steps.append(ApiCall("iot", "attach_policy", {"policyName": policy, "target": certificate.arn}))
    if missing:
        reasons.append("bundle incomplete: " + ", ".join(missing))
        steps.append(LocalStep(f"complete the device bundle in {out_dir} (the key is already there)", complete))
    if not steps:
        return noop(certificate.resource, f"active and attached; its private key is in {out_dir}",
                    certificate_id=certificate.id)
    return Action(certificate.resource, "update", "; ".join(reasons) + f" (its private key is in {out_dir})",
                  tuple(steps), details={"certificate_id": certificate.id})


def retire_certificate(iot: Any, certificate: Certificate, reason: str, thing: str | None = None) -> Action:
    """Detach thing and policies, deactivate, delete: the only order IoT accepts."""
    steps = device_iot.certificate_teardown(certificate.arn, device_iot.attached_policies(iot, certificate.arn),
                                            thing=thing, status=certificate.status)
    return Action(certificate.resource, "delete", reason, steps, details={"certificate_id": certificate.id})


@contextmanager
def registration_lock(account: str, region: str, name: str, on_wait: Callable[[str], Any] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on registering `name` in this account and region, for the whole command.

    Two `register-device --name X` started together (CI jobs on one runner) would otherwise both find nothing
    and both create a group, a core definition and a certificate. With the lock the second waits, then finds
    the device registered. The lock is a file in the user's temporary folder (fcntl.flock, released by the
    kernel when the process ends, even on kill -9); on a system without fcntl (Windows) there is none, and
    runs on different machines are not serialised (docs/troubleshooting.md, "two registrations at once").
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(tempfile.gettempdir()) / f"deeplens-cli-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"register-{account}-{region}-{name}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"another register-device --name {name} is running for this account; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
