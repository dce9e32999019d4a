"""The settings schema: one row per key (type, default, environment variable, the sentence that documents it)
and the value checks the rows use.

`SCHEMA` is the single source of truth for every key. Loading and layering settings (config.py), the environment
mapping, the command-line flags and the check that `config.example.yaml` documents every key all read this table,
so they cannot drift apart. Kept apart from config.py because it is data plus pure checks: nothing here reads a
file or the environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from deeplens_cli.targets.names import DEFAULT_TARGET, TARGET_NAMES
from edge_function.keys import template_problem
from edge_function.settings import bucket_name_problem

ENV_PREFIX = "DEEPLENS_"
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
DEFAULT_KEY_TEMPLATE = "{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"


# ---------------------------------------------------------------------------------------------- checks


def check_bucket_name(name: str) -> str | None:
    """S3 bucket naming rules; the device's own check (edge_function.settings) is the one copy of them."""
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
    Key("endpoint_url", str, None,
        "send every AWS call to this endpoint (an emulator); AWS_ENDPOINT_URL[_<SERVICE>] also work",
        check_endpoint_url),
    Key("aws.retry_mode", str, "standard", "botocore retry mode for every client", _one_of("standard", "adaptive")),
    Key("aws.max_attempts", int, 5, "botocore max attempts per call, including the first", _between(1, 20)),
    Key("bucket", str, None,
        "S3 bucket for face crops (created by register-roles when missing)", check_bucket_name, required=True),
    Key("prefix", str, "faces/", "key prefix of face crops; the downstream pipeline triggers on it", _check_prefix),
    Key("key_template", str, DEFAULT_KEY_TEMPLATE, "crop key below the prefix; must contain {n}", _check_key_template),
    Key("retention_days", int, None,
        "expire face crops after this many days (S3 lifecycle rule); null keeps them", _between(1, 36500)),
    Key("s3_access", str, "least-privilege",
        "device S3 grant: least-privilege (PutObject on bucket/prefix*) or full (AmazonS3FullAccess, as the workshop "
        "did)",
        _one_of("least-privilege", "full")),
    Key("device", str, None, "default device name for deploy/status/destroy"),
    Key("project.name", str, "deeplens-face-detection",
        "project name (Greengrass V1 function tag / V2 deployment name)", _check_function_name),
    Key("function.name", str, "deeplens-face-crops",
        "Lambda function name (Greengrass V1); DeepLens requires the deeplens prefix", _check_function_name),
    Key("function.runtime", str, "python3.7",
        "Python the device runs the function with (DeepLens: python3.7)",
        _one_of("python3.7", "python3.8", "python3.9", "python3.10", "python3.11", "python3.12")),
    Key("function.lambda_runtime", str, None,
        "runtime declared to AWS Lambda when it differs from the device's; Greengrass V1 then uses "
        "FunctionRuntimeOverride",
        _one_of("python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13")),
    Key("function.memory_mb", int, 1024, "memory limit of the function on the device (MB)", _between(128, 10240)),
    Key("function.timeout_s", int, 600, "function timeout (s); the loop is pinned (long-lived)", _between(1, 900)),
    Key("function.vendor", list, [],
        "pip requirements bundled into the function zip for the device's Python (e.g. boto3==1.33.13); built once and "
        "cached"),
    Key("model.name", str, "deeplens-face-detection", "model name (the DeepLens face-detection template model)"),
    Key("model.artifact_path", str, "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml",
        "model file on the device (awscam.Model path)"),
    Key("model.input_width", int, 300,
        "model input width in pixels (boxes come back in this space)", _between(16, 4096)),
    Key("model.input_height", int, 300, "model input height in pixels", _between(16, 4096)),
    Key("model.s3_uri", str, None,
        "deliver the model as a Greengrass ML resource from this s3:// archive; null uses the artifact already on the "
        "device",
        _check_s3_uri),
    Key("detection.detector", str, "auto",
        "auto (awscam on a DeepLens, opencv elsewhere), awscam (device SSD), opencv (the best offline CPU detector: "
        "YuNet where the CPU allows, else CenterFace), yunet or centerface",
        _one_of("auto", "awscam", "opencv", "yunet", "centerface")),
    Key("detection.source", str, "auto",
        "frame source: auto (awscam on a DeepLens, webcam:0 elsewhere), awscam, webcam:N, a video file or an image "
        "folder"),
    Key("detection.threshold", float, None,
        "minimum detector confidence for a face to be considered; null = the detector's own (0.6 awscam, 0.5 "
        "CenterFace, 0.7 YuNet)",
        _between(0.01, 0.99)),
    Key("detection.min_face_px", int, None,
        "minimum face side in frame pixels; null = 40 px scaled to the frame height (Rekognition's floor at 1080p)",
        _between(8, 4096)),
    Key("detection.margin", float, 0.2,
        "margin added around each face crop, as a fraction of the face size", _between(0.0, 1.0)),
    Key("detection.motion_gate", bool, True,
        "run the detector only on frames where something moved; false runs it on every frame"),
    Key("detection.motion_regions", bool, False,
        "with the motion gate on, run the detector only on the regions that moved"),
    Key("detection.motion_threshold", float, 25.0,
        "grey-level change (1-255) that counts as motion", _between(1.0, 255.0)),
    Key("detection.motion_min_area", float, 0.001,
        "smallest moving region, as a fraction of the frame area", _between(0.0, 0.5)),
    Key("detection.motion_full_detection_s", float, 5.0,
        "a full-frame detection runs at least this often, so a person standing still is still seen",
        _between(0.1, 3600.0)),
    Key("detection.cooldown_s", float, 10.0,
        "seconds before the same tracked face may be sent again", _between(0.0, 86400.0)),
    Key("detection.max_uploads_per_minute", int, 30,
        "global cap on crops uploaded per minute (cost control)", _between(1, 6000)),
    Key("upload.queue_size", int, 32,
        "crops held in memory waiting for the uploader; beyond it they go to the spool", _between(1, 10000)),
    Key("upload.spool_dir", str, None,
        "on-device spool for crops while S3 is unreachable; null = /tmp/deeplens-spool (V1) or the component work dir "
        "(V2)"),
    Key("upload.spool_max_mb", int, 200,
        "spool size cap; the oldest crops are dropped (and counted) beyond it", _between(1, 100000)),
    Key("upload.jpeg_quality", int, 90, "JPEG quality of face crops", _between(50, 100)),
    Key("greengrass.default_target", str, DEFAULT_TARGET,
        "target of register-device when --greengrass is not given", _one_of(*TARGET_NAMES)),
    Key("greengrass.component_name", str, "com.deeplens.FaceCrops",
        "Greengrass V2 component name", _check_component_name),
    Key("greengrass.artifact_bucket", str, None,
        "bucket for Greengrass V2 component artifacts; null = the crops bucket", check_bucket_name),
    Key("greengrass.artifact_prefix", str, "greengrass-artifacts/",
        "key prefix for component artifacts (keys are immutable: <component>/<version>/<file>)", _check_prefix),
    Key("greengrass.token_exchange_role", str, "DeepLensGreengrassV2TokenExchangeRole",
        "IAM role Greengrass V2 devices assume through the role alias"),
    Key("greengrass.role_alias", str, "DeepLensGreengrassV2TokenExchangeRoleAlias",
        "IoT role alias pointing at the token exchange role"),
    Key("greengrass.python", str, "python3", "Python command the V2 component runs the edge function with"),
    Key("greengrass.device_profile", str, "auto",
        "what a V2 device is, for its bundle: auto (detected on it), deeplens (a stock AWS DeepLens) or generic",
        _one_of("auto", "generic", "deeplens")),
    Key("greengrass.pin_nucleus", bool, False,
        "V2 thing deployments pin the nucleus version the device runs; false lets a thing-group nucleus upgrade "
        "through"),
    Key("deploy.timeout_s", int, 600, "how long deploy waits for the device before exit code 4", _between(1, 86400)),
    Key("deploy.poll_s", float, 5.0, "seconds between deployment status polls", _between(0.01, 600.0)),
    Key("logs.cloudwatch", bool, True,
        "deploy ships device logs to CloudWatch Logs (V2 LogManager, V1 logger); false opts out"),
)

KEYS: dict[str, Key] = {key.path: key for key in SCHEMA}
