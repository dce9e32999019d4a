"""package.py: the function zip is byte-reproducible, holds only what the device needs, vendors wheels for the
device's Python from a cache, and the CLI settings map onto the variables the edge function reads."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from deeplens_cli.errors import DeeplensError
from deeplens_cli.targets.package import (
    ZIP_EPOCH,
    TargetPython,
    build_package,
    edge_environment,
    edge_function_dir,
    target_problems,
    vendor_dir_if_cached,
    vendor_key,
)
from tests.support.settings import make_settings


def make_source(root: Path) -> Path:
    """A small package tree with the clutter a working copy accumulates."""
    source = root / "edge_function"
    (source / "__pycache__").mkdir(parents=True)
    (source / "tests").mkdir()
    (source / ".hidden").mkdir()
    (source / "__init__.py").write_text("VERSION = 1\n")
    (source / "lambda_function.py").write_text("def function_handler(event, context):\n    return None\n")
    (source / "zeta.py").write_text("Z = 26\n")
    (source / "__pycache__" / "zeta.cpython-37.pyc").write_bytes(b"\x00compiled")
    (source / "stale.pyc").write_bytes(b"\x00compiled")
    (source / "tests" / "test_zeta.py").write_text("def test(): pass\n")
    (source / "test_inline.py").write_text("def test(): pass\n")
    (source / ".hidden" / "secret.txt").write_text("not for the device")
    (source / ".DS_Store").write_bytes(b"finder")
    return source


def make_wheel(folder: Path, name: str = "tinydep", version: str = "1.0", metadata: str = "") -> Path:
    """A pure-Python wheel built by hand, so vendoring can be tested with `pip --no-index` (no network).
    `metadata` adds METADATA lines (Requires-Dist, Requires-Python)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": "VALUE = 42\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata}",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(text: str) -> str:
        raw = hashlib.sha256(text.encode()).digest()
        return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    record = "".join(f"{path},{digest(text)},{len(text.encode())}\n" for path, text in files.items())
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return wheel


class TestReproducibleZip:

    def test_two_builds_of_the_same_tree_are_byte_identical(self, tmp_path):
        source = make_source(tmp_path)
        first, second = build_package(source), build_package(source)
        assert first.zip_bytes == second.zip_bytes
        assert first.sha256_hex == second.sha256_hex

    def test_the_real_edge_function_builds_identically_twice(self):
        assert build_package().zip_bytes == build_package().zip_bytes

    def test_file_times_do_not_change_the_bytes(self, tmp_path):
        import os

        source = make_source(tmp_path)
        before = build_package(source).zip_bytes
        os.utime(source / "zeta.py", (1_900_000_000, 1_900_000_000))
        assert build_package(source).zip_bytes == before

    def test_a_content_change_changes_the_digest(self, tmp_path):
        source = make_source(tmp_path)
        before = build_package(source)
        (source / "zeta.py").write_text("Z = 27\n")
        assert build_package(source).sha256_hex != before.sha256_hex

    def test_entries_are_sorted_with_fixed_time_and_mode(self, tmp_path):
        package = build_package(make_source(tmp_path))
        infos = zipfile.ZipFile(io.BytesIO(package.zip_bytes)).infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names) == list(package.files)
        assert {info.date_time for info in infos} == {ZIP_EPOCH}
        assert {info.external_attr >> 16 for info in infos} == {0o100644}

    def test_caches_tests_and_hidden_files_are_left_out(self, tmp_path):
        package = build_package(make_source(tmp_path))
        assert package.files == ("edge_function/__init__.py", "edge_function/lambda_function.py",
                                 "edge_function/zeta.py")

    def test_digests_are_what_lambda_reports(self, tmp_path):
        package = build_package(make_source(tmp_path))
        digest = hashlib.sha256(package.zip_bytes).digest()
        assert package.sha256_hex == digest.hex()
        assert package.code_sha256_b64 == base64.b64encode(digest).decode()

    def test_the_real_package_has_the_lambda_handler_and_no_bytecode(self):
        package = build_package()
        assert "edge_function/lambda_function.py" in package.files
        assert edge_function_dir().name == "edge_function"
        assert not [name for name in package.files if name.endswith(".pyc") or "__pycache__" in name]

    def test_a_missing_source_directory_is_a_clear_error(self, tmp_path):
        with pytest.raises(DeeplensError, match="not a directory"):
            build_package(tmp_path / "nope")


class TestVendoring:

    def test_requirements_are_installed_for_the_device_and_zipped_at_the_root(self, tmp_path):
        wheels = make_wheel(tmp_path / "wheels").parent
        package = build_package(make_source(tmp_path), ["tinydep==1.0"], cache_dir=tmp_path / "cache",
                                pip_options=("--no-index", "--find-links", str(wheels)))
        archive = zipfile.ZipFile(io.BytesIO(package.zip_bytes))
        assert archive.read("tinydep/__init__.py") == b"VALUE = 42\n"
        assert "edge_function/zeta.py" in package.files

    def test_pip_is_asked_for_the_device_python_and_platform(self, tmp_path):
        seen = []

        def fake_pip(command, **_):
            seen.append(command)
            target = Path(command[command.index("--target") + 1])
            (target / "dep").mkdir(parents=True)
            (target / "dep" / "__init__.py").write_text("")
            return subprocess.CompletedProcess(command, 0, "", "")

        build_package(make_source(tmp_path), ["dep==2"], python_version="3.7", cache_dir=tmp_path / "cache",
                      run=fake_pip)
        (command,) = seen
        assert command[command.index("--python-version") + 1] == "3.7"
        assert command[command.index("--platform") + 1] == "manylinux2014_x86_64"
        assert command[command.index("--implementation") + 1] == "cp"
        assert command[command.index("--abi") + 1] == "cp37m"
        assert "--only-binary=:all:" in command and "--no-compile" in command
        assert command[-1] == "dep==2"

    def test_a_cached_set_is_reused_without_running_pip(self, tmp_path):
        wheels = make_wheel(tmp_path / "wheels").parent
        options = ("--no-index", "--find-links", str(wheels))
        source = make_source(tmp_path)
        first = build_package(source, ["tinydep==1.0"], cache_dir=tmp_path / "cache", pip_options=options)

        def no_pip(*args, **kwargs):
            raise AssertionError("pip must not run on a cache hit")

        second = build_package(source, ["tinydep==1.0"], cache_dir=tmp_path / "cache", pip_options=options,
                               run=no_pip)
        assert second.zip_bytes == first.zip_bytes
        assert vendor_dir_if_cached(["tinydep==1.0"], cache_dir=tmp_path / "cache", pip_options=options) is not None

    def test_two_independent_vendor_builds_give_the_same_zip(self, tmp_path):
        wheels = make_wheel(tmp_path / "wheels").parent
        options = ("--no-index", "--find-links", str(wheels))
        source = make_source(tmp_path)
        one = build_package(source, ["tinydep==1.0"], cache_dir=tmp_path / "cache-a", pip_options=options)
        two = build_package(source, ["tinydep==1.0"], cache_dir=tmp_path / "cache-b", pip_options=options)
        assert one.zip_bytes == two.zip_bytes

    def test_the_cache_key_follows_requirements_python_and_platform(self):
        base = vendor_key(["boto3==1.33.13"], "3.7", "manylinux2014_x86_64")
        assert vendor_key(["boto3==1.33.13"], "3.7", "manylinux2014_x86_64") == base
        assert vendor_key(["boto3==1.33.12"], "3.7", "manylinux2014_x86_64") != base
        assert vendor_key(["boto3==1.33.13"], "3.8", "manylinux2014_x86_64") != base
        assert vendor_key(["boto3==1.33.13"], "3.7", "manylinux2014_aarch64") != base

    def test_a_pip_failure_is_one_line_and_leaves_no_cache_entry(self, tmp_path):
        def failing_pip(command, **_):
            return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for nope==9\n")

        with pytest.raises(DeeplensError, match="No matching distribution found for nope==9") as raised:
            build_package(make_source(tmp_path), ["nope==9"], cache_dir=tmp_path / "cache", run=failing_pip)
        assert "function.vendor" in raised.value.hint
        assert vendor_dir_if_cached(["nope==9"], cache_dir=tmp_path / "cache") is None
        assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".building")]

    def test_a_vendored_file_may_not_shadow_the_edge_function(self, tmp_path):
        def shadowing_pip(command, **_):
            target = Path(command[command.index("--target") + 1])
            (target / "edge_function").mkdir(parents=True)
            (target / "edge_function" / "evil.py").write_text("")
            return subprocess.CompletedProcess(command, 0, "", "")

        with pytest.raises(DeeplensError, match="shadow"):
            build_package(make_source(tmp_path), ["evil==1"], cache_dir=tmp_path / "cache", run=shadowing_pip)


class TestVendoringForTheDevicePython:
    """pip evaluates markers for the Python it runs on; the device runs 3.7 (issue 14 item 7)."""

    @staticmethod
    def botocore_like_wheels(folder: Path, newer_dep: bool = True, older_dep: bool = True) -> Path:
        # like botocore 1.33.13: urllib3<1.27 below Python 3.10, urllib3 2.x allowed from 3.10
        make_wheel(folder, "botolike", "1.0", 'Requires-Dist: urllib3like<1.27; python_version < "3.10"\n'
                                              'Requires-Dist: urllib3like<3,>=1.25.4; python_version >= "3.10"\n')
        if older_dep:
            make_wheel(folder, "urllib3like", "1.26.18", "Requires-Python: >=2.7\n")
        if newer_dep:
            make_wheel(folder, "urllib3like", "2.0.7", "Requires-Python: >=3.7\n")
        return folder

    def test_dependencies_follow_the_device_markers_not_the_build_python(self, tmp_path):
        wheels = self.botocore_like_wheels(tmp_path / "wheels")
        package = build_package(make_source(tmp_path), ["botolike==1.0"], python_version="3.7",
                                cache_dir=tmp_path / "cache", pip_options=("--no-index", "--find-links", str(wheels)))
        assert "urllib3like-1.26.18.dist-info/METADATA" in package.files
        assert not [name for name in package.files if name.startswith("urllib3like-2")]

    def test_what_cannot_fit_the_device_fails_with_one_line_and_no_cache_entry(self, tmp_path):
        wheels = self.botocore_like_wheels(tmp_path / "wheels", older_dep=False)
        with pytest.raises(DeeplensError) as raised:
            build_package(make_source(tmp_path), ["botolike==1.0"], python_version="3.7",
                          cache_dir=tmp_path / "cache", pip_options=("--no-index", "--find-links", str(wheels)))
        assert "\n" not in raised.value.message
        assert "urllib3like<1.27" in raised.value.message
        assert vendor_dir_if_cached(["botolike==1.0"], cache_dir=tmp_path / "cache",
                                    pip_options=("--no-index", "--find-links", str(wheels))) is None

    def test_each_vendored_distribution_is_checked_against_the_device(self, tmp_path):
        site = tmp_path / "site"
        for name, version, metadata in (
                ("modern", "3.0", "Requires-Python: >=3.8\n"),
                ("needsback", "1.0", 'Requires-Dist: backport; python_version < "3.8"\n'
                                     'Requires-Dist: modern>=2; extra == "fancy"\n'),
                ("fine", "1.0", 'Requires-Python: >=3.7\nRequires-Dist: modern; python_version >= "3.7"\n')):
            info = site / f"{name}-{version}.dist-info"
            info.mkdir(parents=True)
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata}")
        texts = [
            problem.text
            for problem in target_problems(site, TargetPython.for_device("3.7", "manylinux2014_x86_64"))
        ]
        assert texts == ["modern 3.0 requires Python >=3.8",
                         'needsback 1.0 needs backport on python_version < "3.8", which is not vendored']
        assert target_problems(site, TargetPython.for_device("3.11", "manylinux2014_x86_64")) == []

    def test_the_abi_tag_follows_the_device_python(self):
        assert TargetPython.for_device("3.7", "manylinux2014_x86_64").abi == "cp37m"
        assert TargetPython.for_device("3.11", "manylinux2014_aarch64").abi == "cp311"
        assert TargetPython.for_device("3.7", "manylinux2014_aarch64").marker_environment()["platform_machine"] == \
            "aarch64"


class TestEdgeEnvironment:

    def test_settings_become_the_variables_the_edge_function_reads(self):
        from edge_function.settings import load_settings

        env = edge_environment(make_settings(bucket="deeplens-crops", prefix="faces/", detection__threshold=0.7,
                                             detection__margin=0.25, upload__jpeg_quality=80))
        edge = load_settings(env)
        assert (edge.bucket, edge.prefix, edge.threshold, edge.margin) == ("deeplens-crops", "faces", 0.7, 0.25)
        assert edge.jpeg_quality == 80
        assert edge.detector == "awscam" and edge.source == "awscam"
        assert edge.model_path == "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"
        assert edge.key_template == "{prefix}/{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"
        assert all(isinstance(value, str) for value in env.values())

    def test_auto_detector_off_a_deeplens_is_the_offline_one(self):
        env = edge_environment(make_settings(), on_deeplens=False)
        assert env["DEEPLENS_DETECTOR"] == "opencv"
        assert env["DEEPLENS_SOURCE"] == "webcam:0"
        assert "DEEPLENS_MODEL_PATH" not in env  # the offline detector brings its own model

    def test_without_a_threshold_each_detector_keeps_its_own_default(self):
        """A Greengrass V2 device running CenterFace must not get 0.6, the DeepLens SSD's threshold (issue 10)."""
        from edge_function.settings import load_settings

        for detector, expected in (("centerface", 0.5), ("yunet", 0.7), ("awscam", 0.6)):
            env = edge_environment(make_settings(detection__detector=detector), on_deeplens=False)
            assert "DEEPLENS_THRESHOLD" not in env
            assert load_settings(env).threshold == expected

    def test_the_motion_gate_settings_reach_the_device(self):
        from edge_function.settings import load_settings

        edge = load_settings(edge_environment(make_settings(
            detection__motion_gate=False, detection__motion_regions=True, detection__motion_threshold=30.0,
            detection__motion_min_area=0.01, detection__motion_full_detection_s=2.0)))
        assert (edge.motion_gate, edge.motion_regions) == (False, True)
        assert (edge.motion_threshold, edge.motion_min_area, edge.motion_full_detection_s) == (30.0, 0.01, 2.0)
        assert load_settings(edge_environment(make_settings())).motion_gate is True

    def test_an_unknown_kind_of_device_gets_auto_and_the_model_path_to_resolve_itself(self):
        env = edge_environment(make_settings(), on_deeplens=None)
        assert (env["DEEPLENS_DETECTOR"], env["DEEPLENS_SOURCE"]) == ("auto", "auto")
        assert env["DEEPLENS_MODEL_PATH"] == "/opt/awscam/artifacts/mxnet_deploy_ssd_FP16_FUSED.xml"

    def test_a_model_path_override_wins(self):
        env = edge_environment(make_settings(), model_path="/ml/model/face.xml")
        assert env["DEEPLENS_MODEL_PATH"] == "/ml/model/face.xml"

    def test_unset_optional_settings_use_the_edge_defaults(self):
        env = edge_environment(make_settings())
        assert env["DEEPLENS_MIN_FACE_PX"] == "auto"
        assert "DEEPLENS_SPOOL_DIR" not in env

    def test_the_bucket_is_required(self):
        from deeplens_cli.errors import ConfigError

        with pytest.raises(ConfigError, match="bucket"):
            edge_environment(make_settings(bucket=None))


def test_settings_the_device_would_refuse_are_a_usage_error_here(settings_for):
    """An empty model path passes the CLI's own schema but not the device's parser: caught before publishing."""
    from deeplens_cli.errors import ConfigError
    from deeplens_cli.targets.package import edge_environment

    with pytest.raises(ConfigError, match="the device would refuse these settings"):
        edge_environment(settings_for(model__artifact_path=""), on_deeplens=True)
