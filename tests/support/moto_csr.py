"""moto's `CreateCertificateFromCsr`, corrected to do what AWS IoT does: certify the public key of the CSR.

moto (5.x) answers with a certificate for a key pair of its own, so the private key a registration generated
locally would not match its certificate - a device could never connect with that bundle, and tests that check
"the bundle's key belongs to its certificate" (as the device's TLS handshake does) would check moto, not us.
This plugin replaces the backend method for the whole session (in-process mocks and the moto server thread):
same subject as the CSR, the CSR's public key, signed by a CA made once per session.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

import pytest


def _certify(csr_pem: str, ca: Any) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    request = x509.load_pem_x509_csr(csr_pem.encode("utf-8"))
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moto test CA (deeplens-cli tests)")])
        )
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(ca, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(scope="session", autouse=True)
def moto_certifies_the_csr_key() -> Iterator[None]:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.iot import models

    ca = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    original = models.IoTBackend.create_certificate_from_csr

    def create_certificate_from_csr(self: Any, csr: str, set_as_active: bool) -> Any:
        return self.register_certificate(_certify(csr, ca), ca_certificate_pem=None, set_as_active=set_as_active,
                                         status="INACTIVE")

    models.IoTBackend.create_certificate_from_csr = create_certificate_from_csr
    try:
        yield
    finally:
        models.IoTBackend.create_certificate_from_csr = original
