"""The emulated cloud of the device lab: names, and what a lab run needs from register-device and publish."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeplens_cli.simulator.nucleus import Deployed
from deeplens_cli.simulator.token_exchange import TokenExchangeServer

REGION = "us-east-1"
BUCKET = "deeplens-lab-face-crops"
DEVICE = "Lab"
THING = f"deeplens-{DEVICE}"
ROLE_ALIAS = "DeepLensGreengrassV2TokenExchangeRoleAlias"
CLIP_ON_DEVICE = "/opt/lab/faces.avi"


@dataclass
class LabCloud:
    """moto (IAM, IoT, S3, STS) and the Greengrass V2 control plane, after register-roles, register-device
    and publish: the bundle on disk, the published component as a device receives it, a token exchange server."""

    moto_url: str
    bundle: Path
    component: Deployed
    token_exchange: TokenExchangeServer
    s3: Any

    def crop_keys(self) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="faces/")
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def delete_crops(self) -> None:
        for key in self.crop_keys():
            self.s3.delete_object(Bucket=BUCKET, Key=key)


def cli(*args: str) -> str:
    """deeplens-cli in this process, as the console script runs it; returns stdout, fails the lab on error."""
    from deeplens_cli.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    if code != 0:
        raise AssertionError(f"deeplens-cli {' '.join(args)} exited {code}: {err.getvalue()}{out.getvalue()}")
    return out.getvalue()
