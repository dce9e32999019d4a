"""Entry points: ``python -m edge_function run`` and the Greengrass V1 ``lambda_function``, end to end
against a moto server in a subprocess, plus the Python 3.7 compatibility gate of the device code."""

import glob
import json
import os
import subprocess
import sys
import textwrap

import boto3
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS_EDGE = os.path.dirname(os.path.abspath(__file__))
PYTHON37 = "/root/.pyenv/versions/3.7.16/bin/python"
BUCKET = "deeplens-faces-e2e"


def run_module(args, env, timeout=60):
    return subprocess.run([sys.executable, "-m", "edge_function"] + args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def subprocess_env(edge_env, tmp_path):
    env = dict(edge_env)
    env["PYTHONPATH"] = REPO
    env["DEEPLENS_SPOOL_DIR"] = str(tmp_path / "spool")
    return env


@pytest.fixture
def server_s3(moto_server):
    client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def face_folder(astronaut_frames):
    """Six 1280x720 frames with one real face (scikit-image's astronaut), as a --source directory."""
    return astronaut_frames(6)


def all_objects(client):
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return [obj["Key"] for obj in listed]


def test_run_with_max_frames_uploads_the_face_and_exits_zero(subprocess_env, moto_server, server_s3, face_folder):
    env = dict(subprocess_env, AWS_ENDPOINT_URL_S3=moto_server)
    result = run_module(["run", "--source", face_folder, "--detector", "centerface", "--bucket", BUCKET,
                         "--max-frames", "5", "--device", "laptop-cam", "--publish-interval-s", "0"], env)
    assert result.returncode == 0, result.stderr
    (key,) = all_objects(server_s3)  # one person in view: one crop
    assert key.startswith("faces/") and key.endswith(".jpg")
    head = server_s3.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["device"] == "laptop-cam"
    assert head["Metadata"]["detector"] == "centerface"
    assert head["Metadata"]["frame-size"] == "1280x720"
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(messages) == 5
    assert all(m["topic"] == "$aws/things/laptop-cam/infer" and m["message"]["face"] > 0.5 for m in messages)
    assert os.listdir(env["DEEPLENS_SPOOL_DIR"]) == [".deeplens-spool"]  # only the spool's own marker


@pytest.mark.parametrize("args, env_extra, fragment", [
    (["run", "--source", "x", "--detector", "opencv", "--bucket", BUCKET, "--threshold", "2"], {},
     "invalid --threshold '2': expected a number from 0 to 1"),
    (["run", "--source", "x", "--detector", "opencv"], {}, "missing bucket"),
    (["run", "--source", "x", "--detector", "opencv"], {"DEEPLENS_BUCKET": BUCKET, "DEEPLENS_MARGIN": "wide"},
     "invalid DEEPLENS_MARGIN 'wide'"),
    (["run", "--source", "/no/such/folder", "--detector", "opencv", "--bucket", BUCKET], {}, "/no/such/folder"),
    (["run", "--bucket", BUCKET], {}, "awscam"),  # the defaults need a DeepLens
    ([], {}, "missing command"),
])
def test_bad_usage_exits_2_with_one_line(subprocess_env, args, env_extra, fragment):
    result = run_module(args, dict(subprocess_env, **env_extra))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "Traceback" not in result.stderr


FAKE_AWSCAM = '''
import json, os, sys
with open(os.environ["FAKE_DEVICE_REPORT"], "w") as report:
    json.dump({"cv2_loaded_before_awscam": "cv2" in sys.modules}, report)
sys.path.insert(0, %(tests)r)
import numpy
from fakes import FakeAwscam, ssd_result

_frame = numpy.full((1080, 1920, 3), 90, numpy.uint8)
_frame[300:700, 600:900] = 160
# one face, in 300x300 model-input pixels: (100, 90)-(140, 180) -> (640, 324)-(896, 648) in the frame
_device = FakeAwscam(frames=[_frame], detections_fn=lambda resized: [ssd_result(1, 0.97, 100, 90, 140, 180)])
getLastFrame = _device.getLastFrame
Model = _device.Model
'''

FAKE_GREENGRASSSDK = '''
import json, os


class _IotData(object):
    def publish(self, **kwargs):  # keyword arguments only, like the real SDK
        with open(os.environ["FAKE_IOT_MESSAGES"], "a") as out:
            out.write(json.dumps({"topic": kwargs["topic"], "payload": kwargs["payload"]}) + "\\n")


def client(service):
    assert service == "iot-data"
    return _IotData()
'''

LAMBDA_HOST = '''
import threading
import edge_function.lambda_function as function
assert function.function_handler({}, None) is None
assert function.THREAD is not None
names = [t.name for t in threading.enumerate()]
assert names.count("edge-loop") == 1 and names.count("s3-uploader") == 1, names
function.THREAD.join(60)
assert not function.THREAD.is_alive()
print("frames", function.EDGE_LOOP.frames, "restarts", function.SUPERVISOR.restarts)
'''


def test_lambda_starts_the_loop_at_import_on_a_simulated_deeplens(subprocess_env, moto_server, server_s3,
                                                                   tmp_path):
    device = tmp_path / "device"
    device.mkdir()
    (device / "awscam.py").write_text(FAKE_AWSCAM % {"tests": TESTS_EDGE})
    (device / "greengrasssdk.py").write_text(FAKE_GREENGRASSSDK)
    env = dict(subprocess_env, AWS_ENDPOINT_URL_S3=moto_server, PYTHONPATH=str(device) + os.pathsep + REPO,
               FAKE_DEVICE_REPORT=str(tmp_path / "report.json"), FAKE_IOT_MESSAGES=str(tmp_path / "iot.jsonl"),
               AWS_IOT_THING_NAME="deeplens_abc123", DEEPLENS_BUCKET=BUCKET, DEEPLENS_MAX_FRAMES="12",
               DEEPLENS_PREVIEW=str(tmp_path / "preview.jpg"), DEEPLENS_PUBLISH_INTERVAL_S="0")
    result = subprocess.run([sys.executable, "-c", LAMBDA_HOST], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert "frames 12 restarts 0" in result.stdout

    with open(str(tmp_path / "report.json")) as report:
        assert json.load(report) == {"cv2_loaded_before_awscam": False}
    (key,) = all_objects(server_s3)
    assert server_s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]["box"] == "640,324,896,648"
    with open(str(tmp_path / "iot.jsonl")) as lines:
        messages = [json.loads(line) for line in lines]
    assert len(messages) == 12
    for message in messages:
        assert message["topic"] == "$aws/things/deeplens_abc123/infer"
        assert json.loads(message["payload"])["face"] == 0.97
    with open(str(tmp_path / "preview.jpg"), "rb") as preview:
        assert preview.read(2) == b"\xff\xd8"  # the annotated preview was written, as a JPEG


def test_lambda_with_bad_settings_logs_one_line_and_does_not_start(caplog):
    from edge_function import lambda_function  # imported without DEEPLENS_BUCKET: nothing started

    assert lambda_function.THREAD is None
    caplog.clear()
    assert lambda_function.start(env={"DEEPLENS_BUCKET": "b"}) is None
    (record,) = [r for r in caplog.records if r.name == "edge_function"]
    assert "invalid DEEPLENS_BUCKET 'b'" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert lambda_function.function_handler({"any": "event"}, None) is None


def test_device_code_is_python_37_compatible():
    """edge_function, and the awscam stand-in the device lab's DeepLens puts in its Python 3.7's site-packages."""
    edge_dir = os.path.join(REPO, "edge_function")
    awscam_stand_in = os.path.join(REPO, "deeplens_cli", "simulator", "awscam.py")
    vermin = subprocess.run([os.path.join(os.path.dirname(sys.executable), "vermin"), "-t=3.7-", "--violations",
                             "--eval-annotations", "--feature", "union-types", "--no-tips", edge_dir,
                             awscam_stand_in],
                            capture_output=True, text=True, timeout=60)
    assert vermin.returncode == 0, vermin.stdout + vermin.stderr
    if not os.path.exists(PYTHON37):
        pytest.skip("no Python 3.7 interpreter at %s" % PYTHON37)
    for path in sorted(glob.glob(os.path.join(edge_dir, "*.py"))) + [awscam_stand_in]:
        source = open(path).read()
        compiled = subprocess.run([PYTHON37, "-c", textwrap.dedent("""
            import sys
            compile(sys.stdin.read(), %r, "exec")
        """ % path)], input=source, capture_output=True, text=True, timeout=30)
        assert compiled.returncode == 0, compiled.stderr


PY37_SMOKE = '''
import io, json, tempfile
from edge_function import keys, publish, settings, uploader
from edge_function.spool import Spool
config = settings.load_settings({"DEEPLENS_BUCKET": "deeplens-x", "DEEPLENS_DETECTOR": "opencv"})
assert config.threshold == 0.5
try:
    settings.load_settings({"DEEPLENS_BUCKET": "deeplens-x", "DEEPLENS_THRESHOLD": "2"})
    raise SystemExit("no error")
except settings.SettingsError as error:
    assert "DEEPLENS_THRESHOLD" in str(error)
factory = keys.KeyFactory(boot_id="abcdef")
assert len({factory.make_key(1700000000.5) for _ in range(100)}) == 100
assert keys.object_metadata("d", "x", 0.9, (1, 2, 3, 4), (10, 20), 1, 1700000000.5)["captured-at"].endswith("Z")
out = io.StringIO()
publish.StdoutPublisher(out).publish("t", {"face": 0.9})
assert json.loads(out.getvalue())["message"] == {"face": 0.9}
spool = Spool(tempfile.mkdtemp(), 10 ** 6)
spool.add(uploader.UploadItem("k", b"jpeg", {"a": "b"}))
assert Spool(spool.directory, 10 ** 6).oldest()[1:4] == ("k", b"jpeg", {"a": "b"})
print("ok")
'''


def test_stdlib_only_modules_run_on_python_37():
    """settings, keys, publish and the spool need only the standard library: run them on a real 3.7."""
    if not os.path.exists(PYTHON37):
        pytest.skip("no Python 3.7 interpreter at %s" % PYTHON37)
    result = subprocess.run([PYTHON37, "-c", PY37_SMOKE], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": REPO})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
