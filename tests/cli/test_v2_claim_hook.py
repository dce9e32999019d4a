"""The pre-provisioning hook's decision as plain code (claim_hook.decide and parse_allow_list): no AWS at all.

IoT sends the event of the AWS IoT Developer Guide ("Pre-provisioning hooks") and provisions only on
`allowProvisioning: true`; everything but a listed, valid, not yet registered name is refused.
"""

from __future__ import annotations

import json

import pytest

from deeplens_cli.settings.device_names import DEVICE_NAME
from deeplens_cli.targets.greengrass_v2.claim_hook import (
    DEVICE_NAME as HOOK_DEVICE_NAME,
)
from deeplens_cli.targets.greengrass_v2.claim_hook import (
    MAX_ALLOW_LIST_BYTES,
    decide,
    parse_allow_list,
)

TEMPLATE = "deeplens-Stores-provisioning"
ARN = f"arn:aws:iot:us-east-1:123456789012:provisioningtemplate/{TEMPLATE}"
EXISTING = {"deeplens-Cam1"}


def event(name: object = "Cam2", template_arn: object = ARN) -> dict[str, object]:
    return {"claimCertificateId": "c" * 64, "certificateId": "d" * 64, "certificatePem": "-----BEGIN",
            "templateArn": template_arn, "clientId": "221a6d10-9c7f-42f1-9153-e52e6fc869c1",
            "parameters": {"DeviceName": name, "AWS::IoT::Certificate::Id": "d" * 64}}


def ask(payload: object, allowed: frozenset[str] = frozenset({"Cam1", "Cam2"})) -> dict[str, object]:
    return decide(payload, TEMPLATE, lambda: allowed, lambda thing: thing in EXISTING).response()


def test_a_listed_name_that_is_not_registered_yet_is_allowed():
    assert ask(event("Cam2")) == {"allowProvisioning": True}


def test_the_name_of_an_existing_camera_is_refused_even_when_listed():
    decision = decide(event("Cam1"), TEMPLATE, lambda: frozenset({"Cam1"}), lambda thing: thing in EXISTING)
    assert decision.response() == {"allowProvisioning": False}
    assert "already exists" in decision.reason


def test_a_name_that_is_not_on_the_allow_list_is_refused():
    decision = decide(event("Cam3"), TEMPLATE, lambda: frozenset({"Cam2"}), lambda thing: False)
    assert not decision.allow and "not on the allow-list" in decision.reason


def test_an_empty_allow_list_refuses_everyone():
    assert ask(event("Cam2"), allowed=frozenset()) == {"allowProvisioning": False}


@pytest.mark.parametrize("payload", [
    None, [], "Cam2", {}, {"parameters": {"DeviceName": "Cam2"}},  # no templateArn
    event(template_arn="arn:aws:iot:us-east-1:123456789012:provisioningtemplate/other"),
    event(template_arn=7), {**event(), "parameters": None}, {**event(), "parameters": ["Cam2"]},
    event(None), event(2), event(["Cam2"]), event(""), event("Cam 2"), event("Cam2\n"), event("-Cam2"),
    event("C" * 101), event("Cam2\x1b]0;x\x07"),
], ids=lambda value: repr(value)[:40])
def test_a_malformed_event_is_refused(payload):
    assert ask(payload) == {"allowProvisioning": False}


def test_a_failure_while_checking_refuses():
    def broken() -> frozenset[str]:
        raise OSError("S3 unreachable")

    def unknown(thing: str) -> bool:
        raise RuntimeError("throttled")

    assert decide(event(), TEMPLATE, broken, lambda thing: False).response() == {"allowProvisioning": False}
    assert decide(event(), TEMPLATE, lambda: frozenset({"Cam2"}), unknown).response() == {"allowProvisioning": False}


def test_the_reason_shows_a_hostile_name_escaped_and_bounded():
    decision = decide(event("\x1b[2J" + "x" * 5000), TEMPLATE, lambda: frozenset(), lambda thing: False)
    assert "\x1b" not in decision.reason and len(decision.reason) < 300


def test_the_hook_follows_the_device_name_rule_of_the_cli():
    assert HOOK_DEVICE_NAME.pattern == DEVICE_NAME.pattern


def test_the_allow_list_reads_the_document_the_tool_writes():
    data = json.dumps({"fleet": "Stores", "names": ["Cam2", "Cam3"]}).encode()
    assert parse_allow_list(data, "Stores") == frozenset({"Cam2", "Cam3"})


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'{"fleet": "Other", "names": ["Cam2"]}', b'{"fleet": "Stores", "names": "Cam2"}',
    b'{"fleet": "Stores", "names": ["Cam 2"]}', b'{"fleet": "Stores", "names": [NaN]}', b'{"fleet": "Stores"}',
    b'{"fleet": "Stores", "names": [1]}', b"\xff\xfe",
    json.dumps({"fleet": "Stores", "names": ["C" * 90] * (MAX_ALLOW_LIST_BYTES // 90)}).encode(),
], ids=lambda value: repr(value)[:30])
def test_an_allow_list_of_any_other_shape_is_refused(data):
    with pytest.raises(ValueError):
        parse_allow_list(data, "Stores")
