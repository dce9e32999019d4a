"""The simulated nucleus runs a component the way the Java nucleus does: layout, variables, environment,
Install timeout, Run in the work folder, SIGTERM then SIGKILL. Scripts run on this machine (HostRunner); the
device lab runs the same code inside Debian root file systems."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path, PurePosixPath

import pytest

from deeplens_cli.simulator.nucleus import (
    ComponentUser,
    Deployed,
    DeviceFiles,
    DeviceIdentity,
    HostRunner,
    Nucleus,
    NucleusError,
    fetch_artifacts,
)
from tests.support.archives import zip_of
from tests.support.polling import HANG_GUARD_S, wait_for

URI = "s3://bucket/com.example.Thing/1.0.0/thing.zip"


def component(install: str | None = None, run: str = "true", timeout: float | None = None,
              dependencies: tuple[str, ...] = ("aws.greengrass.TokenExchangeService",)) -> Deployed:
    lifecycle: dict = {"Run": {"Script": run}}
    if install is not None:
        lifecycle["Install"] = {"Script": install, **({"Timeout": timeout} if timeout is not None else {})}
    recipe = {
        "ComponentName": "com.example.Thing", "ComponentVersion": "1.0.0",
        "ComponentDependencies": {name: {"VersionRequirement": "^2.0.0"} for name in dependencies},
        "ComponentConfiguration": {"DefaultConfiguration": {"Environment": {"GREETING": "hello"},
                                                            "list": [1, 2]}},
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": lifecycle,
                       "Artifacts": [{"URI": URI, "Unarchive": "ZIP", "Permission": {"Read": "OWNER"}}]}],
    }
    return Deployed(recipe=recipe, artifacts={URI: zip_of({"pkg/mod.py": "X = 1\n"})})


@pytest.fixture
def nucleus(tmp_path: Path) -> Nucleus:
    me = ComponentUser("me", os.getuid(), os.getgid())
    return Nucleus(device=DeviceIdentity(thing_name="deeplens-Cam", region="eu-west-1",
                                         root=PurePosixPath(str(tmp_path / "gg"))),
                   runner=HostRunner(DeviceFiles(Path("/"))), user=me, logs=tmp_path / "logs",
                   credentials_uri="http://localhost:1/2016-11-01/credentialprovider/", chown=False,
                   stop_grace_s=HANG_GUARD_S)  # a script that obeys SIGTERM exits long before SIGKILL


def test_artifacts_and_work_folder_follow_the_nucleus_layout_and_modes(nucleus, tmp_path):
    thing = component()
    nucleus.prepare(thing)

    root = tmp_path / "gg"
    artifact = root / "packages/artifacts/com.example.Thing/1.0.0/thing.zip"
    unpacked = root / "packages/artifacts-unarchived/com.example.Thing/1.0.0/thing"
    assert artifact.read_bytes() == thing.artifacts[URI]
    assert (unpacked / "pkg" / "mod.py").read_text() == "X = 1\n"
    assert stat.S_IMODE(artifact.stat().st_mode) == 0o440  # Read: OWNER -> user and group read
    assert stat.S_IMODE((unpacked / "pkg" / "mod.py").stat().st_mode) == 0o440
    assert stat.S_IMODE((unpacked / "pkg").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "work/com.example.Thing").stat().st_mode) == 0o700
    nucleus.prepare(thing)  # a re-deploy replaces the read-only files


def test_recipe_variables_are_interpolated_and_unknown_ones_left_alone(nucleus, tmp_path):
    text = nucleus.interpolate(component(), "{artifacts:path}|{artifacts:decompressedPath}|{work:path}|"
                                            "{iot:thingName}|{kernel:rootPath}|{configuration:/Environment/GREETING}|"
                                            "{configuration:/list}|{configuration:/missing}|{nope:x}")

    root = tmp_path / "gg"
    assert text.split("|") == [f"{root}/packages/artifacts/com.example.Thing/1.0.0",
                               f"{root}/packages/artifacts-unarchived/com.example.Thing/1.0.0",
                               f"{root}/work/com.example.Thing", "deeplens-Cam", str(root), "hello", "[1,2]",
                               "{configuration:/missing}", "{nope:x}"]


def test_environment_carries_identity_ipc_and_token_exchange_credentials(nucleus):
    env = nucleus.environment(component())
    without_tes = nucleus.environment(component(dependencies=()))

    assert (env["AWS_IOT_THING_NAME"], env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == \
        ("deeplens-Cam", "eu-west-1", "eu-west-1")
    assert env["SVCUID"] == env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    assert nucleus.environment(component())["SVCUID"] == env["SVCUID"]  # one id per component
    assert env["SVCUID"] in nucleus.issued_tokens
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://localhost:")
    assert "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT" in env
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in without_tes


def test_install_then_run_in_the_work_folder_with_the_component_environment(nucleus, tmp_path):
    thing = component(install="echo installed > marker", run="pwd > where; env > env.tmp; mv env.tmp env.txt; sleep 30")

    running = nucleus.run(thing)
    work = tmp_path / "gg/work/com.example.Thing"
    assert wait_for((work / "env.txt").exists)
    code, _ = nucleus.stop(running)

    assert (work / "marker").read_text() == "installed\n"
    assert (work / "where").read_text().strip() == str(work)
    assert "AWS_IOT_THING_NAME=deeplens-Cam" in (work / "env.txt").read_text()
    assert code == -signal.SIGTERM  # the script ended on the nucleus' SIGTERM, not on a SIGKILL


def test_install_failing_or_outliving_its_timeout_is_an_error(nucleus):
    with pytest.raises(NucleusError, match="exited with 3"):
        nucleus.run(component(install="exit 3"))
    with pytest.raises(NucleusError, match="timed out after 1 s"):
        nucleus.run(component(install="sleep 30", timeout=1))


def test_stop_is_sigterm_then_sigkill_after_the_grace_period(nucleus, tmp_path):
    ready = tmp_path / "traps-set"  # each script says when its TERM trap is in place
    polite = nucleus.run(component(run=f"trap 'exit 0' TERM; touch {ready}.polite; while :; do sleep 0.05; done"))
    stubborn = nucleus.run(component(run=f"trap '' TERM; touch {ready}.stubborn; while :; do sleep 0.05; done"))
    assert wait_for(lambda: Path(f"{ready}.polite").exists() and Path(f"{ready}.stubborn").exists())

    assert nucleus.stop(polite)[0] == 0
    nucleus.stop_grace_s = 0.5
    code, seconds = nucleus.stop(stubborn)
    assert code == -9 and seconds >= 0.5


def test_artifacts_are_fetched_from_their_s3_uris():
    recipe = component().recipe
    seen = []

    artifacts = fetch_artifacts(recipe, lambda bucket, key: seen.append((bucket, key)) or b"bytes")

    assert artifacts == {URI: b"bytes"} and seen == [("bucket", "com.example.Thing/1.0.0/thing.zip")]
    assert json.dumps(recipe)  # plain data


def test_public_components_are_recognised_by_their_aws_greengrass_prefix():
    from deeplens_cli.simulator.nucleus import is_public_component

    assert is_public_component("aws.greengrass.LogManager") and is_public_component("aws.greengrass.Nucleus")
    assert not is_public_component("com.deeplens.FaceCrops") and not is_public_component("aws.greengrassish.X")


def test_an_artifact_that_changed_since_the_version_was_created_is_refused():
    import base64
    import hashlib

    from deeplens_cli.simulator.nucleus import verify_artifacts

    thing = component()
    recipe = json.loads(json.dumps(thing.recipe))
    artifact = recipe["Manifests"][0]["Artifacts"][0]
    artifact["Digest"] = base64.b64encode(hashlib.sha256(thing.artifacts[URI]).digest()).decode()
    verify_artifacts(recipe, thing.artifacts)  # the recorded bytes pass
    with pytest.raises(NucleusError, match="ARTIFACT_CHECKSUM_MISMATCH"):
        verify_artifacts(recipe, {URI: thing.artifacts[URI] + b"tampered"})
