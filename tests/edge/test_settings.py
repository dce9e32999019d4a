"""settings.py: environment variables, flags over them, defaults, and one-line errors."""

import pytest

from edge_function import keys, settings

ENV = {"DEEPLENS_BUCKET": "deeplens-faces"}


def load(env=None, flags=None, defaults=None):
    merged = dict(ENV)
    merged.update(env or {})
    return settings.load_settings(merged, flags, defaults)


def error_of(env=None, flags=None):
    with pytest.raises(settings.SettingsError) as caught:
        load(env, flags)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_suit_the_deeplens():
    config = load()
    assert config.source == "awscam"
    assert config.detector == "awscam"
    assert config.threshold == 0.6
    assert config.model_path == "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"
    assert config.prefix == "faces"
    assert config.key_template == keys.DEFAULT_TEMPLATE
    assert config.min_face_px is None  # auto: 40 px at 1080p, scaled
    assert config.max_uploads_per_track == 1
    assert config.preview is None
    assert config.spool_max_bytes == 100 * 1024 * 1024


def test_offline_detector_gets_its_own_threshold_and_model():
    config = load({"DEEPLENS_DETECTOR": "centerface"})
    assert config.threshold == 0.5
    assert config.model_path is None


def test_every_setting_is_read_from_its_environment_variable():
    config = load(
        {
            "DEEPLENS_SOURCE": "/data/clip.mp4",
            "DEEPLENS_DETECTOR": "opencv",
            "DEEPLENS_PREFIX": "/cam1/",
            "DEEPLENS_THRESHOLD": "0.7",
            "DEEPLENS_MIN_FACE_PX": "48",
            "DEEPLENS_MARGIN": "0.3",
            "DEEPLENS_MODEL_PATH": "/m.onnx",
            "DEEPLENS_MODEL_INPUT_WIDTH": "320",
            "DEEPLENS_MODEL_INPUT_HEIGHT": "240",
            "DEEPLENS_SPOOL_DIR": "/var/spool/faces",
            "DEEPLENS_SPOOL_MAX_MB": "5",
            "DEEPLENS_QUEUE_SIZE": "4",
            "DEEPLENS_MAX_FRAMES": "100",
            "DEEPLENS_LOOP_SOURCE": "yes",
            "DEEPLENS_PREVIEW": "/tmp/p.mjpeg",
            "AWS_IOT_THING_NAME": "deeplens_abc",
            "DEEPLENS_TRACK_IOU": "0.5",
            "DEEPLENS_TRACK_LOST_S": "2",
            "DEEPLENS_BEST_FACE_TIMEOUT_S": "3",
            "DEEPLENS_MAX_UPLOADS_PER_TRACK": "2",
            "DEEPLENS_COOLDOWN_S": "30",
            "DEEPLENS_MAX_UPLOADS_PER_MINUTE": "6",
            "DEEPLENS_PUBLISH_INTERVAL_S": "0",
            "DEEPLENS_FLUSH_TIMEOUT_S": "3",
            "DEEPLENS_LOG_LEVEL": "debug",
            "DEEPLENS_KEY_TEMPLATE": "{prefix}/{device}/{timestamp_ms}_{n}.jpg",
            "DEEPLENS_TOPIC": "deeplens/deeplens_abc/infer",
            "DEEPLENS_JPEG_QUALITY": "80",
            "DEEPLENS_MOTION_GATE": "off",
            "DEEPLENS_MOTION_REGIONS": "on",
            "DEEPLENS_MOTION_THRESHOLD": "30",
            "DEEPLENS_MOTION_MIN_AREA": "0.01",
            "DEEPLENS_MOTION_FULL_DETECTION_S": "2",
        }
    )
    assert config == settings.Settings(source="/data/clip.mp4", detector="opencv", bucket="deeplens-faces",
                                       prefix="cam1", key_template="{prefix}/{device}/{timestamp_ms}_{n}.jpg",
                                       threshold=0.7, min_face_px=48.0, margin=0.3, model_path="/m.onnx",
                                       model_input_width=320, model_input_height=240, spool_dir="/var/spool/faces",
                                       spool_max_mb=5.0, queue_size=4, max_frames=100, loop_source=True,
                                       preview="/tmp/p.mjpeg", device="deeplens_abc", track_iou=0.5, track_lost_s=2.0,
                                       best_face_timeout_s=3.0, max_uploads_per_track=2, cooldown_s=30.0,
                                       max_uploads_per_minute=6, publish_interval_s=0.0, flush_timeout_s=3.0,
                                       log_level="DEBUG", topic="deeplens/deeplens_abc/infer", jpeg_quality=80,
                                       motion_gate=False, motion_regions=True, motion_threshold=30.0,
                                       motion_min_area=0.01, motion_full_detection_s=2.0)


def test_flags_override_environment():
    config = load({"DEEPLENS_THRESHOLD": "0.7", "DEEPLENS_BUCKET": "deeplens-env"},
                  {"threshold": "0.9", "bucket": "deeplens-flag", "prefix": None})
    assert config.threshold == 0.9
    assert config.bucket == "deeplens-flag"
    assert config.prefix == "faces"  # a flag that was not given does not hide the default


def test_entry_point_defaults_apply_below_the_environment():
    lambda_defaults = {"preview": "/tmp/results.mjpeg"}
    assert load(defaults=lambda_defaults).preview == "/tmp/results.mjpeg"
    assert load({"DEEPLENS_PREVIEW": "off"}, defaults=lambda_defaults).preview is None


def test_min_face_px_auto_and_device_default():
    assert load({"DEEPLENS_MIN_FACE_PX": "auto"}).min_face_px is None
    assert load().device  # the host name when Greengrass does not name the thing


@pytest.mark.parametrize("env, fragments", [
    ({"DEEPLENS_THRESHOLD": "1.5"}, ["DEEPLENS_THRESHOLD", "'1.5'", "from 0 to 1"]),
    ({"DEEPLENS_THRESHOLD": "high"}, ["DEEPLENS_THRESHOLD", "'high'", "a number"]),
    ({"DEEPLENS_DETECTOR": "yolo"}, ["DEEPLENS_DETECTOR", "'yolo'", "awscam, opencv"]),
    ({"DEEPLENS_QUEUE_SIZE": "0"}, ["DEEPLENS_QUEUE_SIZE", "'0'", "whole number >= 1"]),
    ({"DEEPLENS_MAX_FRAMES": "ten"}, ["DEEPLENS_MAX_FRAMES", "'ten'", "whole number"]),
    ({"DEEPLENS_MIN_FACE_PX": "-3"}, ["DEEPLENS_MIN_FACE_PX", "'-3'", ">= 0"]),
    ({"DEEPLENS_SPOOL_MAX_MB": "0"}, ["DEEPLENS_SPOOL_MAX_MB", "> 0"]),
    ({"DEEPLENS_LOOP_SOURCE": "maybe"}, ["DEEPLENS_LOOP_SOURCE", "true or false"]),
    ({"DEEPLENS_BUCKET": "My_Bucket"}, ["DEEPLENS_BUCKET", "'My_Bucket'", "S3 bucket name"]),
    ({"DEEPLENS_KEY_TEMPLATE": "faces/{timestamp}.jpg"}, ["DEEPLENS_KEY_TEMPLATE", "{n}"]),
    ({"DEEPLENS_KEY_TEMPLATE": "faces/{when}_{n}.jpg"}, ["DEEPLENS_KEY_TEMPLATE", "not {when}"]),
    ({"DEEPLENS_LOG_LEVEL": "LOUD"}, ["DEEPLENS_LOG_LEVEL", "DEBUG, INFO"]),
    ({"DEEPLENS_JPEG_QUALITY": "101"}, ["DEEPLENS_JPEG_QUALITY", "'101'", "from 1 to 100"]),
])
def test_bad_environment_values_give_one_line_naming_setting_value_and_expectation(env, fragments):
    message = error_of(env)
    for fragment in fragments:
        assert fragment in message


def test_bad_flag_is_reported_under_the_flag_name():
    message = error_of({"DEEPLENS_THRESHOLD": "0.5"}, {"threshold": "2"})
    assert message.startswith("invalid --threshold '2'")


def test_missing_bucket_says_how_to_set_it():
    with pytest.raises(settings.SettingsError, match="--bucket or DEEPLENS_BUCKET"):
        settings.load_settings({})


def test_every_setting_has_a_unique_flag_and_variable_and_is_documented():
    envs = [option.env for option in settings.OPTIONS]
    flags = [option.flag for option in settings.OPTIONS]
    assert len(set(envs)) == len(envs) and len(set(flags)) == len(flags)
    for option in settings.OPTIONS:
        assert option.flag in settings.__doc__, option.name
        assert option.env in settings.__doc__, option.name


def test_results_go_to_the_deeplens_topic_unless_another_is_given():
    assert load({"AWS_IOT_THING_NAME": "deeplens_abc"}).topic == "$aws/things/deeplens_abc/infer"
    assert load({"AWS_IOT_THING_NAME": "cam", "DEEPLENS_TOPIC": "deeplens/cam/infer"}).topic == "deeplens/cam/infer"


def test_jpeg_quality_defaults_to_90_and_reaches_the_settings():
    assert load().jpeg_quality == 90
    assert load({"DEEPLENS_JPEG_QUALITY": "75"}).jpeg_quality == 75
