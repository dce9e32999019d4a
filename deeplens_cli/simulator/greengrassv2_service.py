"""An in-process Greengrass V2 control plane: the REST operations deeplens-cli calls, in memory.

moto has no Greengrass V2 (its V1 backend answers greengrassv2 calls with 404), so this serves those operations
on 127.0.0.1 and a free port, reached through `AWS_ENDPOINT_URL_GREENGRASSV2` while IAM, IoT and S3 go to moto.
`deeplens-cli demo --greengrass v2` runs on it, and so do the tests and the device lab. It is checked against
botocore's `greengrassv2` service model both ways: routes come from each operation's `http` trait, every
request's parameters (URI, query string, body) are validated against the operation's input shape and every
answer against its output shape (`ModelCheck`), so a handler that drifts from the real API fails loudly
(HTTP 500, `InternalServerException`) instead of teaching the CLI a shape AWS never sends.

It answers like the real service where it matters to the CLI:

* CreateComponentVersion reads each artifact from S3, records its SHA-256 (base64) as the recipe's `Digest`,
  and answers REQUESTED; DescribeComponent answers INITIATED `describe_polls_until_deployable` times, then
  DEPLOYABLE (or FAILED when an artifact is unreadable). Reusing a name+version is a ConflictException;
  a repeated clientToken gets the first answer again (HttpFront._idempotent), as AWS documents.
* A deployment replaces the previous one for its target; each connected core in the target gets an effective
  deployment that moves QUEUED -> IN_PROGRESS -> a final status on later ListEffectiveDeployments calls. A
  healthy core downloads the artifact and checks it against the recorded digest, exactly where a real nucleus
  fails with ARTIFACT_CHECKSUM_MISMATCH when an artifact key was overwritten. A core with behaviour
  "external" is a real (simulated) nucleus elsewhere: it takes its queued deployments with
  `take_deployments` and reports with `report_deployment` / `report_component`, as a device does over IoT.
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
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deeplens_cli.simulator.greengrassv2_core_devices import CoreDeviceRecord, check_bundle, page_of
from deeplens_cli.simulator.greengrassv2_http import (  # noqa: F401 - ApiError, ModelCheck: public here too
    ApiError,
    HttpFront,
    ModelCheck,
    ModelMismatch,
    not_found,
)

ACCOUNT = "123456789012"
FINAL_OK = ("COMPLETED", "SUCCEEDED")
FINAL = ("COMPLETED", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED")


class FakeGreengrassV2(HttpFront):
    """State and behaviour; `serve()` puts it on HTTP. `s3` and `iot` are boto3 clients on the emulated account."""

    def __init__(self, s3: Any, iot: Any, region: str = "us-east-1", account: str = ACCOUNT) -> None:
        self.s3, self.iot, self.region, self.account = s3, iot, region, account
        self.lock = threading.RLock()
        self.components: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.cores: dict[str, CoreDeviceRecord] = {}
        self.effective: dict[str, dict[str, dict[str, Any]]] = {}  # thing -> deployment id -> record
        self.calls: list[str] = []  # operation names, in order
        self.denied: set[str] = set()  # operations answered with AccessDeniedException (403)
        self.describe_polls_until_deployable = 0  # DescribeComponent calls that still see INITIATED
        self.model = ModelCheck()
        self.mismatches: list[str] = []  # requests or answers the service model refused (answered with 500)
        self.answered: dict[tuple[str, str], Any] = {}  # clientToken answers replayed (HttpFront._idempotent)
        self._server: ThreadingHTTPServer | None = None

    # -- test API -------------------------------------------------------------------------------------------

    def connect_core(self, thing: str, bundle: str | Path | None = None, **options: Any) -> CoreDeviceRecord:
        """The nucleus' first connection. With `bundle`, check it the way the device would fail to connect."""
        if bundle is not None:
            check_bundle(self.iot, self.region, thing, Path(bundle))
        with self.lock:
            core = CoreDeviceRecord(thing=thing, **options)
            self.cores[thing] = core
            for deployment in self.deployments.values():  # deployments are continuous: it gets the latest one
                if deployment["isLatestForTarget"] and thing in self._things_of(deployment["targetArn"]):
                    self._queue(thing, deployment)
            return core

    # -- what a device reports (behaviour "external": the simulated nucleus) ------------------------------------

    def take_deployments(self, thing: str) -> list[tuple[str, dict[str, Any]]]:
        """The core's queued deployments, now IN_PROGRESS: (deployment id, components) as the IoT job gives them."""
        with self.lock:
            taken = []
            for record in self.effective.get(thing, {}).values():
                if record["coreDeviceExecutionStatus"] == "QUEUED":
                    record["coreDeviceExecutionStatus"] = "IN_PROGRESS"
                    record["modifiedTimestamp"] = time.time()
                    taken.append((record["deploymentId"], dict(self.deployments[record["deploymentId"]]["components"])))
            return taken

    def component_recipe(self, name: str, version: str) -> dict[str, Any]:
        """The recipe as the service stored it (with artifact digests): what the nucleus resolves and downloads."""
        with self.lock:
            record = self.components.get((name, version))
            if record is None:
                raise not_found("COMPONENT_VERSION", self._component_arn(name, version))
            return json.loads(json.dumps(record["recipe"]))

    def report_deployment(self, thing: str, deployment_id: str, status: str, reason: str = "",
                          failure: dict[str, Any] | None = None) -> None:
        """The device's report of a deployment (the nucleus updates its IoT job execution)."""
        with self.lock:
            record = self.effective[thing][deployment_id]
            if failure is not None:
                self._fail(record, failure, status=status)
            else:
                record.update(coreDeviceExecutionStatus=status, reason=reason or status)
            record["modifiedTimestamp"] = time.time()
            self._core(thing).last_status = time.time()

    def report_component(self, thing: str, name: str, version: str, state: str, details: str = "",
                         deployment_id: str = "") -> None:
        """The device's component status (the nucleus' fleet status update)."""
        with self.lock:
            now = time.time()
            self._core(thing).installed[name] = {
                "componentName": name, "componentVersion": version, "lifecycleState": state, "isRoot": True,
                "lastStatusChangeTimestamp": now, "lastReportedTimestamp": now,
                "lastInstallationSource": deployment_id, "lifecycleStatusCodes": []}
            if details:  # the model allows no empty details (min length 1)
                self._core(thing).installed[name]["lifecycleStateDetails"] = details

    def operations(self, prefix: str = "") -> list[str]:
        return [c for c in self.calls if c.startswith(prefix)]

    # -- bundle check (what the device would need to connect) -------------------------------------------------

    # -- components -------------------------------------------------------------------------------------------

    def _component_arn(self, name: str, version: str | None = None) -> str:
        arn = f"arn:aws:greengrass:{self.region}:{self.account}:components:{name}"
        return f"{arn}:versions:{version}" if version else arn

    def _parse_arn(self, arn: str) -> tuple[str, str | None]:
        match = re.match(r"^arn:aws:greengrass:[^:]+:(?:\d+|aws):components:([^:]+)(?::versions:(.+))?$", arn)
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
        return {"recipeOutputFormat": "JSON", "tags": record["tags"],
                "recipe": base64.b64encode(json.dumps(record["recipe"]).encode()).decode()}

    def delete_component(self, arn: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        name, version, _ = self._component(arn)
        del self.components[(name, version)]
        return {}

    # -- deployments ------------------------------------------------------------------------------------------

    def _things_of(self, target_arn: str) -> list[str]:
        if ":thinggroup/" in target_arn:
            group = target_arn.rsplit("/", 1)[-1]
            pages = self.iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=group)
            return [thing for page in pages for thing in page["things"]]  # all pages: moto's hold 100 things
        return [target_arn.rsplit("/", 1)[-1]]

    def create_deployment(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("targetArn")
        if not target or not re.match(r"^arn:aws:iot:[^:]+:\d+:(thing|thinggroup)/.+$", target):
            raise ApiError(400, "ValidationException", f"invalid targetArn {target}")
        for name, spec in (body.get("components") or {}).items():
            if not name.startswith("aws.greengrass.") and (name, spec["componentVersion"]) not in self.components:
                raise ApiError(400, "ValidationException",
                               f"component {name} {spec['componentVersion']} does not exist")
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
        page, token = page_of(found, query, limit=100)
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

    def _core(self, thing: str) -> CoreDeviceRecord:
        if thing not in self.cores:
            raise not_found("CORE_DEVICE", thing)
        return self.cores[thing]

    def get_core_device(self, thing: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        core = self._core(thing)
        return {"coreDeviceThingName": thing, "coreVersion": core.nucleus_version, "platform": "linux",
                "architecture": core.architecture, "runtime": core.runtime, "status": core.status,
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
        page, token = page_of(things, query, limit=100)
        answer: dict[str, Any] = {"coreDevices": [
            {"coreDeviceThingName": t, "status": self.cores[t].status,
             "lastStatusUpdateTimestamp": self.cores[t].last_status, "platform": "linux", "architecture": "aarch64",
             "runtime": self.cores[t].runtime} for t in page]}
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

    def _advance(self, core: CoreDeviceRecord, record: dict[str, Any]) -> None:
        """One more look at an effective deployment: the simulated core makes progress."""
        if record["coreDeviceExecutionStatus"] in FINAL or core.behaviour in ("offline", "external"):
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
            self._fail(record, {"reason": "REJECTED: the deployment document is invalid",
                                "errorStack": ["DEPLOYMENT_REJECTED"], "errorTypes": ["REQUEST_ERROR"]},
                       status="REJECTED")
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
                        "isRoot": True, "lastStatusChangeTimestamp": time.time(), "lastReportedTimestamp": time.time(),
                        "lastInstallationSource": deployment["deploymentId"], "lifecycleStatusCodes": []}
                    if core.component_state != "RUNNING":  # the model allows no empty details (min length 1)
                        core.installed[name]["lifecycleStateDetails"] = "Run script exited 1"
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


GreengrassV2ControlPlane = FakeGreengrassV2  # the product's name for it (the tests' older name stays)
