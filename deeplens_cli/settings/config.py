"""Settings: YAML file < environment (DEEPLENS_*) < command-line flags, validated with one-line errors.

One table, `SCHEMA` (settings_schema.py), is the single source of truth for every key: its type, default, the
environment variable that overrides it and the sentence that documents it. Validation, the environment mapping and
the check that `config.example.yaml` documents every key all read that table, so they cannot drift apart.

Errors name the key, the bad value and what is expected, and raise `ConfigError` (exit code 2).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from deeplens_cli.errors import ConfigError
from deeplens_cli.settings.settings_schema import KEYS, SCHEMA, Key

DEFAULT_CONFIG_FILE = "deeplens.yaml"
CONFIG_PATH_ENV = "DEEPLENS_CONFIG"



# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """Validated settings. `values` maps every dotted key to its value: `settings["function.name"]`."""

    values: Mapping[str, Any]
    origins: Mapping[str, str] = field(default_factory=dict)  # key -> "default" | file path | env var | "flag"
    config_path: Path | None = None
    devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # `devices:` name -> dotted overrides

    def __getitem__(self, path: str) -> Any:
        return self.values[path]

    def require(self, path: str) -> Any:
        """The value of a key a command cannot do without; a clear exit-2 error when it is unset."""
        value = self.values.get(path)
        if value is None:
            key = KEYS[path]
            flag = flag_name(path)
            raise ConfigError(
                f"missing required setting '{path}'",
                f"set {path} in {self.config_path or DEFAULT_CONFIG_FILE}, or {key.env_var}, "
                f"or {flag} where the command has it",
            )
        return value

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some dotted keys overridden (as flags would); validated like any other layer."""
        flat = {k.replace("__", "."): v for k, v in overrides.items()}
        return _validated({**self.values, **flat}, {**self.origins, **{k: "flag" for k in flat}}, self.config_path,
                          self.devices)

    def for_device(self, name: str) -> Settings:
        """The settings one device runs with: these, with its `devices: {NAME: {...}}` section on top (validated
        like any other layer). A device without a section gets these settings unchanged."""
        overrides = self.devices.get(name)
        if not overrides:
            return self
        where = f"{self.config_path or DEFAULT_CONFIG_FILE} devices.{name}"
        return _validated({**self.values, **overrides}, {**self.origins, **{k: where for k in overrides}},
                          self.config_path, self.devices)


# Command-line flags whose names are not simply "--" + the key.
_FLAG_NAMES = {"deploy.timeout_s": "--timeout", "s3_access": "--s3-full-access"}


def flag_name(path: str) -> str:
    """The flag that sets a key, for messages ("--bucket", "--timeout")."""
    return _FLAG_NAMES.get(path, "--" + path.split(".")[-1].replace("_", "-"))


def defaults() -> dict[str, Any]:
    return {key.path: (list(key.default) if isinstance(key.default, list) else key.default) for key in SCHEMA}


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults < YAML file < DEEPLENS_* environment < flags, then validate.

    `config_path=None` means `$DEEPLENS_CONFIG` or `./deeplens.yaml`; the default file may be absent, a file named
    explicitly must exist. Flags with value None are "not given" and do not override anything.
    """
    environ = os.environ if environ is None else environ
    explicit = config_path is not None or CONFIG_PATH_ENV in environ
    path = Path(config_path if config_path is not None else environ.get(CONFIG_PATH_ENV, DEFAULT_CONFIG_FILE))

    values = defaults()
    origins = {k: "default" for k in values}
    used_path: Path | None = None
    devices: dict[str, dict[str, Any]] = {}
    if path.exists() or explicit:
        file_values = read_config_file(path)
        devices = file_values.pop(DEVICES_SECTION, {})
        values.update(file_values)
        origins.update({k: str(path) for k in file_values})
        used_path = path

    for key in SCHEMA:
        if key.env_var in environ:
            values[key.path] = _parse_env_value(key, environ[key.env_var])
            origins[key.path] = key.env_var

    for path_key, value in (flags or {}).items():
        if value is None:
            continue
        if path_key not in KEYS:
            raise ValueError(f"flag mapped to unknown key {path_key}")  # a programming error, not user input
        values[path_key] = value
        origins[path_key] = "flag"

    settings = _validated(values, origins, used_path, devices)
    for name in devices:
        settings.for_device(name)  # a bad per-device value is a config error now, not at that device's deploy
    return settings


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into dotted keys; unreadable files, bad YAML and unknown keys are exit-2 errors."""
    import yaml  # lazy: keeps `deeplens-cli --help` fast

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found",
                          "create it from config.example.yaml or pass --config PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.__class__.__name__}: {exc}",
                          "check the path and its permissions") from None
    try:
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), path)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path}: invalid YAML{where}: {problem}",
                          "fix the YAML syntax (indentation, quotes, colons)") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys at the top level, "
                          f"got {type(document).__name__}",
                          "see config.example.yaml for the layout")
    devices = document.pop(DEVICES_SECTION, None)
    flat = _flatten(document, path)
    if devices is not None:
        flat[DEVICES_SECTION] = _device_sections(devices, path)
    return flat


DEVICES_SECTION = "devices"
DEVICE_SECTIONS = ("detection",)  # what a device may set for itself: it reaches that device only


def _device_sections(devices: Any, path: Path) -> dict[str, dict[str, Any]]:
    """`devices: {Cam7: {detection: {threshold: 0.7}}}` -> {"Cam7": {"detection.threshold": 0.7}}.

    Only what reaches the device's own configuration may differ per device (`detection.*`); the bucket, the
    roles or the component are the fleet's.
    """
    if not isinstance(devices, dict):
        raise ConfigError(f"config file {path}: 'devices' must map device names to settings, got {devices!r}",
                          "e.g. devices: {Cam7: {detection: {threshold: 0.7}}}")
    sections: dict[str, dict[str, Any]] = {}
    for name, document in devices.items():
        if not isinstance(document, dict):
            raise ConfigError(f"config file {path}: 'devices.{name}' must be a mapping of settings, got {document!r}",
                              "e.g. devices: {Cam7: {detection: {threshold: 0.7}}}")
        flat = _flatten(document, path)
        foreign = sorted(key for key in flat if key.split(".")[0] not in DEVICE_SECTIONS)
        if foreign:
            raise ConfigError(f"config file {path}: 'devices.{name}' sets {', '.join(foreign)}, which is the same "
                              f"for every device", "per-device settings may set detection.* only")
        sections[str(name)] = flat
    return sections


# A config file has ~50 keys; a list of vendored requirements may have dozens. Far beyond any real file, and far
# below what hurts: a 437-byte "billion laughs" file (nested &anchors and *aliases) expands to 10^9 values.
MAX_CONFIG_VALUES = 10_000


def _check_expansion(root: Any, path: Path) -> None:
    """Refuse a YAML document whose aliases expand to more than MAX_CONFIG_VALUES values, before building it.

    PyYAML builds an alias as a shared reference (cheap), but everything after it - validation, messages that
    quote a value, the pip requirements written from `function.vendor` - walks the expanded tree. The size of
    that tree is counted on the composed node graph, each distinct node once (memoised), so the count itself
    stays linear in the file.
    """
    import yaml

    if root is None:
        return
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise ConfigError(f"{_described(path)}: a YAML alias refers to itself",
                              "remove the recursive &anchor/*alias", code="config_aliases")
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        in_progress.discard(key)
        if total > MAX_CONFIG_VALUES:
            raise ConfigError(f"{_described(path)}: YAML aliases expand to more than {MAX_CONFIG_VALUES} values",
                              "write the values out, or use fewer &anchors/*aliases", code="config_aliases")
        sizes[key] = total
        return total

    size(root)


def _described(path: Path) -> str:
    name = str(path)
    return name if name.startswith("DEEPLENS_") else f"config file {name}"


def _flatten(document: Mapping[str, Any], path: Path, parent: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    sections = {k.split(".")[0] for k in KEYS if "." in k}
    for name, value in document.items():
        dotted = f"{parent}{name}"
        if dotted in KEYS:
            flat[dotted] = value
        elif not parent and name in sections and isinstance(value, dict):
            flat.update(_flatten(value, path, parent=f"{name}."))
        elif not parent and name in sections:
            raise ConfigError(f"config file {path}: '{dotted}' must be a mapping of keys, got {value!r}",
                              "see config.example.yaml for the layout")
        else:
            close = difflib.get_close_matches(dotted, list(KEYS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see config.example.yaml for the known keys"
            raise ConfigError(f"config file {path}: unknown key '{dotted}'", hint)
    return flat


def _parse_env_value(key: Key, raw: str) -> Any:
    """Environment values are text; numbers, booleans, null and lists are read the way YAML reads scalars."""
    if key.type is str:
        return raw if raw != "" else None
    import yaml

    try:
        if raw == "":
            return None
        _check_expansion(yaml.compose(raw, Loader=yaml.SafeLoader), Path(key.env_var))
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw  # validation reports the type mismatch with the variable's name


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", bool: "true or false"}
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, t.__name__) for t in expected)
    return names.get(expected, expected.__name__)


def _validated(values: dict[str, Any], origins: Mapping[str, str], config_path: Path | None,
               devices: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    clean: dict[str, Any] = {}
    for key in SCHEMA:
        value = values.get(key.path)
        where = origins.get(key.path, "default")
        source = {"default": "", "flag": f" ({flag_name(key.path)})"}.get(where, f" (from {where})")
        if value is None:
            clean[key.path] = None
            continue
        if key.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if key.type is list and isinstance(value, list):
            wrong = next((item for item in value
                          if not isinstance(item, str) or "\n" in item or not item.strip()), None)
            if wrong is not None:
                raise ConfigError(f"setting '{key.path}'{source} has {wrong!r} in its list, expected one-line strings "
                                  f"(pip requirements such as 'boto3==1.33.13')", f"fix {key.path}")
        valid_type = isinstance(value, key.type) and not (isinstance(value, bool) and key.type is not bool)
        hint = f"fix {key.path}" + ("" if key.default is None else f"; default is {key.default!r}")
        if not valid_type:
            raise ConfigError(f"setting '{key.path}'{source} is {value!r}, expected {_type_name(key.type)}", hint)
        if key.check is not None:
            problem = key.check(value)
            if problem:
                raise ConfigError(f"setting '{key.path}'{source} is {value!r}, expected {problem}", hint)
        clean[key.path] = value
    return Settings(values=clean, origins=dict(origins), config_path=config_path, devices=dict(devices or {}))

