"""A device's certificate, the same for both targets: the key pair made here, the certificate asked for with a
CSR, kept when its key is in a bundle, retired otherwise.

The private key is generated on this machine and written (0600) into the bundle folder *before* IoT is asked
for a certificate (`CreateCertificateFromCsr`). So no key ever exists only in an API answer: when the answer
is lost (a connection reset after IoT issued the certificate, a kill), the key is on disk and the re-run finds
the certificate issued for it (`certificate_for_key`) and uses it, instead of leaving an orphan. A bundle
written by an earlier version (key from `CreateKeysAndCertificate`) is still resumed: the certificate whose
key reached the folder is kept (made active and attached, never replaced), one whose key is lost is retired
(detached, deactivated, deleted). Which certificate a folder holds is the bundle's business (one way for both
targets: bundle.held_certificate); what happens to it is here. Plan variables use one set of names: `certificate_arn`,
`certificate_id`, `certificate_pem`, and `csr` for the signing request.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.engine.plan import Action, ApiCall, LocalStep, Ref, Step, noop
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.iot import NOT_FOUND

RESOURCE = "iot-certificate"
ISSUED = {"certificate_arn": "certificateArn", "certificate_id": "certificateId", "certificate_pem": "certificatePem",
          "certificate_response_metadata": "ResponseMetadata"}  # RetryAttempts: did botocore ask twice?


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
    """A new active certificate for the key whose CSR is the plan variable `csr`; its ARN, id and PEM become
    the plan variables `certificate_*`."""
    return ApiCall("iot", "create_certificate_from_csr", {"certificateSigningRequest": Ref("csr"), "setAsActive": True},
                   outputs={**ISSUED, **more_outputs})


# ---------------------------------------------------------------------------------------------- local key pair


KEY_SEARCH_MARGIN_S = 600  # certificates issued this long before the key file was written are not searched


def new_private_key() -> str:
    """A new RSA 2048 private key (PEM, PKCS#1 - the form IoT hands out and both Greengrass cores read)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode("ascii")


def _load_key(private_pem: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)


def public_key_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    return _load_key(private_pem).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def key_fingerprint(private_pem: str) -> str:
    """SHA-256 of the public key (DER): what links a certificate to the key in a bundle."""
    from cryptography.hazmat.primitives import serialization

    der = _load_key(private_pem).public_key().public_bytes(serialization.Encoding.DER,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def csr_for(private_pem: str, thing: str) -> str:
    """The certificate signing request for the bundle's key: CN = the thing, serialNumber = the key's
    fingerprint (a second link to the key, for an issuer that does not copy the public key verbatim)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, thing[:64]),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, key_fingerprint(private_pem))])
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(_load_key(private_pem), hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_matches_key(certificate_pem: str, private_pem: str) -> bool:
    """True when the certificate was issued for this key: the same public key (AWS IoT), or the key's
    fingerprint in the subject that our CSR carried (an emulator that signs a fresh key of its own)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except ValueError:
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = _load_key(private_pem).public_key().public_bytes(serialization.Encoding.DER, public)
    if certificate.public_key().public_bytes(serialization.Encoding.DER, public) == ours:
        return True
    serials = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return any(attribute.value == key_fingerprint(private_pem) for attribute in serials)


def certificate_for_key(iot: Any, private_pem: str, written_at: float,
                        candidates: Iterable[Certificate] = ()) -> Certificate | None:
    """The IoT certificate issued for the bundle's key, if any: the run that wrote the key may have lost IoT's
    answer. The thing's own certificates are tried first, then those issued since the key was written (newest
    first; older ones cannot be for this key)."""
    for certificate in candidates:
        if certificate.pem and certificate_matches_key(certificate.pem, private_pem):
            return certificate
    since = written_at - KEY_SEARCH_MARGIN_S
    for listed in collect(iot, "list_certificates", "certificates", ascendingOrder=False):
        created = listed.get("creationDate")
        if created is not None and hasattr(created, "timestamp") and created.timestamp() < since:
            continue
        found = describe_certificate(iot, listed["certificateId"])
        if found and found.pem and certificate_matches_key(found.pem, private_pem):
            return found
    return None


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
def registration_lock(
    account: str, region: str, name: str, on_wait: Callable[[str], Any] | None = None
) -> Iterator[None]:
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


def duplicates_step(iot: Any, key_file: Path) -> LocalStep:
    """Right after `issue_certificate_call`: retire any other certificate issued for the same key.

    IoT has no idempotency token for CreateCertificateFromCsr, so when its answer is lost on the way back
    botocore's retry asks again and IoT issues a second certificate for the same CSR. The first is found by the
    key (as a re-run would find it), deactivated and deleted: brand new, it is attached to nothing yet.
    """
    def retire(variables: dict[str, Any]) -> dict[str, Any]:
        return retire_duplicates(iot, variables, lambda: (key_file.read_text(encoding="ascii"),
                                                          key_file.stat().st_mtime))

    return LocalStep("check that one certificate was issued for the key (a retried request can issue two)", retire)


def retire_duplicates(iot: Any, variables: Mapping[str, Any],
                      key: Callable[[], tuple[str, float]]) -> dict[str, Any]:
    """What `duplicates_step` does, for a key `key()` gives as (private key PEM, when it was made)."""
    if (variables.get("certificate_response_metadata") or {}).get("RetryAttempts", 1) == 0:
        # answered at the first attempt: nothing was asked twice, so there is no duplicate to look for (and a
        # fleet registering many cameras does not read every recent certificate once per camera)
        return {"duplicate_certificates_retired": []}
    private_pem, made_at = key()
    since = made_at - KEY_SEARCH_MARGIN_S
    retired = []
    for listed in collect(iot, "list_certificates", "certificates", ascendingOrder=False):
        created = listed.get("creationDate")
        if hasattr(created, "timestamp") and created.timestamp() < since:
            break  # newest first: every later one is older still
        if listed["certificateId"] == variables["certificate_id"]:
            continue
        found = describe_certificate(iot, listed["certificateId"])
        if found is None or not found.pem or not certificate_matches_key(found.pem, private_pem):
            continue
        if collect(iot, "list_principal_things", "things", principal=found.arn):
            continue  # attached: not a fresh duplicate (never the case for a retried create)
        if found.status == "ACTIVE":
            iot.update_certificate(certificateId=found.id, newStatus="INACTIVE")
        iot.delete_certificate(certificateId=found.id)
        retired.append(found.id)
    return {"duplicate_certificates_retired": retired}
