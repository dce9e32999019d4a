"""A Lambda function package as a Greengrass V1 core receives it: its digest (`CodeSha256`), the check that the
downloaded bytes are the published ones, and a safe unpack (no absolute paths, no `..`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath

from deeplens_cli.errors import DeeplensError


class CodeRefused(DeeplensError):
    """The package the device downloaded is not the one Lambda says was published."""




def code_sha256(data: bytes) -> str:
    """What Lambda reports as `CodeSha256`: base64 of the sha256 digest of the package bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def verify_code(data: bytes, expected_code_sha256: str, what: str = "the function package") -> None:
    """Refuse a package whose digest is not the published one (a tampered, stale or truncated download)."""
    try:
        expected = base64.b64decode(expected_code_sha256, validate=True)
    except (binascii.Error, ValueError):
        expected = b""
    if len(expected) != hashlib.sha256().digest_size:
        raise CodeRefused(f"{what}: Lambda reports no usable CodeSha256 ({expected_code_sha256!r})",
                          "publish the function again")
    actual = hashlib.sha256(data).digest()
    if actual != expected:
        raise CodeRefused(
            f"{what} does not match the published code: sha256 {base64.b64encode(actual).decode()} "
            f"!= CodeSha256 {expected_code_sha256}",
            "the package in S3 changed after publish; publish again (deploy does it)")


def unpack_code(data: bytes, destination: Path) -> list[str]:
    """Extract a zip into `destination`, refusing entries that would land outside it; returns the names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CodeRefused(f"the function package is not a zip file ({exc})", "publish the function again") from None
    names = []
    with archive:
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts or info.filename.startswith("\\"):
                raise CodeRefused(f"the function package has an unsafe entry {info.filename!r}",
                                  "rebuild the package; entries must be relative paths")
            names.append(info.filename)
        destination.mkdir(parents=True, exist_ok=True)
        archive.extractall(destination)
    return names


