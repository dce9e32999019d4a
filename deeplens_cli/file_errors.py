"""An OSError from the user's file system, told as one line naming the path and the cause.

A full disk, a read-only folder, a folder the user may not write to, a name longer than the file system allows or a
path through a file are
the user's environment, not a bug in deeplens-cli: they deserve the same one line + hint as a bad flag, never
"unexpected error ... report it". `cli.main` (through `aws.translate_error`, which the executor also uses, so a
bundle write that fails midway still says "re-running converges") maps any such OSError; the writers that know
better (`faces --download`, `init`, `demo --out`, the device bundle) pass the path the user recognises (not a
temporary file's) and the flag it came from. When the path came from a flag, a cause the user fixes by choosing
another path (read-only, permission, name too long) is a usage error (exit 2); a full disk is exit 1 either way.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from deeplens_cli.errors import ConfigError, DeeplensError

NAME_MAX = 255  # bytes in one file name on Linux (ext4, xfs, btrfs, tmpfs) and macOS (APFS)


@dataclass(frozen=True)
class _Cause:
    """What an errno means to the user, and what they can do about it."""

    code: str  # the JSON error code
    text: str
    hint: str  # {where} is "that folder" or "another <flag>"
    flag_is_wrong: bool  # when the path came from a flag, choosing another path fixes it: exit 2


_FREE_SPACE = "free some space on that disk (or choose another folder), then run the same command again"
_CAUSES = {
    errno.ENOSPC: _Cause("no_space", "no space left on the device", _FREE_SPACE, False),
    errno.EDQUOT: _Cause("no_space", "disk quota exceeded", _FREE_SPACE, False),
    errno.EROFS: _Cause("read_only", "read-only file system", "choose {where} on a writable file system", True),
    errno.EACCES: _Cause("permission_denied", "permission denied",
                         "choose {where} you can write to, or fix its permissions", True),
    errno.EPERM: _Cause("permission_denied", "operation not permitted",
                        "choose {where} you can write to, or fix its permissions", True),
    errno.ENAMETOOLONG: _Cause("name_too_long", "file name too long",
                               f"choose {{where}} with a shorter path (at most {NAME_MAX} bytes a name)", True),
    errno.ENOTDIR: _Cause("not_a_folder", "a part of the path is a file, not a folder",
                          "choose {where} whose parents are folders", True),
}


def file_system_error(error: OSError, path: str | Path | None = None, flag: str | None = None,
                      hint: str | None = None) -> DeeplensError | None:
    """The one-line error for `error`, or None when its errno is not one of the user's environment (a bug then).

    `path` (when given) is named instead of the error's own file name (say, the config file rather than its
    temporary sibling); `flag` is the option the path came from; `hint` says how to choose another path, for the
    causes another path fixes (a full disk keeps its own hint).
    """
    cause = _CAUSES.get(error.errno) if error.errno is not None else None
    if cause is None:
        return None
    where = path if path is not None else error.filename
    message = f"{_text(where)}: {cause.text}" if where is not None else cause.text
    bad_flag = flag is not None and cause.flag_is_wrong
    if hint is None or not cause.flag_is_wrong:
        hint = cause.hint.format(where=f"another {flag}" if flag else "a folder")
    if bad_flag:
        return ConfigError(f"{flag} {message}", hint, code=cause.code)
    return DeeplensError(message, hint, code=cause.code)


def _text(where: str | bytes | Path) -> str:
    return where.decode(errors="replace") if isinstance(where, bytes) else str(where)
