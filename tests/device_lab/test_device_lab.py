"""The device lab: the published Greengrass V2 component installed and run on real Debian root file systems.

Per root file system (Debian 12 amd64, Debian 13 amd64, Debian 12 arm64 under qemu-user), on a fresh copy of
the cached debootstrap tree:

1. the device bundle's `install.sh` (from register-device) runs as root, twice, with a stand-in `java` that does
   what the nucleus installer does to the OS (creates ggc_user with `useradd -r -m`);
2. a camera node `root:video 0660` is created and opened as ggc_user with and without its groups;
3. the simulated nucleus (deeplens_cli/simulator/nucleus.py) runs the component exactly as published - the
   recipe CreateComponentVersion received, the artifact from S3 - as ggc_user with its supplementary groups,
   credentials from the token exchange stand-in (STS AssumeRole of the role behind the role alias), S3 on
   the emulator: Install, Install again (must install nothing), then Run on a video file until the first crop
   is in the bucket, then SIGTERM.

Each test below checks one promise against what that run recorded. Timings are printed at the end of the
session; logs and timings of the last run stay in /var/cache/deeplens-device-lab/runs/<rootfs>/.

Run it:  sudo -E python -m pytest -q -p no:cacheprovider tests/device_lab  (CI runs it as root)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from deeplens_cli.simulator.nucleus import (
    GRACEFUL_STOP_S,
    ChrootRunner,
    DeviceFiles,
    DeviceIdentity,
    Nucleus,
)
from tests.device_lab.clips import LabClips
from tests.device_lab.cloud import CLIP_ON_DEVICE, REGION, THING, LabCloud
from tests.device_lab.device import ComponentInstalls, LabDevice, install_component_twice, unmount_leftovers
from tests.device_lab.report import TIMINGS
from tests.device_lab.rootfs import CACHE_DIR, ROOT_FILE_SYSTEMS, Builds, RootfsSpec, fresh_copy

pytestmark = pytest.mark.device_lab

FIRST_CROP_LIMIT_S = 600.0  # generous: CenterFace under qemu-user is ~10x slower than natively
OPEN_CAMERA = ("import errno, os\n"
               "try:\n    os.close(os.open('/dev/video0', os.O_RDWR))\n"
               "except OSError as error:\n    print(errno.errorcode[error.errno])\n"
               "else:\n    print('OPENED')\n")


@dataclass
class LabRun:
    """What happened on one root file system (None: the step did not run because an earlier one failed)."""

    spec: RootfsSpec
    log: Path
    timings: dict[str, Any] = field(default_factory=dict)
    install_sh: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    ggc_user_groups: list[str] = field(default_factory=list)
    camera_without_video: str | None = None
    camera_with_video: str | None = None
    install_timeout_s: float | None = None
    installs: ComponentInstalls = field(default_factory=ComponentInstalls)
    first_crop_s: float | None = None
    crop_keys: list[str] = field(default_factory=list)
    credential_requests: int = 0  # answered by the token exchange stand-in during Run
    run_alive_at_stop: bool | None = None
    stop_exit_code: int | None = None
    stop_s: float | None = None
    spool_files: list[str] = field(default_factory=list)
    run_log: str = ""

    def explain(self) -> str:
        return f"[{self.spec.name}] see {self.log}"


def _open_camera_as(device: LabDevice, uid: int, groups: list[int]) -> str:
    done = subprocess.run(["chroot", f"--userspec={uid}:{groups[0]}", f"--groups={','.join(map(str, groups))}",
                           str(device.root), "/usr/bin/python3", "-c", OPEN_CAMERA],
                          capture_output=True, text=True, timeout=120, check=False)
    return (done.stdout.strip() or done.stderr.strip())[-200:]


def _lab(spec: RootfsSpec, cloud: LabCloud, clips: LabClips, work: Path, builds: Builds) -> Iterator[LabRun]:
    started = time.monotonic()
    run = LabRun(spec=spec, log=work / "lab.log")
    prepared = fresh_copy(spec, work / "rootfs", run.log, builds)
    run.timings.update(cache="cold" if prepared.cold else "warm", debootstrap_s=round(prepared.built_s, 1),
                       fresh_copy_s=round(prepared.copied_s, 1))
    device = LabDevice(prepared.path, run.log)
    device.boot()
    try:
        # 1. install.sh, twice, as root, from the bundle folder; the nucleus zip is already unpacked beside it.
        run.install_sh = device.install_bundle_twice(cloud.bundle, run.timings)
        if run.install_sh[-1].returncode != 0:
            yield run
            return
        user = device.user("ggc_user")
        group_names = {device.group_id(name): name for name in ("video",)}
        run.ggc_user_groups = [group_names.get(g, str(g)) for g in user.groups]

        # 2. the camera node, as udev leaves it.
        device.add_camera_node()
        run.camera_without_video = _open_camera_as(device, user.uid, [user.gid])
        run.camera_with_video = _open_camera_as(device, user.uid, [user.gid, *user.groups])

        # 3. the component, as the nucleus runs it.
        clip_path = device.root / CLIP_ON_DEVICE.lstrip("/")
        clip_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clips.emulated if spec.foreign else clips.native, clip_path)
        clip_path.chmod(0o644)
        nucleus = Nucleus(device=DeviceIdentity(thing_name=THING, region=REGION),
                          runner=ChrootRunner(DeviceFiles(device.root)), user=user, logs=work / "logs",
                          credentials_uri=cloud.token_exchange.uri,
                          extra_environment={"AWS_ENDPOINT_URL_S3": cloud.moto_url},
                          issued_tokens=cloud.token_exchange.accepted_tokens)
        component = cloud.component
        _, run.install_timeout_s = nucleus.script(component, "Install")
        nucleus.prepare(component)
        run.installs = install_component_twice(nucleus, component, work / "logs" / "first-install.log")
        if run.installs.install_error is not None:
            yield run
            return
        run.timings.update(component_install_s=run.installs.install_s,
                           component_reinstall_s=run.installs.reinstall_s)

        cloud.delete_crops()
        requests_before = cloud.token_exchange.requests
        running = nucleus.start(component)
        while time.monotonic() - running.script.started < FIRST_CROP_LIMIT_S and running.alive():
            run.crop_keys = cloud.crop_keys()
            if run.crop_keys:
                run.first_crop_s = round(time.monotonic() - running.script.started, 1)
                break
            time.sleep(0.5)
        run.run_alive_at_stop = running.alive()
        run.stop_exit_code, stop_s = nucleus.stop(running)
        run.stop_s = round(stop_s, 2)
        run.crop_keys = cloud.crop_keys()
        run.credential_requests = cloud.token_exchange.requests - requests_before
        run.run_log = nucleus.run_log(component).read_text()
        spool = device.root / str(nucleus.work_path(component)).lstrip("/") / "spool"
        run.spool_files = sorted(p.name for p in spool.iterdir()) if spool.is_dir() else []
        run.timings.update(first_crop_s=run.first_crop_s, stop_s=run.stop_s)
        yield run
    finally:
        device.shut_down()
        run.timings["total_s"] = round(time.monotonic() - started, 1)
        TIMINGS[spec.name] = run.timings
        (work / "timings.json").write_text(json.dumps(run.timings, indent=2))
        shutil.rmtree(work / "rootfs", ignore_errors=True)


@pytest.fixture(scope="module", params=ROOT_FILE_SYSTEMS, ids=lambda spec: spec.name)
def lab(request: pytest.FixtureRequest, builds: Builds, lab_cloud: LabCloud, lab_clips: LabClips) -> Iterator[LabRun]:
    work = CACHE_DIR / "runs" / request.param.name  # the last run's logs stay here for reading
    unmount_leftovers(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    yield from _lab(request.param, lab_cloud, lab_clips, work, builds)


# ---------------------------------------------------------------------------------------------- the promises


def test_install_sh_exits_0_and_is_safe_to_run_twice(lab: LabRun) -> None:
    assert [done.returncode for done in lab.install_sh] == [0, 0], \
        f"{lab.explain()}\n" + "\n".join(done.stdout + done.stderr for done in lab.install_sh)[-3000:]


def test_install_sh_puts_ggc_user_in_the_video_group(lab: LabRun) -> None:
    assert "video" in lab.ggc_user_groups, lab.explain()


def test_ggc_user_opens_the_camera_only_through_the_video_group(lab: LabRun) -> None:
    # No driver is behind the node, so getting past the permission check means ENXIO.
    assert lab.camera_without_video == "EACCES", lab.explain()
    assert lab.camera_with_video == "ENXIO", lab.explain()


def test_component_install_succeeds_as_ggc_user_within_the_recipe_timeout(lab: LabRun) -> None:
    assert lab.installs.install_error is None, f"{lab.installs.install_error}\n{lab.installs.install_log[-3000:]}"
    assert lab.installs.install_s is not None and lab.install_timeout_s is not None
    assert lab.installs.install_s < lab.install_timeout_s
    assert "creating" in lab.installs.install_log and "venv" in lab.installs.install_log


def test_reinstalling_an_unchanged_component_installs_nothing(lab: LabRun) -> None:
    assert lab.installs.reinstall_s is not None, lab.installs.install_error
    assert "is up to date" in lab.installs.reinstall_log, lab.installs.reinstall_log[-2000:]
    assert "pip" not in lab.installs.reinstall_log and lab.installs.reinstall_s < 10


def test_run_uploads_face_crops_from_the_video_to_the_bucket(lab: LabRun) -> None:
    assert lab.first_crop_s is not None, f"no crop uploaded; Run log:\n{lab.run_log[-3000:]}"
    assert all(key.startswith("faces/") and key.endswith(".jpg") for key in lab.crop_keys)
    assert lab.credential_requests >= 1  # boto3 on the device used the token exchange role, not stray keys


def test_sigterm_stops_run_within_the_grace_period_with_the_spool_intact(lab: LabRun) -> None:
    assert lab.run_alive_at_stop, f"Run had already exited before SIGTERM; Run log:\n{lab.run_log[-3000:]}"
    assert lab.stop_s is not None and lab.stop_s < GRACEFUL_STOP_S, lab.run_log[-2000:]
    assert lab.stop_exit_code in (0, 1), lab.stop_exit_code  # its own exit, not SIGKILL (-9)
    assert not [name for name in lab.spool_files if name.endswith(".tmp")]
    # Entries only: the spool's folder also holds its marker (.deeplens-spool) and quarantine/ (edge_function/spool.py).
    stems = {name.rsplit(".", 1)[0] for name in lab.spool_files if re.fullmatch(r"\d{20}(-\d+-\d+)?\.(jpg|json)", name)}
    assert all(f"{stem}.jpg" in lab.spool_files and f"{stem}.json" in lab.spool_files for stem in stems)
