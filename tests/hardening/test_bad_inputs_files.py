"""The local file system (rows of bad_input_table.TABLE): read-only folders, full disks, names too long.

Each is real: a tmpfs mounted read-only or filled up (tests/support/filesystems.py; root only, and CI runs as root),
never a patched `open`. The old tree said "unexpected error: OSError ... report it" (exit 1) to every one of them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Callable

import boto3
import pytest

from tests.commands.crop_fixtures import BUCKET as CROPS_BUCKET
from tests.commands.crop_fixtures import put_crops
from tests.hardening.bad_input_table import DEVICE, Cli, expect
from tests.support.filesystems import fill_up, free_up

Mount = Callable[..., Path]
CROPS_ENV = {"DEEPLENS_BUCKET": CROPS_BUCKET}


def crops_in_the_bucket(count: int, size: int = 6000) -> list[str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=CROPS_BUCKET)
    now = dt.datetime.now(dt.timezone.utc)
    return put_crops(s3, "cam-a", [now - dt.timedelta(minutes=m) for m in range(1, count + 1)], body=b"\xff" * size)


# ---------------------------------------------------------------------------------------------- faces --download


def test_download_read_only(cli: Cli, tmpfs: Mount) -> None:
    crops_in_the_bucket(2)
    folder = tmpfs(read_only=True)
    for target in (folder, folder / "crops"):  # the read-only folder itself, or one to be made in it
        result = cli.refused_up_front("download-read-only", "--output", "json", "faces", "--download", str(target),
                                      env=CROPS_ENV)
        assert json.loads(result.stdout)["error"]["code"] == "read_only"


def test_download_name_too_long(cli: Cli) -> None:
    crops_in_the_bucket(1)
    cli.refused_up_front("download-name-too-long", "faces", "--download", "crops-" + "x" * 300, env=CROPS_ENV)
    assert os.listdir(".") == []  # nothing made


def test_download_disk_full(cli: Cli, tmpfs: Mount) -> None:
    """The first crop fits, the second does not: one line naming it, no half-written file; with space again the
    same command fetches only the rest."""
    crops_in_the_bucket(3)
    folder = tmpfs(64)
    fill_up(folder, leave_bytes=8192)

    result = cli("faces", "--download", str(folder / "crops"), env=CROPS_ENV)

    expect("download-disk-full", result.exit_code, result.stderr)
    assert not [name for name in os.listdir(folder / "crops") if name.startswith(".part-")]
    free_up(folder)
    again = cli("--output", "json", "faces", "--download", str(folder / "crops"), env=CROPS_ENV)
    assert again.exit_code == 0, again.stderr
    download = json.loads(again.stdout)["download"]
    assert len(download["written"]) + len(download["skipped"]) == 3 and download["skipped"]


# ---------------------------------------------------------------------------------------------- init


def test_init_read_only(cli: Cli, tmpfs: Mount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmpfs(read_only=True))
    result = cli.refused_up_front("init-read-only", "init", "--bucket", "my-face-crops")
    assert result.stdout == ""


def test_init_config_read_only(cli: Cli, tmpfs: Mount) -> None:
    config = tmpfs(read_only=True) / "deeplens.yaml"
    result = cli.refused_up_front("init-config-read-only", "--output", "json", "--config", str(config), "init",
                                  "--bucket", "my-face-crops")
    assert json.loads(result.stdout)["error"]["code"] == "read_only"


# ---------------------------------------------------------------------------------------------- register-device


def test_bundle_disk_full(cli: Cli, tmpfs: Mount) -> None:
    """The private key fits, the certificate does not: the line names the file and says a re-run converges; with
    space again it does (one thing, a complete bundle, no temporary file left)."""
    cli.ok("register-roles")
    folder = tmpfs(64)
    fill_up(folder, leave_bytes=4096)
    bundle = folder / "bundle"

    result = cli("register-device", "--name", DEVICE, "--out", str(bundle))

    expect("bundle-disk-full", result.exit_code, result.stderr)
    assert not [name for name in os.listdir(bundle) if name.endswith(".tmp")]
    free_up(folder)
    cli.ok("register-device", "--name", DEVICE, "--out", str(bundle))
    assert {"device.pem.crt", "private.pem.key", "config.yaml", "install.sh"} <= set(os.listdir(bundle))
    assert len(boto3.client("iot", region_name="us-east-1").list_things()["things"]) == 1


# ---------------------------------------------------------------------------------------------- demo


def test_demo_out_read_only(cli: Cli, tmpfs: Mount) -> None:
    result = cli.refused_up_front("demo-out-read-only", "demo", "--out", str(tmpfs(read_only=True) / "demo-out"))
    assert result.stdout == ""
