"""AWS IoT fleet provisioning where moto has none: provisioning templates next to moto's IoT, and RegisterThing's
decision as AWS documents it.

moto 5 implements IoT things, certificates and policies, Lambda and IAM, but not the provisioning-template
operations. `templates` (fixture) answers those six operations for every client the CLI builds (and for
`ProvisioningTemplates.client()`), everything else still goes to moto:

* requests: botocore validates each one against the IoT service model before our handler sees it (the handler
  runs on `before-call`, after parameter validation, as botocore's Stubber does);
* responses: each answer is validated against the operation's output shape (`botocore.validate`), so a field
  the real service would not send fails the test;
* as IoT does, a template's `preProvisioningHook` must name a Lambda function that exists.

`register_thing` is what IoT does on a device's RegisterThing (AWS IoT Developer Guide, "Pre-provisioning
hooks" and "Provisioning devices that don't have device certificates using fleet provisioning"): the template must
exist and be enabled; with a hook, IoT may invoke the function only if its resource policy lets
iot.amazonaws.com do so for this template, the function's deployed code runs with the documented event, and
the device is provisioned only on `allowProvisioning: true`. The deployed code is the zip whose CodeSha256 Lambda
reports: the test checks that against claim_guard.hook_package() and runs that file. On success the thing is
created as the template says (`deeplens-<DeviceName>`), so a second attempt meets an existing thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest

OPERATIONS = ("CreateProvisioningTemplate", "DescribeProvisioningTemplate", "UpdateProvisioningTemplate",
              "CreateProvisioningTemplateVersion", "DeleteProvisioningTemplate", "ListProvisioningTemplates")


@dataclass
class Template:
    name: str
    arn: str
    body: str
    role_arn: str
    enabled: bool
    description: str
    hook: dict[str, str] | None
    versions: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class ProvisioningTemplates:
    """The templates of the emulated account; `calls` lists every operation answered, in order."""

    region: str = "us-east-1"
    templates: dict[str, Template] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _pending: list[dict[str, Any]] = field(default_factory=list)

    def install(self, events: Any) -> None:
        for operation in OPERATIONS:
            events.register(f"before-parameter-build.iot.{operation}", self._remember)
            events.register_last(f"before-call.iot.{operation}", self._answer)

    def client(self) -> Any:
        import boto3

        client = boto3.client("iot", region_name=self.region)
        self.install(client.meta.events)
        return client

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self._pending.append(dict(params))

    def _answer(self, model: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.validate import validate_parameters

        params = self._pending.pop()
        self.calls.append((model.name, params))
        try:
            response = getattr(self, "_" + model.name)(params)
        except _Error as error:
            return AWSResponse("", error.status, {}, None), {
                "Error": {"Code": error.code, "Message": error.message},
                "ResponseMetadata": {"HTTPStatusCode": error.status}}
        if model.output_shape is not None:
            validate_parameters(response, model.output_shape)
        return AWSResponse("", 200, {}, None), {**response, "ResponseMetadata": {"HTTPStatusCode": 200}}

    # -- the operations --------------------------------------------------------------------------------------

    def _found(self, name: str) -> Template:
        if name not in self.templates:
            raise _Error("ResourceNotFoundException", f"The provisioning template {name} does not exist", 404)
        return self.templates[name]

    def _check_hook(self, hook: dict[str, str] | None) -> None:
        import boto3

        if hook is None:
            return
        name = hook["targetArn"].rsplit(":", 1)[-1]
        try:
            boto3.client("lambda", region_name=self.region).get_function(FunctionName=name)
        except Exception:  # noqa: BLE001 - any failure: IoT refuses a hook it cannot find
            raise _Error("InvalidRequestException", f"pre-provisioning hook {hook['targetArn']} not found",
                         400) from None

    def _CreateProvisioningTemplate(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["templateName"]
        if name in self.templates:
            raise _Error("ResourceAlreadyExistsException", f"{name} exists", 409)
        json.loads(params["templateBody"])  # IoT refuses a body that is not JSON
        self._check_hook(params.get("preProvisioningHook"))
        arn = f"arn:aws:iot:{self.region}:123456789012:provisioningtemplate/{name}"
        self.templates[name] = Template(name, arn, params["templateBody"], params["provisioningRoleArn"],
                                        bool(params.get("enabled")), params.get("description", ""),
                                        params.get("preProvisioningHook"), [params["templateBody"]])
        return {"templateArn": arn, "templateName": name, "defaultVersionId": 1}

    def _DescribeProvisioningTemplate(self, params: dict[str, Any]) -> dict[str, Any]:
        template = self._found(params["templateName"])
        answer = {"templateArn": template.arn, "templateName": template.name, "description": template.description,
                  "creationDate": template.created, "lastModifiedDate": template.created,
                  "defaultVersionId": len(template.versions), "templateBody": template.body,
                  "enabled": template.enabled, "provisioningRoleArn": template.role_arn, "type": "FLEET_PROVISIONING"}
        if template.hook is not None:
            answer["preProvisioningHook"] = dict(template.hook)
        return answer

    def _UpdateProvisioningTemplate(self, params: dict[str, Any]) -> dict[str, Any]:
        template = self._found(params["templateName"])
        if "preProvisioningHook" in params:
            self._check_hook(params["preProvisioningHook"])
            template.hook = params["preProvisioningHook"]
        if params.get("removePreProvisioningHook"):
            template.hook = None
        if "enabled" in params:
            template.enabled = params["enabled"]
        return {}

    def _CreateProvisioningTemplateVersion(self, params: dict[str, Any]) -> dict[str, Any]:
        template = self._found(params["templateName"])
        if len(template.versions) >= 5:
            raise _Error("VersionsLimitExceededException", "a template has at most 5 versions", 409)
        template.versions.append(params["templateBody"])
        if params.get("setAsDefault"):
            template.body = params["templateBody"]
        return {"templateArn": template.arn, "templateName": template.name, "versionId": len(template.versions),
                "isDefaultVersion": bool(params.get("setAsDefault"))}

    def _DeleteProvisioningTemplate(self, params: dict[str, Any]) -> dict[str, Any]:
        self._found(params["templateName"])
        del self.templates[params["templateName"]]
        return {}

    def _ListProvisioningTemplates(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"templates": [{"templateArn": t.arn, "templateName": t.name, "description": t.description,
                               "creationDate": t.created, "lastModifiedDate": t.created, "enabled": t.enabled,
                               "type": "FLEET_PROVISIONING"} for t in self.templates.values()]}

    # -- RegisterThing ---------------------------------------------------------------------------------------

    def register_thing(self, template_name: str, parameters: dict[str, Any]) -> bool:
        """What IoT does with a claim holder's RegisterThing: True when it provisions (and then creates the
        thing as the template names it)."""
        import boto3

        template = self.templates.get(template_name)
        if template is None or not template.enabled:
            return False
        if template.hook is not None and not self._hook_allows(template, parameters):
            return False
        body = json.loads(template.body)
        pieces = body["Resources"]["thing"]["Properties"]["ThingName"]["Fn::Join"][1]
        thing = "".join(p if isinstance(p, str) else str(parameters.get(p["Ref"], "")) for p in pieces)
        iot = boto3.client("iot", region_name=self.region)
        try:
            iot.describe_thing(thingName=thing)
        except iot.exceptions.ResourceNotFoundException:
            iot.create_thing(thingName=thing)
        return True

    def _hook_allows(self, template: Template, parameters: dict[str, Any]) -> bool:
        """The deployed function's answer: its code is the zip whose CodeSha256 Lambda reports (checked against
        claim_guard.hook_package(), whose claim_hook.py is then run), with the function's own environment."""
        import io
        import os
        import sys
        import types
        import zipfile

        import boto3

        lam = boto3.client("lambda", region_name=self.region)
        target = template.hook["targetArn"] if template.hook else ""
        try:
            function = lam.get_function(FunctionName=target)
            policy = json.loads(lam.get_policy(FunctionName=target)["Policy"])
        except Exception:  # noqa: BLE001 - no function or no policy: IoT cannot invoke it, provisioning is denied
            return False
        if not any(_lets_iot_invoke(statement, template.arn) for statement in policy.get("Statement", [])):
            return False
        from deeplens_cli.targets.greengrass_v2.claim_guard import hook_package

        built = hook_package()
        if function["Configuration"]["CodeSha256"] != built.code_sha256_b64:
            return False
        handler_module, _, handler_name = function["Configuration"]["Handler"].rpartition(".")
        source = zipfile.ZipFile(io.BytesIO(built.zip_bytes)).read(f"{handler_module}.py")
        module = types.ModuleType("deployed_" + handler_module)
        sys.modules[module.__name__] = module  # as Lambda imports it (dataclasses look their module up)
        try:
            exec(compile(source, f"{handler_module}.py", "exec"), module.__dict__)  # noqa: S102 - the deployed code
        finally:
            del sys.modules[module.__name__]
        variables = function["Configuration"].get("Environment", {}).get("Variables", {})
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            event = {"claimCertificateId": "c" * 64, "certificateId": "d" * 64,
                     "certificatePem": "-----BEGIN CERTIFICATE-----", "templateArn": template.arn,
                     "clientId": "221a6d10-9c7f-42f1-9153-e52e6fc869c1", "parameters": parameters}
            answer = getattr(module, handler_name)(event, None)
        except Exception:  # noqa: BLE001 - a failing function: IoT answers ACCESS_DENIED
            return False
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        return answer.get("allowProvisioning") is True


def _lets_iot_invoke(statement: dict[str, Any], template_arn: str) -> bool:
    principal = statement.get("Principal") or {}
    condition = statement.get("Condition") or {}
    source = (condition.get("ArnLike") or condition.get("ArnEquals") or {}).get("AWS:SourceArn")
    return (statement.get("Effect") == "Allow" and statement.get("Action") == "lambda:InvokeFunction"
            and (principal.get("Service") if isinstance(principal, dict) else principal) == "iot.amazonaws.com"
            and source in (None, template_arn))


class _Error(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@pytest.fixture
def templates(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProvisioningTemplates]:
    """Provisioning templates on every AwsContext the CLI builds (combine with `aws` for the rest of IoT)."""
    import deeplens_cli.aws as aws_module

    store = ProvisioningTemplates()
    previous = aws_module.make_context

    def make_context(*args: Any, **kwargs: Any) -> Any:
        ctx = previous(*args, **kwargs)
        store.install(ctx.session.events)
        return ctx

    monkeypatch.setattr(aws_module, "make_context", make_context)
    yield store
