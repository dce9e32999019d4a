"""The Greengrass V1 device bundle: certs/, config/config.json, README.txt and the manifest naming the thing
and certificate. Which certificate a folder already holds is told by bundle.held_certificate (KEY_PAIR says
where this bundle keeps certificates and keys); the manifest's thing says whose folder it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from deeplens_cli.targets import bundle
from deeplens_cli.targets.registration import csr_for, public_key_pem

ROOT_CA_URL = "https://www.amazontrust.com/repository/AmazonRootCA1.pem"
GREENGRASS_ROOT = "/greengrass"  # the Greengrass V1 default; a DeepLens keeps it under /opt/awscam/greengrass


PENDING_KEY = "pending.private.key"  # certs/: the key made here, until IoT's certificate for it names the files
KEY_PAIR = bundle.KeyPairFiles("certs/*.cert.pem", "certs/*.private.key")  # * = the certificate id's first 10


BUNDLE_NAMES = (bundle.MANIFEST, "certs", "config", "README.txt")


def check_bundle_folder(out_dir: Path, thing: str) -> None:
    """An existing, non-empty --out is accepted only when it is this device's own bundle from an interrupted
    registration (its manifest names the thing, and it holds nothing but bundle files): checked on every
    attempt, as anything else may hold another device's key or the user's own files."""
    manifest = bundle.read_manifest(out_dir)
    owner = f"thing {manifest.get('thing_name')}" if manifest else None
    bundle.check_folder(out_dir, BUNDLE_NAMES, manifest is not None and manifest.get("thing_name") == thing, owner)
    bundle.check_creatable(out_dir)


def prepare_key(out_dir: Path, thing_arn: str, region: str) -> str:
    """Before IoT is asked for a certificate: the manifest naming the thing, then the private key made here
    (0600, certs/pending.private.key, kept if an earlier run already wrote one); returns the key's CSR."""
    bundle_dirs(out_dir)
    if bundle.read_manifest(out_dir) is None:
        bundle.write_manifest(out_dir, {"thing_arn": thing_arn, "thing_name": thing_arn.rsplit("/", 1)[-1],
                                        "region": region})
    return csr_for(bundle.ensure_private_key(out_dir / "certs" / PENDING_KEY), thing_arn.rsplit("/", 1)[-1])


def write_bundle(out_dir: Path, variables: dict[str, Any], thing_arn: str, endpoint: str,
                 region: str) -> dict[str, Any]:
    """Write the device bundle around the key `prepare_key` made, once IoT issued its certificate.

    Layout (a Greengrass V1 core bundle): certs/<id>.cert.pem, certs/<id>.private.key, certs/<id>.public.key,
    config/config.json, README.txt, plus deeplens-bundle.json naming the thing and certificate. The root CA is
    a reference (ROOT_CA_URL): it is public, and fetching it here would mean a download.
    """
    finish_bundle(out_dir, str(variables["certificate_id"]), str(variables["certificate_arn"]),
                  variables["certificate_pem"], thing_arn, endpoint, region)
    return {"bundle_dir": str(out_dir)}


def finish_bundle(out_dir: Path, certificate_id: str, certificate_arn: str, certificate_pem: str, thing_arn: str,
                  endpoint: str, region: str) -> None:
    """The pending key takes the certificate's name (hard link, never overwriting), then the manifest names the
    certificate, then the derived files. Each step is safe to repeat after an interruption."""
    prefix = certificate_id[:10]
    bundle_dirs(out_dir)
    pending, key_file = out_dir / "certs" / PENDING_KEY, out_dir / "certs" / f"{prefix}.private.key"
    if bundle.holds_private_key(pending):
        if not key_file.exists():
            os.link(pending, key_file)
        pending.unlink()
    bundle.write_manifest(out_dir, {
        "thing_arn": thing_arn, "thing_name": thing_arn.rsplit("/", 1)[-1], "certificate_id": certificate_id,
        "certificate_arn": certificate_arn, "region": region})
    if bundle.holds_private_key(key_file):
        bundle.replace_file(out_dir / "certs" / f"{prefix}.public.key",
                            public_key_pem(key_file.read_text(encoding="ascii")))
    complete_bundle(out_dir, certificate_id, certificate_pem, thing_arn, endpoint, region)


def complete_bundle(out_dir: Path, certificate_id: str, certificate_pem: str, thing_arn: str, endpoint: str,
                    region: str) -> None:
    """The bundle's non-secret files: certificate, core config, README (rewritten; the key is never touched)."""
    prefix = certificate_id[:10]
    bundle_dirs(out_dir)
    bundle.replace_file(out_dir / "certs" / f"{prefix}.cert.pem", certificate_pem)
    bundle.replace_file(out_dir / "config" / "config.json",
                        json.dumps(core_config(prefix, thing_arn, endpoint, region), indent=2) + "\n")
    bundle.replace_file(out_dir / "README.txt", bundle_readme(prefix, thing_arn))


def bundle_dirs(out_dir: Path) -> None:
    bundle.prepare_folder(out_dir)
    (out_dir / "certs").mkdir(mode=0o700, exist_ok=True)
    (out_dir / "config").mkdir(mode=0o755, exist_ok=True)


def core_config(prefix: str, thing_arn: str, endpoint: str, region: str) -> dict[str, Any]:
    """The core's config/config.json (Greengrass V1 `coreThing` + `crypto` sections)."""
    certs = f"file://{GREENGRASS_ROOT}/certs"
    return {
        "coreThing": {"caPath": "root.ca.pem", "certPath": f"{prefix}.cert.pem", "keyPath": f"{prefix}.private.key",
                      "thingArn": thing_arn, "iotHost": endpoint,
                      "ggHost": f"greengrass-ats.iot.{region}.amazonaws.com", "keepAlive": 600},
        "runtime": {"cgroup": {"useSystemd": "yes"}},
        "managedRespawn": False,
        "crypto": {"caPath": f"{certs}/root.ca.pem", "principals": {
            "IoTCertificate": {"privateKeyPath": f"{certs}/{prefix}.private.key",
                               "certificatePath": f"{certs}/{prefix}.cert.pem"},
            "SecretsManager": {"privateKeyPath": f"{certs}/{prefix}.private.key"}}},
    }


def bundle_readme(prefix: str, thing_arn: str) -> str:
    return (
        f"Greengrass V1 core bundle for {thing_arn}\n\n"
        f"certs/{prefix}.cert.pem     the core's certificate\n"
        f"certs/{prefix}.private.key  its private key (mode 0600) - keep it secret; it was issued once\n"
        f"certs/{prefix}.public.key   its public key\n"
        "config/config.json          the core's configuration\n\n"
        f"The root CA is not included: download Amazon Root CA 1 from {ROOT_CA_URL}\n"
        f"into {GREENGRASS_ROOT}/certs/root.ca.pem on the device.\n"
        f"Copy certs/ and config/ to {GREENGRASS_ROOT}/ on the device (a DeepLens keeps Greengrass under\n"
        "/opt/awscam/greengrass) and restart the Greengrass daemon.\n"
    )
