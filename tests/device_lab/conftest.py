"""Device lab fixtures: prerequisites, the emulated cloud the component was published to, and the test clip.

The lab needs root (chroot, mknod, mount) and Debian's debootstrap, qemu-user-static and binfmt-support; it
installs those packages itself when they are missing. Without root it is skipped on a developer machine; under
CI (`CI=true`) every missing prerequisite is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from deeplens_cli.simulator.nucleus import Deployed, fetch_artifacts
from deeplens_cli.simulator.token_exchange import TokenExchangeServer, assume_role, role_behind_alias
from tests.device_lab.clips import LabClips, build_lab_clips
from tests.device_lab.cloud import BUCKET, CLIP_ON_DEVICE, DEVICE, REGION, ROLE_ALIAS, THING, LabCloud, cli
from tests.device_lab.rootfs import CACHE_DIR, ROOT_FILE_SYSTEMS, Builds

LAB_PACKAGES = ("debootstrap", "qemu-user-static", "binfmt-support")



def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"device lab prerequisite missing under CI: {reason}")
    pytest.skip(f"device lab: {reason}")


def _dpkg_installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return done.returncode == 0 and "install ok installed" in done.stdout


@pytest.fixture(scope="session")
def lab_prerequisites() -> None:
    """Root, the Debian packages the lab uses (installed here when missing) and qemu-aarch64 in binfmt_misc."""
    if os.geteuid() != 0:
        _missing("needs root (chroot, mknod, mount); CI runs as root")
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        _missing("needs a Debian host (apt-get) to install debootstrap and qemu-user-static")
    missing = [package for package in LAB_PACKAGES if not _dpkg_installed(package)]
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", *missing]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                _missing(f"apt-get install {' '.join(missing)} failed: {done.stderr.strip()[-300:]}")
    subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True, check=False)
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not entry.is_file() or "enabled" not in entry.read_text():
        _missing("qemu-aarch64 is not enabled in binfmt_misc (update-binfmts --enable qemu-aarch64)")


@pytest.fixture(scope="session")
def builds(lab_prerequisites: None) -> Builds:
    """Starts debootstrap of every root file system not cached yet, all at once, before the first run (of either
    lab module: the DeepLens profile's root file system is one of them)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    started = Builds(log_dir=CACHE_DIR)
    started.start(ROOT_FILE_SYSTEMS)
    return started


# ---------------------------------------------------------------------------------------------- the cloud


@pytest.fixture(scope="session")
def lab_cloud(lab_prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCloud]:
    import boto3
    from moto.server import ThreadedMotoServer

    try:
        from tests.cli.fake_greengrassv2 import FakeGreengrassV2
    except ImportError:  # tests/ not importable as a package: load it next to this folder
        import sys

        sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
        from fake_greengrassv2 import FakeGreengrassV2

    work = tmp_path_factory.mktemp("lab-cloud")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("AWS_", "DEEPLENS_")):
                patch.delenv(name)
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        (work / "aws").mkdir()
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
               "AWS_REGION": REGION, "AWS_CONFIG_FILE": str(work / "aws" / "config"),
               "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws" / "credentials"), "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_ENDPOINT_URL": moto_url, "DEEPLENS_BUCKET": BUCKET, "DEEPLENS_DETECTION_SOURCE": CLIP_ON_DEVICE,
               "DEEPLENS_DEPLOY_POLL_S": "0.05"}
        for name, value in env.items():
            patch.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)
        fake = FakeGreengrassV2(s3=s3, iot=boto3.client("iot", endpoint_url=moto_url, region_name=REGION))
        patch.setenv("AWS_ENDPOINT_URL_GREENGRASSV2", fake.serve())
        patch.chdir(work)
        token_exchange = None
        try:
            cli("register-roles")
            bundle = work / "bundle"
            cli("register-device", "--name", DEVICE, "--greengrass", "v2", "--out", str(bundle))
            published = json.loads(cli("--output", "json", "publish", "--greengrass", "v2"))
            [(name, version)] = list(fake.components)  # what CreateComponentVersion received
            recipe = fake.components[(name, version)]["recipe"]
            component = Deployed(recipe=recipe, artifacts=fetch_artifacts(
                recipe, lambda bucket, key: s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            iot = boto3.client("iot", endpoint_url=moto_url, region_name=REGION)
            sts = boto3.client("sts", endpoint_url=moto_url, region_name=REGION)
            role_arn = role_behind_alias(iot, ROLE_ALIAS)
            token_exchange = TokenExchangeServer(lambda: assume_role(sts, role_arn, f"{THING}-lab"))
            token_exchange.start()
            assert published, "publish printed nothing"
            yield LabCloud(moto_url=moto_url, bundle=bundle, component=component, token_exchange=token_exchange,
                           s3=s3)
        finally:
            if token_exchange is not None:
                token_exchange.close()
            fake.close()
            server.stop()


# ---------------------------------------------------------------------------------------------- the clip


@pytest.fixture(scope="session")
def lab_clips(tmp_path_factory: pytest.TempPathFactory) -> LabClips:
    return build_lab_clips(tmp_path_factory.mktemp("lab-clip"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Per root file system: cold or warm cache and the seconds each stage took."""
    from tests.device_lab.report import TIMINGS

    if TIMINGS:
        terminalreporter.section("device lab timings (seconds)")
        for name, values in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {json.dumps(values)}")
