"""The Greengrass V2 device bundle: nucleus config.yaml, install.sh and README, written next to the
certificate and private key (bundle.py's order), and Amazon Root CA 1 taken from botocore's CA bundle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from deeplens_cli.targets import bundle as bundle_files
from deeplens_cli.targets.greengrass_v2 import device_profile
from deeplens_cli.targets.greengrass_v2.naming import THING_PREFIX

GREENGRASS_ROOT = "/greengrass/v2"
CERTIFICATE_FILE, PRIVATE_KEY_FILE = "device.pem.crt", "private.pem.key"  # in the device bundle
KEY_PAIR = bundle_files.KeyPairFiles(CERTIFICATE_FILE, PRIVATE_KEY_FILE)  # one pair per bundle
DERIVED_FILES = ("config.yaml", "install.sh", "README.md")
NUCLEUS_DOWNLOAD = "https://d2s8p88vqu9w66.cloudfront.net/releases/greengrass-nucleus-latest.zip"
ROOT_CA_DOWNLOAD = "https://www.amazontrust.com/repository/AmazonRootCA1.pem"
# SHA-256 of Amazon Root CA 1 (DER), as published by Amazon Trust Services; checked before it goes in a bundle.
AMAZON_ROOT_CA_1_SHA256 = "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"


# ---------------------------------------------------------------------------------------------- device bundle


def nucleus_config(comments: list[str], tree: Mapping[str, Any]) -> str:
    """A nucleus config.yaml (a core's, or a fleet's claim bundle): comment lines, then `tree` as block YAML.

    Every value is written as a JSON string, which is a valid, safely quoted YAML scalar: no YAML writer is
    needed, and no value (an endpoint, a thing name) can change the document's structure.
    """
    lines = [f"# {comment}" for comment in comments]

    def add(node: Mapping[str, Any], indent: str) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                lines.append(f"{indent}{key}:")
                add(value, indent + "  ")
            else:
                lines.append(f"{indent}{key}: {json.dumps(value)}")

    add(tree, "")
    return "\n".join([*lines, ""])



@dataclass(frozen=True)
class CoreBundle:
    """What a device needs to join as a Greengrass V2 core; written by `write` (the key never leaves it)."""

    thing: str
    region: str
    role_alias: str
    data_endpoint: str
    credential_endpoint: str
    device_profile: str = "auto"  # device_profile.PROFILES: what install.sh prepares (a stock DeepLens, or not)

    def config_yaml(self) -> str:
        """The nucleus `--init-config` file (manual provisioning). install.sh fills in the nucleus version."""
        root = GREENGRASS_ROOT
        return nucleus_config(
            [f"AWS IoT Greengrass V2 nucleus configuration of core device {self.thing} (written by deeplens-cli).",
             "install.sh replaces NUCLEUS_VERSION with the version of the nucleus it installs."],
            {"system": {"certificateFilePath": f"{root}/device.pem.crt", "privateKeyPath": f"{root}/private.pem.key",
                        "rootCaPath": f"{root}/AmazonRootCA1.pem", "rootpath": root, "thingName": self.thing},
             "services": {"aws.greengrass.Nucleus": {
                 "componentType": "NUCLEUS", "version": "NUCLEUS_VERSION", "configuration": {
                     "awsRegion": self.region, "iotRoleAlias": self.role_alias,
                     "iotDataEndpoint": self.data_endpoint, "iotCredEndpoint": self.credential_endpoint}}}})

    def installer_command(self) -> str:
        return (f'java -Droot="{GREENGRASS_ROOT}" -Dlog.store=FILE -jar ./GreengrassInstaller/lib/Greengrass.jar '
                "--init-config ./GreengrassInstaller/config.yaml --component-default-user ggc_user:ggc_group "
                "--setup-system-service true")

    def install_sh(self) -> str:
        root = GREENGRASS_ROOT
        return f"""#!/bin/sh
# Installs the AWS IoT Greengrass V2 nucleus as core device {self.thing} (written by deeplens-cli).
# Run on the device, as root, from this folder:   sudo sh ./install.sh
# Needs Java 8 or later (e.g. apt-get install -y default-jre-headless), curl and unzip. Safe to run again.
# WARNING: --init-config replaces an existing Greengrass configuration on this device.
set -eu
cd "$(dirname "$0")"
{device_profile.install_sh_block(self.device_profile, root)}command -v java >/dev/null 2>&1 || \
{{ echo "install Java 8 or later first (apt-get install -y default-jre-headless)" >&2; exit 1; }}
# The component builds its own Python environment (python3 -m venv); Debian ships venv support separately.
PACKAGES=""
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || PACKAGES="$VENV_PACKAGE"
case "$(uname -m)" in
  armv6l|armv7l)  # no numpy/OpenCV wheels for 32-bit ARM on PyPI: the component uses Debian's
    python3 -c 'import numpy' >/dev/null 2>&1 || PACKAGES="$PACKAGES python3-numpy"
    python3 -c 'import cv2' >/dev/null 2>&1 || PACKAGES="$PACKAGES python3-opencv" ;;
esac
if [ -n "$PACKAGES" ]; then
  command -v apt-get >/dev/null 2>&1 || {{ echo "install$PACKAGES with your package manager first" >&2; exit 1; }}
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
fi
mkdir -p {root}
chmod 755 {os.path.dirname(root)}
install -m 644 device.pem.crt {root}/device.pem.crt
install -m 600 private.pem.key {root}/private.pem.key
if [ -f AmazonRootCA1.pem ]; then
  install -m 644 AmazonRootCA1.pem {root}/AmazonRootCA1.pem
else
  curl -fsS {ROOT_CA_DOWNLOAD} -o {root}/AmazonRootCA1.pem
fi
if [ ! -f GreengrassInstaller/lib/Greengrass.jar ]; then
  curl -fsSL {NUCLEUS_DOWNLOAD} -o greengrass-nucleus-latest.zip
  unzip -q -o greengrass-nucleus-latest.zip -d GreengrassInstaller
fi
VERSION=$(java -jar GreengrassInstaller/lib/Greengrass.jar --version | sed -n 's/^AWS Greengrass v//p')
[ -n "$VERSION" ] || \
{{ echo "could not read the nucleus version from GreengrassInstaller/lib/Greengrass.jar" >&2; exit 1; }}
sed "s/NUCLEUS_VERSION/$VERSION/" config.yaml > GreengrassInstaller/config.yaml
{self.installer_command()}
# USB cameras are root:video 0660; the installer creates ggc_user without supplementary groups.
getent group video >/dev/null 2>&1 || groupadd --system video
usermod -aG video ggc_user
{device_profile.stream_groups_lines()}\
echo "Greengrass $VERSION installed as {self.thing}; now run: deeplens-cli deploy --device <name>"
"""

    def readme(self, device_name: str, has_root_ca: bool) -> str:
        ca = ("AmazonRootCA1.pem     Amazon Root CA 1 (verified by its SHA-256 fingerprint)\n" if has_root_ca else
              "(AmazonRootCA1.pem is downloaded by install.sh from Amazon Trust Services)\n")
        return f"""# Greengrass V2 core device {self.thing}

Bundle written by `deeplens-cli register-device --name {device_name} --greengrass v2`.

```
device.pem.crt        the device certificate (active, attached to IoT thing {self.thing})
private.pem.key       its private key - issued once, mode 0600: keep it secret, never commit it
{ca}config.yaml           nucleus configuration (region {self.region}, role alias {self.role_alias})
install.sh            installs the nucleus with that configuration
```

On the device (Linux, Java 8 or later, as root):

```
sudo sh ./install.sh
```

which copies the certificate, key and root CA to {GREENGRASS_ROOT}, downloads the nucleus installer
({NUCLEUS_DOWNLOAD}) unless ./GreengrassInstaller exists, and runs:

```
{self.installer_command()}
```

`--init-config` replaces any existing Greengrass configuration on the device. Then, on your workstation:

```
deeplens-cli deploy --device {device_name}
deeplens-cli status --device {device_name}
```

install.sh also installs `python3-venv` when it is missing (the component builds its own Python environment)
and adds ggc_user to the `video` group, which owns USB cameras (`/dev/video*`, mode 0660), so the
component can open the camera. It is safe to run again.
"""

    def write(self, out_dir: str, certificate_pem: str, private_key: str, root_ca: str | None) -> Path:
        """Write the bundle (bundle.py's order): the certificate first - it names the certificate the folder was
        made for, so an interruption before the key is resumable - then the key (0600, never overwritten), then
        the derived files."""
        folder = Path(out_dir)
        bundle_files.prepare_folder(folder)
        bundle_files.replace_file(folder / CERTIFICATE_FILE, certificate_pem)
        bundle_files.write_secret(folder / PRIVATE_KEY_FILE, private_key)
        self.complete(folder, certificate_pem, root_ca)
        return folder

    def complete(self, folder: Path, certificate_pem: str, root_ca: str | None) -> None:
        """The bundle's non-secret files, each replaced atomically; the key is never touched."""
        bundle_files.prepare_folder(folder)
        bundle_files.replace_file(folder / CERTIFICATE_FILE, certificate_pem)
        if root_ca:
            bundle_files.replace_file(folder / "AmazonRootCA1.pem", root_ca)
        bundle_files.replace_file(folder / "config.yaml", self.config_yaml())
        bundle_files.replace_file(folder / "install.sh", self.install_sh(), mode=0o755)
        bundle_files.replace_file(folder / "README.md",
                                  self.readme(self.thing[len(THING_PREFIX):], root_ca is not None))


def amazon_root_ca_1() -> str | None:
    """Amazon Root CA 1 from botocore's CA bundle, checked against its published fingerprint; None if absent."""
    import botocore

    bundle = Path(botocore.__file__).parent / "cacert.pem"
    try:
        text = bundle.read_text()
    except OSError:
        return None
    marker = text.find('# Label: "Amazon Root CA 1"')
    begin = text.find("-----BEGIN CERTIFICATE-----", marker)
    end = text.find("-----END CERTIFICATE-----", begin)
    if marker < 0 or begin < 0 or end < 0:
        return None
    pem = text[begin:end + len("-----END CERTIFICATE-----")] + "\n"
    body = "".join(line for line in pem.splitlines() if "-----" not in line)
    if hashlib.sha256(base64.b64decode(body)).hexdigest() != AMAZON_ROOT_CA_1_SHA256:
        return None
    return pem


