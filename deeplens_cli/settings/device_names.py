"""Device names: the one rule a name must follow, and the names of one `register-device` run.

The rule is the DeepLens console's (letters, digits and hyphens, at most 100), kept for both targets because a
device name becomes part of IoT thing names, bundle folders and S3 keys. `register-device` and `demo --device`
check names with it before any AWS call.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from deeplens_cli.errors import ConfigError

DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}\Z")  # the DeepLens console's rule: a-zA-Z0-9-, <= 100;
# \Z, not $: "$" also matches before a trailing newline, and "Cam1\n" must be refused however it is matched


def read_allowed_names(names: tuple[str, ...] | list[str], allow_file: str | None) -> list[str]:
    """The names a fleet's claim may register (`register-device --claim --allow`): each --allow a name or a comma
    list, then one name a line of --allow-file (blank lines and `#` comments skipped); each checked, duplicates
    dropped (adding a name twice changes nothing)."""
    collected = [part.strip() for value in names for part in value.split(",") if part.strip()]
    if allow_file:
        collected += _read_lines(allow_file, "--allow-file")
    for name in collected:
        if not DEVICE_NAME.fullmatch(name):
            raise ConfigError(f"--allow {name!r} is not a valid device name",
                              "use 1-100 letters, digits and hyphens, starting with a letter or digit")
    return list(dict.fromkeys(collected))


def _read_lines(path: str, option: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option} {path} cannot be read ({exc.__class__.__name__})",
                          "pass a text file with one device name a line") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_names(names: tuple[str, ...] | list[str], names_file: str | None) -> list[str]:
    """The device names of one register-device run: repeated --name, then one name a line of --names-file
    (blank lines and `#` comments skipped); each checked, duplicates refused."""
    collected = list(names)
    if names_file:
        collected += _read_lines(names_file, "--names-file")
    if not collected:
        raise ConfigError("no device name given", "pass --name NAME (repeatable) or --names-file FILE")
    for name in collected:
        if not DEVICE_NAME.fullmatch(name):
            raise ConfigError(f"--name {name!r} is not a valid device name",
                              "use 1-100 letters, digits and hyphens, starting with a letter or digit")
    duplicates = sorted(name for name, times in Counter(collected).items() if times > 1)  # list.count: O(n²)
    if duplicates:
        raise ConfigError(f"device name(s) given twice: {', '.join(duplicates)}", "give each device name once")
    return collected
