"""A lab device made to look like a stock AWS DeepLens (device software 1.4.5+), as far as a root file system can.

A real DeepLens is Ubuntu 16.04 on x86-64; Debian's mirrors have no Ubuntu, so the stand-in is the lab's Debian 12
amd64 root file system, with what a DeepLens adds on top of its OS and nothing more:

* **Python 3.7**: the pyenv-built 3.7.16 CI already has, copied to `/usr/local` (the interpreter, libpython and
  the standard library; not its tests, static library or site-packages), then `ldconfig`. Its extension modules
  link against the root file system's own libssl, libffi, libsqlite3... (`python37_imports` checks they load);
* **awscam** in that Python's system site-packages: our stand-in (deeplens_cli/simulator/awscam.py), whose
  camera reads `$DEEPLENS_SIM_SOURCE` and whose model is the project's CenterFace detector;
* the awscam folders: the face model file `/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml` (a placeholder:
  the stand-in never reads it) and the camera stream FIFO `/opt/awscam/out/ch1_out.h264`, owned by group
  `aws_cam` mode 0640 (which group owns it on a real DeepLens is not public: install.sh reads it on the device);
* the GPU node `/dev/dri/renderD128` (226, 128), root:video 0660 as on Ubuntu 16.04;
* the Greengrass V1 daemon: a `systemctl` stand-in (no systemd runs in a chroot) and a `greengrassd` script at
  the DeepLens path, both recording what they were asked to do in /var/log/deeplens-lab-calls.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.device_lab.device import LabDevice

PYTHON37_HOME = Path(os.environ.get("DEEPLENS_LAB_PYTHON37", "/root/.pyenv/versions/3.7.16"))
AWSCAM_STAND_IN = Path(__file__).parents[2] / "deeplens_cli" / "simulator" / "awscam.py"
MODEL = "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"
STREAM = "/opt/awscam/out/ch1_out.h264"
STREAM_GROUP = "aws_cam"
GPU_NODE = "/dev/dri/renderD128"
CALLS = "/var/log/deeplens-lab-calls"
SITE_PACKAGES = "/usr/local/lib/python3.7/site-packages"
_RECORDER = f'#!/bin/sh\necho "$(basename "$0") $*" >> {CALLS}\n'


def install_python37(device: LabDevice) -> None:
    """Python 3.7.16 at /usr/local, as a DeepLens has its 3.7 beside the OS's python3."""
    usr_local = device.root / "usr" / "local"
    shutil.copy2(PYTHON37_HOME / "bin" / "python3.7", usr_local / "bin" / "python3.7")
    for library in ("libpython3.7m.so.1.0", "libpython3.so"):
        shutil.copy2(PYTHON37_HOME / "lib" / library, usr_local / "lib" / library)
    skip = shutil.ignore_patterns("test", "site-packages", "config-3.7m-*", "__pycache__", "idlelib", "tkinter")
    shutil.copytree(PYTHON37_HOME / "lib" / "python3.7", usr_local / "lib" / "python3.7", ignore=skip)
    (usr_local / "lib" / "python3.7" / "site-packages").mkdir()
    done = device.run_as_root("ldconfig")
    assert done.returncode == 0, done.stderr


def python37_imports(device: LabDevice) -> str:
    """What the component's Python needs of the standard library, loaded in the device (ldd's question, asked
    the way that matters: does each extension module find its shared libraries here)."""
    probe = "import ssl, ctypes, sqlite3, zlib, bz2, lzma, venv, ensurepip, hashlib, uuid; print(ssl.OPENSSL_VERSION)"
    done = device.run_as_root("python3.7", "-c", probe)
    return (done.stdout + done.stderr).strip()


def make_it_a_deeplens(device: LabDevice) -> None:
    install_python37(device)
    shutil.copyfile(AWSCAM_STAND_IN, device.root / SITE_PACKAGES.lstrip("/") / "awscam.py")
    model = device.root / MODEL.lstrip("/")
    model.parent.mkdir(parents=True)
    model.write_text("<!-- placeholder: the awscam stand-in runs CenterFace instead of this SSD -->\n")
    stream = device.root / STREAM.lstrip("/")
    stream.parent.mkdir(parents=True)
    os.mkfifo(stream)
    for command in (("groupadd", "--system", STREAM_GROUP), ("chgrp", STREAM_GROUP, STREAM), ("chmod", "640", STREAM)):
        done = device.run_as_root(*command)
        assert done.returncode == 0, done.stderr
    gpu = device.root / GPU_NODE.lstrip("/")
    gpu.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mknod", str(gpu), "c", "226", "128"], check=True)
    gpu.chmod(0o660)
    done = device.run_as_root("chgrp", "video", GPU_NODE)
    assert done.returncode == 0, done.stderr
    for path in ("usr/local/bin/systemctl", "opt/awscam/greengrass/ggc/core/greengrassd"):
        recorder = device.root / path
        recorder.parent.mkdir(parents=True, exist_ok=True)
        recorder.write_text(_RECORDER)
        recorder.chmod(0o755)


def recorded_calls(device: LabDevice) -> list[str]:
    calls = device.root / CALLS.lstrip("/")
    return calls.read_text().splitlines() if calls.exists() else []
