"""A small Greengrass V2 endpoint for tests: the control plane in memory, plus simulated core devices.

moto has no Greengrass V2 (its V1 backend answers greengrassv2 calls with 404), so this serves the REST
operations deeplens-cli uses on 127.0.0.1 and a free port, reached through `AWS_ENDPOINT_URL_GREENGRASSV2`
while IAM, IoT and S3 go to moto. botocore builds and parses the real HTTP requests, so request shapes are
checked by the client's own parameter validation and by this server's parsing.

It answers like the real service where it matters to the CLI:

* CreateComponentVersion reads each artifact from S3, records its SHA-256 (base64) as the recipe's `Digest`,
  and answers REQUESTED; DescribeComponent answers INITIATED `describe_polls_until_deployable` times, then
  DEPLOYABLE (or FAILED when an artifact is unreadable). Reusing a name+version is a ConflictException.
* A deployment replaces the previous one for its target; each connected core in the target gets an effective
  deployment that moves QUEUED -> IN_PROGRESS -> a final status on later ListEffectiveDeployments calls. A
  healthy core downloads the artifact and checks it against the recorded digest, exactly where a real nucleus
  fails with ARTIFACT_CHECKSUM_MISMATCH when an artifact key was overwritten.
* A core device exists only after `connect_core` (the nucleus' first connection), which can check the device
  bundle against IoT: thing name, active certificate attached to the thing, role alias.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

ACCOUNT = "123456789012"
FINAL_OK = ("COMPLETED", "SUCCEEDED")
FINAL = ("COMPLETED", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def not_found(kind: str, resource: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", f"{kind} {resource} not found",
                    resourceId=resource, resourceType=kind)


@dataclass
class SimulatedCore:
    """A core device as the cloud sees it, and how it reacts to deployments.

    behaviour: "healthy" (downloads artifacts, checks digests, runs the components), "fail" (reports `failure`),
    "reject", "offline" (never picks the deployment up) or "timeout" (the IoT job times out).
    """

    thing: str
    nucleus_version: str = "2.14.3"
    runtime: str = "aws_nucleus_classic"
    behaviour: str = "healthy"
    failure: dict[str, Any] = field(default_factory=lambda: {
        "reason": "COMPONENT_BROKEN: FAILED_ROLLBACK_COMPLETE: com.deeplens.FaceCrops is broken",
        "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"],
        "errorTypes": ["COMPONENT_ERROR"]})
    component_state: str = "RUNNING"  # lifecycle state a healthy core reports for deployed components
    polls_until_done: int = 2  # ListEffectiveDeployments calls that still see the deployment pending
    status: str = "HEALTHY"
    last_status: float = field(default_factory=time.time)
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeGreengrassV2:
    """State and behaviour; `serve()` puts it on HTTP. `s3` and `iot` are boto3 clients on the emulated account."""

    def __init__(self, s3: Any, iot: Any, region: str = "us-east-1", account: str = ACCOUNT) -> None:
        self.s3, self.iot, self.region, self.account = s3, iot, region, account
        self.lock = threading.RLock()
        self.components: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.cores: dict[str, SimulatedCore] = {}
        self.effective: dict[str, dict[str, dict[str, Any]]] = {}  # thing -> deployment id -> record
        self.calls: list[str] = []  # operation names, in order
        self.denied: set[str] = set()  # operations answered with AccessDeniedException (403)
        self.describe_polls_until_deployable = 0  # DescribeComponent calls that still see INITIATED
        self._server: ThreadingHTTPServer | None = None

    # -- test API -------------------------------------------------------------------------------------------

    def connect_core(self, thing: str, bundle: str | Path | None = None, **options: Any) -> SimulatedCore:
        """The nucleus' first connection. With `bundle`, check it the way the device would fail to connect."""
        if bundle is not None:
            self._check_bundle(thing, Path(bundle))
        with self.lock:
            core = SimulatedCore(thing=thing, **options)
            self.cores[thing] = core
            for deployment in self.deployments.values():  # deployments are continuous: it gets the latest one
                if deployment["isLatestForTarget"] and thing in self._things_of(deployment["targetArn"]):
                    self._queue(thing, deployment)
            return core

    def operations(self, prefix: str = "") -> list[str]:
        return [c for c in self.calls if c.startswith(prefix)]

    # -- bundle check (what the device would need to connect) -------------------------------------------------

    def _check_bundle(self, thing: str, bundle: Path) -> None:
        import yaml

        config = yaml.safe_load((bundle / "config.yaml").read_text())
        assert config["system"]["thingName"] == thing, "config.yaml names another thing"
        nucleus = config["services"]["aws.greengrass.Nucleus"]["configuration"]
        assert nucleus["awsRegion"] == self.region
        # moto invents a new endpoint prefix on every DescribeEndpoint call, so check the endpoint kinds
        assert re.fullmatch(rf"[a-z0-9]+-ats\.iot\.{self.region}\.amazonaws\.com", nucleus["iotDataEndpoint"])
        assert re.fullmatch(rf"[a-z0-9]+\.credentials\.iot\.{self.region}\.amazonaws\.com", nucleus["iotCredEndpoint"])
        self.iot.describe_role_alias(roleAlias=nucleus["iotRoleAlias"])  # raises when missing
        certificate = (bundle / "device.pem.crt").read_text()
        principals = self.iot.list_thing_principals(thingName=thing)["principals"]
        active = []
        for principal in principals:
            described = self.iot.describe_certificate(certificateId=principal.rsplit("/", 1)[-1])["certificateDescription"]
            if described["status"] == "ACTIVE":
                active.append(described["certificatePem"])
        assert certificate in active, "the bundle's certificate is not an active certificate of the thing"

    # -- HTTP -------------------------------------------------------------------------------------------------

    def serve(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:  # noqa: N802
                fake._handle(self, "DELETE")

            def do_PUT(self) -> None:  # noqa: N802
                fake._handle(self, "PUT")

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}") if length else {}
        status, payload = 200, {}
        try:
            operation, handler, args = self._route(method, segments)
            self.calls.append(operation)
            if operation in self.denied:
                raise ApiError(403, "AccessDeniedException", f"User: arn:aws:iam::{self.account}:user/ci is not "
                               f"authorized to perform: greengrass:{operation} on resource: *")
            with self.lock:
                payload = handler(*args, query=query, body=body) or {}
        except ApiError as error:
            status, payload = error.status, {"message": error.message, **error.extra}
            request.send_response(status)
            data = json.dumps(payload).encode()
            request.send_header("x-amzn-ErrorType", error.code)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
            return
        data = json.dumps(payload, default=str).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _route(self, method: str, s: list[str]) -> tuple[str, Callable[..., Any], tuple[Any, ...]]:
        if s[:2] != ["greengrass", "v2"]:
            raise ApiError(404, "UnknownOperationException", "unknown operation")
        s = s[2:]
        routes: list[tuple[str, str, str, Callable[..., Any]]] = [
            ("POST", "createComponentVersion", "CreateComponentVersion", self.create_component_version),
            ("GET", "components/*/metadata", "DescribeComponent", self.describe_component),
            ("GET", "components/*/versions", "ListComponentVersions", self.list_component_versions),
            ("GET", "components/*", "GetComponent", self.get_component),
            ("DELETE", "components/*", "DeleteComponent", self.delete_component),
            ("POST", "deployments", "CreateDeployment", self.create_deployment),
            ("GET", "deployments", "ListDeployments", self.list_deployments),
            ("GET", "deployments/*", "GetDeployment", self.get_deployment),
            ("POST", "deployments/*/cancel", "CancelDeployment", self.cancel_deployment),
            ("DELETE", "deployments/*", "DeleteDeployment", self.delete_deployment),
            ("GET", "coreDevices", "ListCoreDevices", self.list_core_devices),
            ("GET", "coreDevices/*", "GetCoreDevice", self.get_core_device),
            ("DELETE", "coreDevices/*", "DeleteCoreDevice", self.delete_core_device),
            ("GET", "coreDevices/*/effectiveDeployments", "ListEffectiveDeployments", self.list_effective_deployments),
            ("GET", "coreDevices/*/installedComponents", "ListInstalledComponents", self.list_installed_components),
        ]
        for verb, pattern, operation, handler in routes:
            expected = pattern.split("/")
            if verb == method and len(expected) == len(s) and all(e in ("*", x) for e, x in zip(expected, s, strict=True)):
                return operation, handler, tuple(x for e, x in zip(expected, s, strict=True) if e == "*")
        raise ApiError(404, "UnknownOperationException", f"unknown operation {method} {'/'.join(s)}")

    # -- components -------------------------------------------------------------------------------------------

    def _component_arn(self, name: str, version: str | None = None) -> str:
        arn = f"arn:aws:greengrass:{self.region}:{self.account}:components:{name}"
        return f"{arn}:versions:{version}" if version else arn

    def _parse_arn(self, arn: str) -> tuple[str, str | None]:
        match = re.match(r"^arn:aws:greengrass:[^:]+:\d+:components:([^:]+)(?::versions:(.+))?$", arn)
        if not match:
            raise ApiError(400, "ValidationException", f"invalid component ARN {arn}")
        return match.group(1), match.group(2)

    def create_component_version(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        recipe = json.loads(base64.b64decode(body["inlineRecipe"]))
        for key in ("RecipeFormatVersion", "ComponentName", "ComponentVersion"):
            if key not in recipe:
                raise ApiError(400, "ValidationException", f"recipe lacks {key}")
        if recipe["RecipeFormatVersion"] != "2020-01-25":
            raise ApiError(400, "ValidationException", "RecipeFormatVersion must be 2020-01-25")
        name, version = recipe["ComponentName"], recipe["ComponentVersion"]
        if not re.match(r"^\d+\.\d+\.\d+", version):
            raise ApiError(400, "ValidationException", f"{version} is not semantic versioning")
        if (name, version) in self.components:
            raise ApiError(409, "ConflictException", f"component {name} version {version} already exists",
                           resourceId=self._component_arn(name, version), resourceType="COMPONENT_VERSION")
        errors = {}
        for manifest in recipe.get("Manifests", []):
            for artifact in manifest.get("Artifacts", []):
                data = self._read_s3(artifact["URI"])
                if data is None:
                    errors[artifact["URI"]] = "could not read the artifact (HeadObject 404 or 403)"
                else:
                    artifact["Digest"] = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    artifact["Algorithm"] = "SHA-256"
        record = {"recipe": recipe, "tags": body.get("tags") or {}, "created": time.time(), "describes": 0,
                  "final": "FAILED" if errors else "DEPLOYABLE", "errors": errors}
        self.components[(name, version)] = record
        return {"arn": self._component_arn(name, version), "componentName": name, "componentVersion": version,
                "creationTimestamp": record["created"], "status": {"componentState": "REQUESTED", "message": "NONE",
                                                                   "errors": {}}}

    def _read_s3(self, uri: str) -> bytes | None:
        bucket, _, key = uri[len("s3://"):].partition("/")
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception:  # noqa: BLE001 - any failure is "cannot read", as the service reports it
            return None

    def _component(self, arn: str) -> tuple[str, str, dict[str, Any]]:
        name, version = self._parse_arn(arn)
        if version is None or (name, version) not in self.components:
            raise not_found("COMPONENT_VERSION", arn)
        return name, version, self.components[(name, version)]

    def _state(self, record: dict[str, Any]) -> str:
        return record["final"] if record["describes"] >= self.describe_polls_until_deployable else "INITIATED"

    def describe_component(self, arn: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        name, version, record = self._component(arn)
        state = self._state(record)
        record["describes"] += 1
        recipe = record["recipe"]
        return {"arn": arn, "componentName": name, "componentVersion": version,
                "creationTimestamp": record["created"], "publisher": recipe.get("ComponentPublisher", ""),
                "description": recipe.get("ComponentDescription", ""),
                "status": {"componentState": state, "message": "NONE" if state != "FAILED" else "artifact error",
                           "errors": record["errors"] if state == "FAILED" else {}},
                "platforms": [{"attributes": m.get("Platform", {})} for m in recipe.get("Manifests", [])],
                "tags": record["tags"]}

    def list_component_versions(self, arn: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        name, _ = self._parse_arn(arn)
        versions = sorted((v for n, v in self.components if n == name),
                          key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v)[:3]), reverse=True)
        if not versions:
            raise not_found("COMPONENT", arn)
        return {"componentVersions": [{"componentName": name, "componentVersion": v,
                                       "arn": self._component_arn(name, v)} for v in versions]}

    def get_component(self, arn: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        _, _, record = self._component(arn)
        return {"recipeOutputFormat": "JSON", "recipe": base64.b64encode(json.dumps(record["recipe"]).encode()).decode(),
                "tags": record["tags"]}

    def delete_component(self, arn: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        name, version, _ = self._component(arn)
        del self.components[(name, version)]
        return {}

    # -- deployments ------------------------------------------------------------------------------------------

    def _things_of(self, target_arn: str) -> list[str]:
        if ":thinggroup/" in target_arn:
            group = target_arn.rsplit("/", 1)[-1]
            return self.iot.list_things_in_thing_group(thingGroupName=group)["things"]
        return [target_arn.rsplit("/", 1)[-1]]

    def create_deployment(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("targetArn")
        if not target or not re.match(r"^arn:aws:iot:[^:]+:\d+:(thing|thinggroup)/.+$", target):
            raise ApiError(400, "ValidationException", f"invalid targetArn {target}")
        for name, spec in (body.get("components") or {}).items():
            if not name.startswith("aws.greengrass.") and (name, spec["componentVersion"]) not in self.components:
                raise ApiError(400, "ValidationException", f"component {name} {spec['componentVersion']} does not exist")
            merge = (spec.get("configurationUpdate") or {}).get("merge")
            if merge is not None:
                json.loads(merge)
        for previous in self.deployments.values():
            if previous["targetArn"] == target and previous["isLatestForTarget"]:
                previous["isLatestForTarget"] = False
                previous["deploymentStatus"] = "INACTIVE" if previous["deploymentStatus"] == "ACTIVE" else \
                    previous["deploymentStatus"]
                for records in self.effective.values():
                    record = records.get(previous["deploymentId"])
                    if record and record["coreDeviceExecutionStatus"] not in FINAL:
                        record["coreDeviceExecutionStatus"] = "CANCELED"
        deployment_id = str(uuid.uuid4())
        deployment = {
            "deploymentId": deployment_id, "targetArn": target, "revisionId": str(len(self.deployments) + 1),
            "deploymentName": body.get("deploymentName") or deployment_id, "deploymentStatus": "ACTIVE",
            "iotJobId": str(uuid.uuid4()), "components": body.get("components") or {},
            "deploymentPolicies": body.get("deploymentPolicies") or {},
            "iotJobConfiguration": body.get("iotJobConfiguration") or {}, "creationTimestamp": time.time(),
            "isLatestForTarget": True, "tags": body.get("tags") or {},
        }
        deployment["iotJobArn"] = f"arn:aws:iot:{self.region}:{self.account}:job/{deployment['iotJobId']}"
        self.deployments[deployment_id] = deployment
        if ":thinggroup/" in target:
            self._create_iot_job(deployment)
        for thing in self._things_of(target):
            if thing in self.cores:
                self._queue(thing, deployment)
        return {"deploymentId": deployment_id, "iotJobId": deployment["iotJobId"], "iotJobArn": deployment["iotJobArn"]}

    def _queue(self, thing: str, deployment: dict[str, Any]) -> None:
        now = time.time()
        self.effective.setdefault(thing, {})[deployment["deploymentId"]] = {
            "deploymentId": deployment["deploymentId"], "deploymentName": deployment["deploymentName"],
            "iotJobId": deployment["iotJobId"], "iotJobArn": deployment["iotJobArn"],
            "targetArn": deployment["targetArn"], "coreDeviceExecutionStatus": "QUEUED",
            "creationTimestamp": now, "modifiedTimestamp": now, "_polls": 0, "_thing": thing}
        self._sync_job_executions()

    # -- the IoT job of a thing-group deployment (in moto: its execution summaries are what a fleet wait reads) --

    def _iot_backend(self) -> Any:
        from moto.iot.models import iot_backends

        return iot_backends[self.account][self.region]

    def _create_iot_job(self, deployment: dict[str, Any]) -> None:
        """The job that rolls the deployment out, created in moto's IoT so ListJobExecutionsForJob answers. moto
        would make an execution for the group ARN itself; executions are per member thing, so it is replaced."""
        group_arn = deployment["targetArn"]
        self.iot.create_job(jobId=deployment["iotJobId"], targets=[group_arn], document="{}",
                            targetSelection="CONTINUOUS")
        self._iot_backend().job_executions.pop((deployment["iotJobId"], group_arn.rsplit("/", 1)[-1]), None)

    def _sync_job_executions(self) -> None:
        """Each member's IoT job execution follows its effective deployment (SUCCEEDED/COMPLETED -> SUCCEEDED)."""
        from moto.iot.models import FakeJobExecution

        backend = self._iot_backend()
        for thing, records in self.effective.items():
            for record in records.values():
                if ":thinggroup/" not in record["targetArn"] or record["iotJobId"] not in backend.jobs:
                    continue
                key = (record["iotJobId"], thing)
                status = {"COMPLETED": "SUCCEEDED"}.get(record["coreDeviceExecutionStatus"],
                                                         record["coreDeviceExecutionStatus"])
                if key not in backend.job_executions:
                    backend.job_executions[key] = FakeJobExecution(
                        record["iotJobId"], f"arn:aws:iot:{self.region}:{self.account}:thing/{thing}")
                backend.job_executions[key].status = status

    def get_deployment(self, deployment_id: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if deployment_id not in self.deployments:
            raise not_found("DEPLOYMENT", deployment_id)
        return dict(self.deployments[deployment_id])

    def list_deployments(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        found = [d for d in self.deployments.values()
                 if (not query.get("targetArn") or d["targetArn"] == query["targetArn"])
                 and (query.get("historyFilter", "LATEST_ONLY") == "ALL" or d["isLatestForTarget"])]
        keys = ("targetArn", "revisionId", "deploymentId", "deploymentName", "creationTimestamp", "deploymentStatus",
                "isLatestForTarget")
        page, token = _page(found, query, limit=100)
        answer: dict[str, Any] = {"deployments": [{k: d[k] for k in keys} for d in page]}
        if token:
            answer["nextToken"] = token
        return answer

    def cancel_deployment(self, deployment_id: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise not_found("DEPLOYMENT", deployment_id)
        deployment["deploymentStatus"] = "CANCELED"
        for records in self.effective.values():
            record = records.get(deployment_id)
            if record and record["coreDeviceExecutionStatus"] not in FINAL:
                record["coreDeviceExecutionStatus"] = "CANCELED"
        self._sync_job_executions()
        return {"message": "canceled"}

    def delete_deployment(self, deployment_id: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise not_found("DEPLOYMENT", deployment_id)
        if deployment["deploymentStatus"] == "ACTIVE":
            raise ApiError(409, "ConflictException", "cancel an active deployment before deleting it",
                           resourceId=deployment_id, resourceType="DEPLOYMENT")
        del self.deployments[deployment_id]
        return {}

    # -- core devices -----------------------------------------------------------------------------------------

    def _core(self, thing: str) -> SimulatedCore:
        if thing not in self.cores:
            raise not_found("CORE_DEVICE", thing)
        return self.cores[thing]

    def get_core_device(self, thing: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        core = self._core(thing)
        return {"coreDeviceThingName": thing, "coreVersion": core.nucleus_version, "platform": "linux",
                "architecture": "aarch64", "runtime": core.runtime, "status": core.status,
                "lastStatusUpdateTimestamp": core.last_status, "tags": {}}

    def list_core_devices(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        """Pages of at most `maxResults` (the model's limit, 100) cores, filterable by thing group and status.

        A bulk read is also where simulated devices move on with their deployments (a real fleet moves on by
        itself, not because someone asked one device): every pending effective deployment advances one step.
        """
        things = sorted(self.cores)
        if query.get("thingGroupArn"):
            members = set(self._things_of(query["thingGroupArn"]))
            things = [t for t in things if t in members]
        for thing in things:
            for record in self.effective.get(thing, {}).values():
                self._advance(self.cores[thing], record)
        self._apply_abort_criteria()
        self._sync_job_executions()
        if query.get("status"):
            things = [t for t in things if self.cores[t].status == query["status"]]
        page, token = _page(things, query, limit=100)
        answer: dict[str, Any] = {"coreDevices": [
            {"coreDeviceThingName": t, "status": self.cores[t].status, "lastStatusUpdateTimestamp": self.cores[t].last_status,
             "platform": "linux", "architecture": "aarch64", "runtime": self.cores[t].runtime} for t in page]}
        if token:
            answer["nextToken"] = token
        return answer

    def delete_core_device(self, thing: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self._core(thing)
        del self.cores[thing]
        self.effective.pop(thing, None)
        return {}

    def list_installed_components(self, thing: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        core = self._core(thing)
        return {"installedComponents": list(core.installed.values())}

    def list_effective_deployments(self, thing: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        core = self._core(thing)
        for record in self.effective.get(thing, {}).values():
            self._advance(core, record)
        self._apply_abort_criteria()
        self._sync_job_executions()
        return {"effectiveDeployments": [{k: v for k, v in r.items() if not k.startswith("_")}
                                         for r in self.effective.get(thing, {}).values()]}

    def _advance(self, core: SimulatedCore, record: dict[str, Any]) -> None:
        """One more look at an effective deployment: the simulated core makes progress."""
        if record["coreDeviceExecutionStatus"] in FINAL or core.behaviour == "offline":
            return
        record["_polls"] += 1
        record["modifiedTimestamp"] = time.time()
        if record["_polls"] < core.polls_until_done:
            record["coreDeviceExecutionStatus"] = "IN_PROGRESS"
            return
        deployment = self.deployments[record["deploymentId"]]
        if core.behaviour == "fail":
            self._fail(record, core.failure)
        elif core.behaviour == "reject":
            self._fail(record, {"reason": "REJECTED: the deployment document is invalid", "errorStack": ["DEPLOYMENT_REJECTED"],
                                "errorTypes": ["REQUEST_ERROR"]}, status="REJECTED")
        elif core.behaviour == "timeout":
            record.update(coreDeviceExecutionStatus="TIMED_OUT", reason="IoT job timed out")
        else:
            problem = self._download_artifacts(deployment)
            if problem:
                self._fail(record, problem)
            else:
                group = ":thinggroup/" in deployment["targetArn"]
                record["coreDeviceExecutionStatus"] = "SUCCEEDED" if group else "COMPLETED"
                record["reason"] = "SUCCESSFUL"
                for name, spec in deployment["components"].items():
                    core.installed[name] = {
                        "componentName": name, "componentVersion": spec["componentVersion"],
                        "lifecycleState": core.component_state if not name.startswith("aws.") else "FINISHED",
                        "lifecycleStateDetails": "" if core.component_state == "RUNNING" else "Run script exited 1",
                        "isRoot": True, "lastStatusChangeTimestamp": time.time(), "lastReportedTimestamp": time.time(),
                        "lastInstallationSource": deployment["deploymentId"], "lifecycleStatusCodes": []}
        core.last_status = time.time()

    def _fail(self, record: dict[str, Any], failure: dict[str, Any], status: str = "FAILED") -> None:
        record.update(coreDeviceExecutionStatus=status, reason=failure["reason"],
                      statusDetails={"errorStack": failure["errorStack"], "errorTypes": failure["errorTypes"]})

    def _download_artifacts(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """What a nucleus does before installing: fetch each artifact and compare it with the recorded digest."""
        for name, spec in deployment["components"].items():
            record = self.components.get((name, spec["componentVersion"]))
            if record is None:
                continue
            for manifest in record["recipe"].get("Manifests", []):
                for artifact in manifest.get("Artifacts", []):
                    data = self._read_s3(artifact["URI"])
                    if data is None:
                        return {"reason": "S3_HEAD_OBJECT_ACCESS_DENIED: FAILED_NO_STATE_CHANGE: Failed to download "
                                          f"artifact {artifact['URI']}",
                                "errorStack": ["DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR", "S3_ERROR",
                                               "S3_ACCESS_DENIED", "S3_HEAD_OBJECT_ACCESS_DENIED"],
                                "errorTypes": ["DEPENDENCY_ERROR", "PERMISSION_ERROR"]}
                    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    if digest != artifact.get("Digest"):
                        return {"reason": "ARTIFACT_CHECKSUM_MISMATCH: FAILED_NO_STATE_CHANGE: Integrity check for "
                                          "downloaded artifact failed. Artifact contents may have changed after "
                                          "component version was created",
                                "errorStack": ["DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR",
                                               "ARTIFACT_CHECKSUM_MISMATCH"],
                                "errorTypes": ["CLOUD_SERVICE_ERROR"]}
        return None

    def _apply_abort_criteria(self) -> None:
        """A thing-group rollout whose failure percentage crosses its abort threshold is canceled."""
        for deployment in self.deployments.values():
            criteria = ((deployment.get("iotJobConfiguration") or {}).get("abortConfig") or {}).get("criteriaList")
            if not criteria or deployment["deploymentStatus"] != "ACTIVE":
                continue
            records = [r.get(deployment["deploymentId"]) for r in self.effective.values()]
            done = [r for r in records if r and r["coreDeviceExecutionStatus"] in FINAL]
            failed = [r for r in done if r["coreDeviceExecutionStatus"] not in FINAL_OK]
            for criterion in criteria:
                if len(done) >= criterion["minNumberOfExecutedThings"] and done and \
                        100.0 * len(failed) / len(done) >= criterion["thresholdPercentage"]:
                    self.cancel_deployment(deployment["deploymentId"], {}, {})
                    break


def _page(items: list[Any], query: dict[str, str], limit: int) -> tuple[list[Any], str | None]:
    """One page as the service pages: `maxResults` (at most `limit`, the model's maximum; the service default is
    the maximum too) from the offset in `nextToken`, and the token of the next page when there is one."""
    size = int(query.get("maxResults") or limit)
    if not 1 <= size <= limit:
        raise ApiError(400, "ValidationException", f"maxResults must be between 1 and {limit}")
    start = int(query.get("nextToken") or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


# ---------------------------------------------------------------------------------------------- fixtures


def prepare_v2_account(aws_clients: Callable[[str], Any], bucket: str = "deeplens-test-face-crops",
                       role: str = "DeepLensGreengrassV2TokenExchangeRole",
                       alias: str = "DeepLensGreengrassV2TokenExchangeRoleAlias") -> None:
    """What `register-roles` leaves behind for V2 (the bucket, the token exchange role and its alias), made
    directly so target tests do not depend on roles.py."""
    aws_clients("s3").create_bucket(Bucket=bucket)
    arn = aws_clients("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "credentials.iot.amazonaws.com"}}]}))["Role"]["Arn"]
    aws_clients("iot").create_role_alias(roleAlias=alias, roleArn=arn, credentialDurationSeconds=3600)


@dataclass
class EmulatedAccount:
    """moto's in-process account (IAM, IoT, S3, STS) plus the fake Greengrass V2 endpoint next to it."""

    gg: FakeGreengrassV2
    gg_url: str  # its endpoint (AWS_ENDPOINT_URL_GREENGRASSV2)
    region: str = "us-east-1"
    sleeps: list[float] = field(default_factory=list)  # every delay a context asked for (nothing really waits)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region)

    def context(self, settings: Any) -> Any:
        from deeplens_cli.aws import make_context

        return make_context(settings, sleep=self.sleeps.append)


def share_botocore_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every boto3 Session parses the service models again (IoT's alone takes ~0.1 s); the CLI makes a new session
    per command. Tests share the one data loader deeplens_cli.aws keeps, also for clients they make themselves."""
    import botocore.session

    from deeplens_cli.aws import shared_loader

    monkeypatch.setattr(botocore.session, "create_loader", shared_loader)


@pytest.fixture
def v2_account(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedAccount]:
    """moto (without AWS managed policies: V2 needs none, and loading them costs a second per test) and the fake
    Greengrass V2 endpoint, with the bucket, token exchange role and role alias in place.

    Import it into a test module (`from fake_greengrassv2 import v2_account`) to use it there."""
    from moto import mock_aws

    share_botocore_loader(monkeypatch)
    with mock_aws():
        import boto3

        fake = FakeGreengrassV2(s3=boto3.client("s3", region_name="us-east-1"),
                                iot=boto3.client("iot", region_name="us-east-1"))
        url = fake.serve()
        monkeypatch.setenv("AWS_ENDPOINT_URL_GREENGRASSV2", url)
        account = EmulatedAccount(gg=fake, gg_url=url)
        prepare_v2_account(account.client)
        try:
            yield account
        finally:
            fake.close()
