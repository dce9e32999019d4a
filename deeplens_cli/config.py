"""Settings: YAML file < environment (DEEPLENS_*) < command-line flags, validated with one-line errors.

One table, `SCHEMA`, is the single source of truth for every key: its type, default, the environment
variable that overrides it and the sentence that documents it. Validation, the environment mapping and the
check that `config.example.yaml` documents every key all read that table, so they cannot drift apart.

Errors name the key, the bad value and what is expected, and raise `ConfigError` (exit code 2).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from deeplens_cli.errors import ConfigError
from deeplens_cli.targets.registry import DEFAULT_TARGET, TARGET_NAMES

DEFAULT_CONFIG_FILE = "deeplens.yaml"
ENV_PREFIX = "DEEPLENS_"
CONFIG_PATH_ENV = "DEEPLENS_CONFIG"

REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
DEFAULT_KEY_TEMPLATE = "{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"


# ---------------------------------------------------------------------------------------------- checks


def check_bucket_name(name: str) -> str | None:
    """S3 bucket naming rules; the device's own check (edge_function.settings) is the one copy of them."""
    from edge_function.settings import bucket_name_problem

    if any(character.isspace() for character in name):  # the device's check anchors with "$", which passes "b\n"
        return "lowercase letters, digits, dots and hyphens, with no spaces or line breaks"
    return bucket_name_problem(name)


def check_region(value: str) -> str | None:
    """An AWS region name; fullmatch, so a trailing newline or space is refused (re.match accepts "us-east-1\\n")."""
    return None if REGION_PATTERN.fullmatch(value) else "an AWS region such as us-east-1 or eu-west-2"


def check_endpoint_url(value: str) -> str | None:
    """An http(s) URL with a host and, if given, a port from 1 to 65535 (the rules for every endpoint source)."""
    from urllib.parse import urlsplit

    expected = "an http:// or https:// URL such as http://127.0.0.1:5000"
    if not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", value):
        return expected
    try:
        port = urlsplit(value).port
    except ValueError:
        return expected + " (port 1-65535)"
    if port == 0 or not urlsplit(value).hostname:
        return expected + " (port 1-65535)" if port == 0 else expected
    return None


def _check_prefix(value: str) -> str | None:
    if value.startswith("/"):
        return "a key prefix without a leading '/', such as faces/"
    if value and not value.endswith("/"):
        return "a key prefix ending in '/', such as faces/"
    return None


def _check_key_template(value: str) -> str | None:
    """The device's own template check (edge_function.keys), on the template as the device receives it."""
    from edge_function.keys import template_problem

    if value.startswith("/"):
        return "a relative key template (no leading '/')"
    problem = template_problem("{prefix}/" + value)
    if problem and "{n}" in problem:
        return problem + " (without it two crops in one second would share a key)"
    return problem


def _check_function_name(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        return "1-64 letters, digits, hyphens or underscores"
    return None


def _check_s3_uri(value: str) -> str | None:
    return None if re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]+/\S+\.(tar\.gz|zip)", value) else \
        "an s3://bucket/key URI of a .tar.gz or .zip model archive"


def _check_component_name(value: str) -> str | None:
    if value.startswith("aws.greengrass"):
        return "a name outside the aws.greengrass namespace (that would override a public component)"
    return None if re.fullmatch(r"[A-Za-z0-9._-]{1,128}", value) else "letters, digits, dots, hyphens, underscores"


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"a number from {low:g} to {high:g}"

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(choices)

    return check


# ---------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Key:
    """One configuration key: dotted path, type, default, documentation and an optional value check."""

    path: str
    type: type | tuple[type, ...]
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    required: bool = False

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.path.replace(".", "_").upper()


SCHEMA: tuple[Key, ...] = (
    Key("region", str, None, "AWS region; default: the profile's or AWS_REGION", check_region),
    Key("profile", str, None, "AWS named profile; default: the standard AWS credential chain"),
    Key("endpoint_url", str, None, "send every AWS call to this endpoint (an emulator); AWS_ENDPOINT_URL[_<SERVICE>] also work", check_endpoint_url),
    Key("aws.retry_mode", str, "standard", "botocore retry mode for every client", _one_of("standard", "adaptive")),
    Key("aws.max_attempts", int, 5, "botocore max attempts per call, including the first", _between(1, 20)),
    Key("bucket", str, None, "S3 bucket for face crops (created by register-roles when missing)", check_bucket_name, required=True),
    Key("prefix", str, "faces/", "key prefix of face crops; the downstream pipeline triggers on it", _check_prefix),
    Key("key_template", str, DEFAULT_KEY_TEMPLATE, "crop key below the prefix; must contain {n}", _check_key_template),
    Key("retention_days", int, None, "expire face crops after this many days (S3 lifecycle rule); null keeps them", _between(1, 36500)),
    Key("s3_access", str, "least-privilege", "device S3 grant: least-privilege (PutObject on bucket/prefix*) or full (AmazonS3FullAccess, as the workshop did)", _one_of("least-privilege", "full")),
    Key("device", str, None, "default device name for deploy/status/destroy"),
    Key("project.name", str, "deeplens-face-detection", "project name (Greengrass V1 function tag / V2 deployment name)", _check_function_name),
    Key("function.name", str, "deeplens-face-crops", "Lambda function name (Greengrass V1); DeepLens requires the deeplens prefix", _check_function_name),
    Key("function.runtime", str, "python3.7", "Python the device runs the function with (DeepLens: python3.7)", _one_of("python3.7", "python3.8", "python3.9", "python3.10", "python3.11", "python3.12")),
    Key("function.lambda_runtime", str, None, "runtime declared to AWS Lambda when it differs from the device's; Greengrass V1 then uses FunctionRuntimeOverride", _one_of("python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13")),
    Key("function.memory_mb", int, 1024, "memory limit of the function on the device (MB)", _between(128, 10240)),
    Key("function.timeout_s", int, 600, "function timeout (s); the loop is pinned (long-lived)", _between(1, 900)),
    Key("function.vendor", list, [], "pip requirements bundled into the function zip for the device's Python (e.g. boto3==1.33.13); built once and cached"),
    Key("model.name", str, "deeplens-face-detection", "model name (the DeepLens face-detection template model)"),
    Key("model.artifact_path", str, "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml", "model file on the device (awscam.Model path)"),
    Key("model.input_width", int, 300, "model input width in pixels (boxes come back in this space)", _between(16, 4096)),
    Key("model.input_height", int, 300, "model input height in pixels", _between(16, 4096)),
    Key("model.s3_uri", str, None, "deliver the model as a Greengrass ML resource from this s3:// archive; null uses the artifact already on the device", _check_s3_uri),
    Key("detection.detector", str, "auto", "auto (awscam on a DeepLens, opencv elsewhere), awscam (device SSD), opencv (the best offline CPU detector: YuNet where the CPU allows, else CenterFace), yunet or centerface", _one_of("auto", "awscam", "opencv", "yunet", "centerface")),
    Key("detection.source", str, "auto", "frame source: auto (awscam on a DeepLens, webcam:0 elsewhere), awscam, webcam:N, a video file or an image folder"),
    Key("detection.threshold", float, None, "minimum detector confidence for a face to be considered; null = the detector's own (0.6 awscam, 0.5 CenterFace, 0.7 YuNet)", _between(0.01, 0.99)),
    Key("detection.min_face_px", int, None, "minimum face side in frame pixels; null = 40 px scaled to the frame height (Rekognition's floor at 1080p)", _between(8, 4096)),
    Key("detection.margin", float, 0.2, "margin added around each face crop, as a fraction of the face size", _between(0.0, 1.0)),
    Key("detection.motion_gate", bool, True, "run the detector only on frames where something moved; false runs it on every frame"),
    Key("detection.motion_regions", bool, False, "with the motion gate on, run the detector only on the regions that moved"),
    Key("detection.motion_threshold", float, 25.0, "grey-level change (1-255) that counts as motion", _between(1.0, 255.0)),
    Key("detection.motion_min_area", float, 0.001, "smallest moving region, as a fraction of the frame area", _between(0.0, 0.5)),
    Key("detection.motion_full_detection_s", float, 5.0, "a full-frame detection runs at least this often, so a person standing still is still seen", _between(0.1, 3600.0)),
    Key("detection.cooldown_s", float, 10.0, "seconds before the same tracked face may be sent again", _between(0.0, 86400.0)),
    Key("detection.max_uploads_per_minute", int, 30, "global cap on crops uploaded per minute (cost control)", _between(1, 6000)),
    Key("upload.queue_size", int, 32, "crops held in memory waiting for the uploader; beyond it they go to the spool", _between(1, 10000)),
    Key("upload.spool_dir", str, None, "on-device spool for crops while S3 is unreachable; null = /tmp/deeplens-spool (V1) or the component work dir (V2)"),
    Key("upload.spool_max_mb", int, 200, "spool size cap; the oldest crops are dropped (and counted) beyond it", _between(1, 100000)),
    Key("upload.jpeg_quality", int, 90, "JPEG quality of face crops", _between(50, 100)),
    Key("greengrass.default_target", str, DEFAULT_TARGET, "target of register-device when --greengrass is not given", _one_of(*TARGET_NAMES)),
    Key("greengrass.component_name", str, "com.deeplens.FaceCrops", "Greengrass V2 component name", _check_component_name),
    Key("greengrass.artifact_bucket", str, None, "bucket for Greengrass V2 component artifacts; null = the crops bucket", check_bucket_name),
    Key("greengrass.artifact_prefix", str, "greengrass-artifacts/", "key prefix for component artifacts (keys are immutable: <component>/<version>/<file>)", _check_prefix),
    Key("greengrass.token_exchange_role", str, "DeepLensGreengrassV2TokenExchangeRole", "IAM role Greengrass V2 devices assume through the role alias"),
    Key("greengrass.role_alias", str, "DeepLensGreengrassV2TokenExchangeRoleAlias", "IoT role alias pointing at the token exchange role"),
    Key("greengrass.python", str, "python3", "Python command the V2 component runs the edge function with"),
    Key("greengrass.pin_nucleus", bool, False, "V2 thing deployments pin the nucleus version the device runs; false lets a thing-group nucleus upgrade through"),
    Key("deploy.timeout_s", int, 600, "how long deploy waits for the device before exit code 4", _between(1, 86400)),
    Key("deploy.poll_s", float, 5.0, "seconds between deployment status polls", _between(0.01, 600.0)),
    Key("logs.cloudwatch", bool, True, "deploy ships device logs to CloudWatch Logs (V2 LogManager, V1 logger); false opts out"),
)

KEYS: dict[str, Key] = {key.path: key for key in SCHEMA}


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
                f"set {path} in {self.config_path or DEFAULT_CONFIG_FILE}, or {key.env_var}, or {flag} where the command has it",
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
        raise ConfigError(f"config file {path} not found", "create it from config.example.yaml or pass --config PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.__class__.__name__}: {exc}", "check the path and its permissions") from None
    try:
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), path)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path}: invalid YAML{where}: {problem}", "fix the YAML syntax (indentation, quotes, colons)") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys at the top level, got {type(document).__name__}",
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
            wrong = next((item for item in value if not isinstance(item, str) or "\n" in item or not item.strip()), None)
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

