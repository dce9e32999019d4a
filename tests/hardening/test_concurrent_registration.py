"""Two `deeplens-cli register-device --greengrass v1 --name X` processes started together converge to one
device: one group, one core definition, one active certificate - and both exit 0.

They run as two real processes against one moto server, through the fault proxy, which holds back the answer
of ListGroups for a moment so that both plan before either creates anything (without the registration lock,
both then found nothing and each created a group, a core definition and a certificate).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

BUCKET = "deeplens-concurrency-crops"


def cli_command() -> list[str]:
    """The installed console script (a real `deeplens-cli` process), else the module."""
    script = Path(sys.executable).with_name("deeplens-cli")
    return [str(script)] if script.exists() else [sys.executable, "-m", "deeplens_cli"]


def run(args: list[str], cwd: Path, endpoint: str) -> subprocess.Popen:
    env = {**os.environ, "DEEPLENS_BUCKET": BUCKET, "NO_COLOR": "1"}
    return subprocess.Popen([*cli_command(), "--endpoint-url", endpoint, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


def test_two_concurrent_v1_registrations_make_one_device(fault_proxy: Any, tmp_path: Path) -> None:
    roles = run(["register-roles"], tmp_path, fault_proxy.url)
    assert roles.wait(timeout=300) == 0, roles.communicate()
    fault_proxy.delay("greengrass", "ListGroups", seconds=2.0, times=2)  # both plan before either creates

    jobs = []
    for job in ("a", "b"):
        folder = tmp_path / job
        folder.mkdir()
        jobs.append(run(["register-device", "--name", "X", "--greengrass", "v1"], folder, fault_proxy.url))
    outcomes = [(job.wait(timeout=300), *job.communicate()) for job in jobs]

    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    gg, iot = client("greengrass", fault_proxy.upstream), client("iot", fault_proxy.upstream)
    assert len(gg.list_groups()["Groups"]) == 1
    assert len(gg.list_core_definitions()["Definitions"]) == 1
    assert [c["status"] for c in iot.list_certificates()["certificates"]] == ["ACTIVE"]
    assert sum("nothing to do" in out for _, out, _ in outcomes) == 1, outcomes  # the second found it done
    bundles = [folder for folder in (tmp_path / "a" / "devices" / "X", tmp_path / "b" / "devices" / "X")
               if folder.exists() and any(folder.iterdir())]
    assert len(bundles) == 1  # the other run wrote nothing: it had nothing to do
