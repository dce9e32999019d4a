"""Real file systems in trouble: `tmpfs(size_kb, read_only=False)` mounts a fresh tmpfs (unmounted afterwards), and
`fill_up(folder)` writes into it until the disk is full (ENOSPC), leaving `free_up(folder)` to undo that.

A full disk or a read-only folder is produced for real, not by patching `open`: `chmod` does not stop root, and the
tests run as root in CI, so a read-only mount is the only honest read-only folder. Mounting needs root: elsewhere the
test is skipped, never under CI=true (CI runs as root and must not skip them).
"""

import errno
import os
import subprocess

import pytest

FILLER = "filler.bin"


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size_kb=1024, read_only=False)``: the path of a fresh tmpfs mount of that size."""
    mounted = []

    def mount(size_kb=1024, read_only=False):
        if os.geteuid() != 0:
            if os.environ.get("CI") == "true":
                pytest.fail("CI runs as root: tmpfs mounts are required")
            pytest.skip("needs root to mount a tmpfs")
        path = tmp_path / ("mnt%d" % len(mounted))
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % size_kb, "tmpfs", str(path)], check=True)
        mounted.append(path)
        if read_only:
            remount(path, "ro")
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path, mode):
    """Make a mount made by `tmpfs` read-only ("ro") or writable again ("rw")."""
    subprocess.run(["mount", "-o", "remount,%s" % mode, str(path)], check=True)


def fill_up(folder, leave_bytes=0):
    """Write a filler file into `folder` until its disk is full (less `leave_bytes`, rounded down to pages)."""
    path = os.path.join(str(folder), FILLER)
    with open(path, "wb", buffering=0) as handle:  # unbuffered: nothing left to flush (and fail) on close
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    if leave_bytes:
        size = os.path.getsize(path)
        os.truncate(path, max(0, size - leave_bytes))


def free_up(folder):
    """Undo `fill_up`."""
    os.unlink(os.path.join(str(folder), FILLER))
