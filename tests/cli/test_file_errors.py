"""file_errors.py: an OSError of the user's file system is one line naming the path and the cause, never a bug."""

from __future__ import annotations

import errno
import os

import pytest

from deeplens_cli.aws import translate_error
from deeplens_cli.errors import EXIT_ERROR, EXIT_USAGE
from deeplens_cli.file_errors import file_system_error
from tests.support.filesystems import fill_up


def os_error(number: int, filename: str | None = "/data/crops/a.jpg") -> OSError:
    return OSError(number, os.strerror(number), filename)


@pytest.mark.parametrize("number, cause, code", [
    (errno.ENOSPC, "no space left on the device", "no_space"),
    (errno.EDQUOT, "disk quota exceeded", "no_space"),
    (errno.EROFS, "read-only file system", "read_only"),
    (errno.EACCES, "permission denied", "permission_denied"),
    (errno.EPERM, "operation not permitted", "permission_denied"),
    (errno.ENAMETOOLONG, "file name too long", "name_too_long"),
    (errno.ENOTDIR, "a part of the path is a file, not a folder", "not_a_folder"),
])
def test_each_cause_of_the_environment_names_the_path_and_exits_1(number, cause, code):
    error = file_system_error(os_error(number))
    assert error is not None
    assert error.message == f"/data/crops/a.jpg: {cause}" and error.code == code
    assert error.exit_code == EXIT_ERROR and error.hint


def test_from_a_flag_a_path_another_one_fixes_is_a_usage_error_and_a_full_disk_is_not():
    read_only = file_system_error(os_error(errno.EROFS, "/mnt/ro"), flag="--download")
    full = file_system_error(os_error(errno.ENOSPC), flag="--download")
    assert read_only.exit_code == EXIT_USAGE and read_only.message == "--download /mnt/ro: read-only file system"
    assert read_only.hint == "choose another --download on a writable file system"
    assert full.exit_code == EXIT_ERROR and "free some space" in full.hint


def test_the_path_the_user_knows_is_named_instead_of_a_temporary_one_and_a_hint_can_say_how():
    error = file_system_error(os_error(errno.EROFS, ".deeplens.yaml.x1.tmp"), "deeplens.yaml", hint="pass --config")
    assert error.message == "deeplens.yaml: read-only file system" and error.hint == "pass --config"
    full = file_system_error(os_error(errno.ENOSPC), "deeplens.yaml", hint="pass --config")
    assert "free some space" in full.hint  # another path does not fix a full disk


def test_an_errno_that_is_not_the_environment_is_left_to_the_caller():
    assert file_system_error(os_error(errno.EBADF)) is None
    assert file_system_error(OSError("could not write sheet.png")) is None  # no errno at all (OpenCV)
    assert translate_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None


def test_the_last_line_of_defence_translates_a_real_full_disk(tmpfs):
    folder = tmpfs(16)
    fill_up(folder)
    with pytest.raises(OSError) as caught:
        with open(folder / "more.bin", "wb", buffering=0) as handle:
            handle.write(b"x" * 8192)
    error = translate_error(caught.value)
    assert error is not None and error.message == "no space left on the device"  # the write named no file
