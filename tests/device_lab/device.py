"""One lab device: a fresh Debian root file system prepared to behave like a freshly imaged board.

What a real device has that a bare debootstrap tree lacks is added here and nothing more: `/proc` and a
`/dev/shm` (the kernel gives every device those), `/etc/hosts` naming localhost and `/etc/resolv.conf` (the
image's network set-up), the host's CA bundle (so pip and apt inside reach the package index through this
machine's network). Python, pip, venv, Java and the camera driver are NOT added: install.sh and the component
must bring what they need.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from deeplens_cli.simulator.nucleus import ComponentUser, Deployed, Nucleus, NucleusError

JAVA_STAND_IN = Path(__file__).with_name("java_stand_in.sh")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass
class LabDevice:
    root: Path
    log: Path
    mounts: list[Path] = field(default_factory=list)

    def boot(self) -> None:
        """Mounts and network files of a running system, and the Java stand-in on PATH."""
        for target, command in ((self.root / "proc", ["mount", "-t", "proc", "proc"]),
                                (self.root / "dev" / "shm", ["mount", "-t", "tmpfs", "-o", "mode=1777", "shm"])):
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run([*command, str(target)], check=True)
            self.mounts.append(target)
        (self.root / "etc" / "hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
        resolv = self.root / "etc" / "resolv.conf"
        resolv.unlink(missing_ok=True)
        shutil.copyfile("/etc/resolv.conf", resolv)
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, self.root / "etc" / "ssl" / "certs" / "ca-certificates.crt")
        java = self.root / "usr" / "local" / "bin" / "java"
        shutil.copyfile(JAVA_STAND_IN, java)
        java.chmod(0o755)

    def shut_down(self) -> None:
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)
        self.mounts.clear()

    def run_as_root(self, *command: str, timeout: float = 900, cwd: str = "/") -> subprocess.CompletedProcess[str]:
        """A command inside the device as root (like `sudo sh ./install.sh` on the board)."""
        script = 'cd "$1" && shift && exec "$@"'
        env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"]
        done = subprocess.run(["chroot", str(self.root), "/usr/bin/env", "-i", *env, "/bin/sh", "-c", script, "sh",
                               cwd, *command], capture_output=True, text=True, timeout=timeout, check=False)
        with self.log.open("a") as out:
            out.write(f"$ {' '.join(command)}  (exit {done.returncode})\n{done.stdout}{done.stderr}\n")
        return done

    def user(self, name: str) -> ComponentUser:
        """uid, gid and supplementary groups from the device's own passwd and group files."""
        passwd = {line.split(":")[0]: line.split(":") for line in (self.root / "etc/passwd").read_text().splitlines()}
        if name not in passwd:
            raise LookupError(f"no user {name} on the device")
        uid, gid = int(passwd[name][2]), int(passwd[name][3])
        groups = []
        for line in (self.root / "etc/group").read_text().splitlines():
            fields = line.split(":")
            if name in fields[3].split(",") and int(fields[2]) != gid:
                groups.append(int(fields[2]))
        return ComponentUser(name=name, uid=uid, gid=gid, groups=tuple(sorted(groups)))

    def group_id(self, name: str) -> int:
        for line in (self.root / "etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
        raise LookupError(f"no group {name} on the device")

    def install_bundle_twice(self, bundle_source: Path,
                             timings: dict[str, float]) -> list[subprocess.CompletedProcess[str]]:
        """The device bundle copied to /root/bundle (the nucleus zip as already unpacked beside it) and its install.sh
        run as root, twice, as a user re-running it would: the runs, stopping after the first that fails."""
        bundle = self.root / "root" / "bundle"
        shutil.copytree(bundle_source, bundle)
        (bundle / "GreengrassInstaller" / "lib").mkdir(parents=True)
        (bundle / "GreengrassInstaller" / "lib" / "Greengrass.jar").write_bytes(b"stand-in nucleus jar\n")
        runs = []
        for attempt in (1, 2):
            begun = time.monotonic()
            runs.append(self.run_as_root("sh", "./install.sh", cwd="/root/bundle"))
            timings[f"install_sh_{attempt}_s"] = round(time.monotonic() - begun, 1)
            if runs[-1].returncode != 0:
                break
        return runs

    def add_camera_node(self, path: str = "/dev/video0") -> None:
        """A V4L2 character device (81, 0) as udev leaves it: root:video 0660. No driver behind it."""
        node = self.root / path.lstrip("/")
        node.unlink(missing_ok=True)
        subprocess.run(["mknod", str(node), "c", "81", "0"], check=True)
        node.chmod(0o660)  # separately: mknod -m does not set the mode on every file system
        done = self.run_as_root("chgrp", "video", path)
        assert done.returncode == 0, done.stderr


@dataclass
class ComponentInstalls:
    """The published component's Install run twice by the nucleus (None: that run did not happen)."""

    install_s: float | None = None
    install_log: str = ""
    reinstall_s: float | None = None
    reinstall_log: str = ""
    install_error: str | None = None  # the first Install that failed, as the nucleus reported it


def install_component_twice(nucleus: Nucleus, component: Deployed, first_log: Path) -> ComponentInstalls:
    """Install, then Install again as the nucleus does after a restart (the second must find the venv up to date);
    the first run's log is kept at `first_log`."""
    installs = ComponentInstalls()
    try:
        installs.install_s = round(nucleus.install(component), 1)
        installs.install_log = nucleus.install_log(component).read_text()
        nucleus.install_log(component).rename(first_log)
        installs.reinstall_s = round(nucleus.install(component), 1)
        installs.reinstall_log = nucleus.install_log(component).read_text()
    except NucleusError as error:
        installs.install_error = str(error)
        log = nucleus.install_log(component)
        installs.install_log = log.read_text() if log.exists() else ""
    return installs


def unmount_leftovers(folder: Path) -> None:
    """A run that was killed mid-way (Ctrl-C, a CI time-out) leaves /proc and /dev/shm mounted inside its root
    file system, and the folder then cannot be removed: unmount whatever is mounted below it, deepest first."""
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((p for p in points if p.startswith(f"{folder}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=True)
