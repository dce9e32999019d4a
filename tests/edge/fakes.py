"""A fake ``awscam`` module that follows the documented DeepLens device API, for tests.

Documented API (AWS DeepLens developer guide, "awscam module"):

* ``awscam.getLastFrame()`` -> ``(ret, frame)``: ``ret`` a bool, ``frame`` a BGR ``numpy.ndarray``.
* ``awscam.Model(model_topology_file, loading_config, runtime=0)`` with ``loading_config`` ``{"GPU": 1}``
  or ``{"GPU": 0}``.
* ``model.doInference(frame)`` -> ``{output_layer_name: ndarray}``.
* ``model.parseResult(model_type, raw)`` with ``model_type`` in classification | ssd | segmentation ->
  ``{model_type: [dict, ...]}``; for ``ssd`` each dict is ``{label, prob, xmin, ymin, xmax, ymax}`` with the
  box in pixels of the model input.

``FakeAwscam`` is a real module object, so a test can also install it as ``sys.modules["awscam"]`` for
code that does ``import awscam``. Everything the code under test did is recorded for assertions.
"""

import types
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy

#: Detections function: receives the frame passed to ``doInference`` (already resized to the model input
#: by the code under test) and returns SSD result dicts in model-input pixels.
DetectionsFn = Callable[[numpy.ndarray], List[Dict[str, float]]]

DOCUMENTED_MODEL_TYPES = ("classification", "ssd", "segmentation")


def ssd_result(label: int, prob: float, xmin: float, ymin: float, xmax: float, ymax: float) -> Dict[str, float]:
    """One ``parseResult("ssd", ...)`` entry, spelled the way the device returns it."""
    return {"label": label, "prob": prob, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}


class FakeModel(object):
    """``awscam.Model``: records every input and answers with ``detections_fn``."""

    def __init__(self, owner: "FakeAwscam", model_path: str, loading_config: Dict[str, int], runtime: int = 0):
        if set(loading_config) != {"GPU"} or loading_config["GPU"] not in (0, 1):
            raise ValueError("awscam.Model loading_config must be {'GPU': 1} or {'GPU': 0}, got %r" % (loading_config,))
        self.owner = owner
        self.model_path = model_path
        self.loading_config = dict(loading_config)
        self.runtime = runtime
        self.inputs: List[numpy.ndarray] = []

    def doInference(self, frame: numpy.ndarray) -> Dict[str, Any]:  # noqa: N802 - device API name
        if not isinstance(frame, numpy.ndarray) or frame.ndim != 3:
            raise TypeError("doInference expects an HxWxC numpy array")
        self.inputs.append(frame.copy())
        # The raw output is opaque to callers: only parseResult may interpret it.
        return {"ssd_fake_output": self.owner.detections_fn(frame)}

    def parseResult(self, model_type: str, raw: Dict[str, Any]) -> Dict[str, List[Dict[str, float]]]:  # noqa: N802
        if model_type not in DOCUMENTED_MODEL_TYPES:
            raise ValueError("unknown model type %r" % (model_type,))
        if model_type != "ssd":
            raise NotImplementedError("the fake only implements the 'ssd' model type")
        return {"ssd": [dict(obj) for obj in raw["ssd_fake_output"]]}


class FakeAwscam(types.ModuleType):
    """A stand-in for the ``awscam`` module.

    ``frames``: the frames ``getLastFrame`` returns, in order; a ``None`` entry simulates a failed grab
    (``(False, None)``). When the list runs out the last frame keeps being returned (a camera always has a
    "last frame"), unless ``repeat_last`` is False, in which case every further call fails.
    ``detections_fn``: see ``DetectionsFn``; the default finds nothing.
    ``raise_on_grab``: makes ``getLastFrame`` raise, to test that sources never propagate device errors.
    """

    def __init__(
        self,
        frames: Optional[Iterable[Optional[numpy.ndarray]]] = None,
        detections_fn: Optional[DetectionsFn] = None,
        repeat_last: bool = True,
        raise_on_grab: Optional[BaseException] = None,
    ) -> None:
        super(FakeAwscam, self).__init__("awscam", "fake awscam for tests")
        self.frames = list(frames) if frames is not None else []
        self.detections_fn = detections_fn or (lambda frame: [])
        self.repeat_last = repeat_last
        self.raise_on_grab = raise_on_grab
        self.grabs = 0
        self.models: List[FakeModel] = []

    def getLastFrame(self):  # noqa: N802 - device API name
        self.grabs += 1
        if self.raise_on_grab is not None:
            raise self.raise_on_grab
        if not self.frames:
            return False, None
        if self.grabs <= len(self.frames):
            frame = self.frames[self.grabs - 1]
        elif self.repeat_last:
            frame = self.frames[-1]
        else:
            return False, None
        if frame is None:
            return False, None
        return True, frame.copy()

    def Model(self, model_path: str, loading_config: Dict[str, int], runtime: int = 0) -> FakeModel:  # noqa: N802
        model = FakeModel(self, model_path, loading_config, runtime)
        self.models.append(model)
        return model
