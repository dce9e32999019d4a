"""The classic flow end to end through the real CLI path: `--endpoint-url` to a moto server, HTTP and all.

moto's server differs from its in-process mock in ways the CLI must survive: `$reset` of Greengrass deployments
has no route (an HTML 404), and deployments stay InProgress forever (there is no device).
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("shared_botocore_models")  # one botocore model loader per module


BUCKET = "deeplens-server-face-crops"


def test_register_deploy_redeploy_status_destroy(moto_server, run_cli, recorded_aws, tmp_path):
    env = {"DEEPLENS_BUCKET": BUCKET}

    def cli(*args):
        return run_cli("--endpoint-url", moto_server, *args, env=env)

    for args in (("register-roles",),
                 ("register-device", "--name", "Cam", "--greengrass", "v1", "--out", str(tmp_path / "bundle")),
                 ("deploy", "--device", "Cam", "--no-wait")):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
    assert list((tmp_path / "bundle" / "certs").glob("*.private.key"))

    recorded_aws.clear()
    again = cli("--output", "json", "deploy", "--device", "Cam", "--no-wait")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["changed"] is False
    assert recorded_aws.mutating == []

    listed = json.loads(cli("--output", "json", "devices").stdout)["devices"]
    assert [(d["name"], d["target"], d["status"]["last_deployment_status"]) for d in listed] == [
        ("Cam", "v1", "InProgress")
    ]

    status = cli("--output", "json", "status")
    assert status.exit_code == 1  # the emulator never reports Success
    assert any("InProgress" in problem for problem in json.loads(status.stdout)["problems"])

    destroyed = cli("destroy", "--device", "Cam", "--yes")
    assert destroyed.exit_code == 0, destroyed.stderr
    assert json.loads(cli("--output", "json", "devices").stdout)["devices"] == []
