"""Fixtures for the edge-loop tests (on top of the tests/support plugins: ``aws_env``, ``moto_server``).

* ``edge_env`` (autouse): fake AWS credentials (the shared ``aws_env``) and none of the Greengrass
  variables that would switch the publisher or name a device from the developer's shell;
* ``s3``: an in-process moto S3 client with the test bucket;
* ``record_puts``: records every PutObject a client makes, both as API parameters and as sent headers;
* ``bucket_keys``: the keys in a bucket;
* ``make_frame``: a synthetic BGR frame with textured "face" patches.

Plain helpers shared with other folders (a poll loop, a fake clock) are in tests/support/.
"""

import os
import threading

import numpy
import pytest

BUCKET = "deeplens-faces-test"
_GREENGRASS_VARIABLES = ("AWS_IOT_THING_NAME", "SVCUID", "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN")


@pytest.fixture(autouse=True)
def edge_env(aws_env, monkeypatch):
    for name in _GREENGRASS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return dict(os.environ)


@pytest.fixture
def bucket():
    return BUCKET


@pytest.fixture
def s3():
    """A moto-backed (in-process) S3 client with the test bucket created."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class PutRecorder:
    """Every PutObject a botocore client makes: the API parameters (``Bucket``, ``Key``, ``ACL`` ...)
    before serialisation, and the headers of the HTTP request actually sent."""

    def __init__(self, client):
        self.params = []
        self.headers = []
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.s3.PutObject", self._record_params)
        client.meta.events.register("before-send.s3.PutObject", self._record_request)

    def _record_params(self, params, **_kwargs):
        with self._lock:
            self.params.append(dict(params))

    def _record_request(self, request, **_kwargs):
        with self._lock:
            self.headers.append({name.lower(): value for name, value in request.headers.items()})

    def keys(self):
        with self._lock:
            return [params["Key"] for params in self.params]


@pytest.fixture
def record_puts():
    return PutRecorder


@pytest.fixture
def bucket_keys():
    def list_keys(client, name=BUCKET):
        paginator = client.get_paginator("list_objects_v2")
        return sorted(obj["Key"] for page in paginator.paginate(Bucket=name) for obj in page.get("Contents", []))

    return list_keys


def _face_frame(width=1920, height=1080, boxes=(), seed=0):
    rng = numpy.random.RandomState(seed)
    frame = rng.randint(0, 60, size=(height, width, 3)).astype(numpy.uint8)
    for x0, y0, x1, y1 in boxes:
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
        frame[y0:y1, x0:x1] = rng.randint(120, 255, size=(y1 - y0, x1 - x0, 3)).astype(numpy.uint8)
    return frame


@pytest.fixture
def make_frame():
    """``make_frame(width=1920, height=1080, boxes=(), seed=0)``: dark noise with a bright textured patch per
    box, so crops, sharpness and JPEG round trips are non-trivial."""
    return _face_frame


@pytest.fixture
def astronaut_frames(tmp_path):
    """``astronaut_frames(count)``: a --source folder of ``count`` 1280x720 frames with one real face (scikit-image's
    astronaut) that moves 4 px a frame, for tests that run the real ``python -m edge_function run``."""
    import cv2
    from skimage import data

    def write(count):
        astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
        folder = tmp_path / "frames"
        folder.mkdir()
        for index in range(count):
            frame = numpy.full((720, 1280, 3), 40, numpy.uint8)
            frame[100:612, 300 + index * 4:812 + index * 4] = astronaut
            cv2.imwrite(str(folder / ("frame_%02d.jpg" % index)), frame)
        return str(folder)

    return write
