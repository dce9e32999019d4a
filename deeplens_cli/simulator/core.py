"""The simulated DeepLens: a Greengrass V1 core that takes its deployments from the embedded emulator.

A real core learns of a deployment, downloads the group's configuration and the function packages, checks
them, starts the pinned functions and reports the deployment's outcome. This one does the same against the
emulator's APIs, so `deeplens-cli deploy` is tested by what actually reaches the device:

1. watch `ListDeployments` of the device's group; a new deployment names the group version (`GroupArn`
   ends in `/versions/<id>`);
2. `GetGroupVersion` -> the function definition version -> each Lambda function's version ARN, its
   `Pinned` flag and environment variables (what the group says, not what the Lambda says);
3. `lambda:GetFunction(<version ARN>)` -> `CodeSha256`, `Handler` and `Code.Location`; the package is read
   from the artifact bucket under the location's key (publish uploads it there, content-addressed, and
   moto names that key in the location) and its base64 sha256 must equal `CodeSha256`: a package that
   does not match is refused, whatever its content;
4. the zip is unpacked (refusing absolute paths and `..`) and `lambda_runtime.py` imports the handler in a
   separate process whose path holds only the package and the `awscam` / `greengrasssdk` shims;
5. the outcome is reported: Success once the function has started, Failure (with error details) when the
   package was refused or the import failed.

Reporting: moto accepts deployments but never changes their status, and has no API a core would use to
report (the real one is the device's `UpdateCoreDeploymentStatus` over IoT). The emulator runs in this
process, so `MotoDeploymentReporter` sets the status on moto's deployment record, and adds `ErrorMessage` /
`ErrorDetails` to `GetDeploymentStatus` answers while a core is running (moto's answer has no such fields).

The device's `/tmp` is a private folder under the core's root (a Greengrass container has its own too):
the function's spool and preview FIFO go there, never to the host's `/tmp`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from deeplens_cli.errors import DeeplensError

SHIM_FILES = ("awscam.py", "greengrasssdk.py", "lambda_runtime.py")
# Paths the edge function defaults to under /tmp (edge_function/settings.py and lambda_function.py); the
# simulated device gets them inside its own tmp unless the group configuration names them.
DEVICE_TMP_DEFAULTS = {"DEEPLENS_SPOOL_DIR": "deeplens-spool", "DEEPLENS_PREVIEW": "results.mjpeg"}
_HOST_ENV_PASSED = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")


class CodeRefused(DeeplensError):
    """The package the device downloaded is not the one Lambda says was published."""


class DeploymentProblem(Exception):
    """Why the simulated core reports a deployment as failed: a short code and a one-line message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------- packages


def code_sha256(data: bytes) -> str:
    """What Lambda reports as `CodeSha256`: base64 of the sha256 digest of the package bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def verify_code(data: bytes, expected_code_sha256: str, what: str = "the function package") -> None:
    """Refuse a package whose digest is not the published one (a tampered, stale or truncated download)."""
    try:
        expected = base64.b64decode(expected_code_sha256, validate=True)
    except (binascii.Error, ValueError):
        expected = b""
    if len(expected) != hashlib.sha256().digest_size:
        raise CodeRefused(f"{what}: Lambda reports no usable CodeSha256 ({expected_code_sha256!r})",
                          "publish the function again")
    actual = hashlib.sha256(data).digest()
    if actual != expected:
        raise CodeRefused(
            f"{what} does not match the published code: sha256 {base64.b64encode(actual).decode()} "
            f"!= CodeSha256 {expected_code_sha256}",
            "the package in S3 changed after publish; publish again (deploy does it)")


def unpack_code(data: bytes, destination: Path) -> list[str]:
    """Extract a zip into `destination`, refusing entries that would land outside it; returns the names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CodeRefused(f"the function package is not a zip file ({exc})", "publish the function again") from None
    names = []
    with archive:
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts or info.filename.startswith("\\"):
                raise CodeRefused(f"the function package has an unsafe entry {info.filename!r}",
                                  "rebuild the package; entries must be relative paths")
            names.append(info.filename)
        destination.mkdir(parents=True, exist_ok=True)
        archive.extractall(destination)
    return names


# ---------------------------------------------------------------------------------------------- group reading


@dataclass(frozen=True)
class DeployedFunction:
    """One Lambda function of the deployed group version, as the core sees it."""

    function_arn: str  # version or alias ARN, as in the group
    pinned: bool
    environment: dict[str, str]
    handler: str = ""
    code_sha256: str = ""
    code_location: str = ""

    @property
    def name(self) -> str:
        return self.function_arn.split(":function:")[-1].split(":")[0]


def _id_and_version(definition_version_arn: str) -> tuple[str, str]:
    """`.../definition/functions/<id>/versions/<version>` -> (id, version)."""
    parts = definition_version_arn.rstrip("/").split("/")
    if len(parts) < 4 or parts[-2] != "versions":
        raise DeploymentProblem("GroupInvalid", f"unexpected definition version ARN {definition_version_arn}")
    return parts[-3], parts[-1]


def read_group_functions(greengrass: Any, lambda_client: Any, group_id: str, group_version_id: str) -> list[DeployedFunction]:
    """The Lambda functions of one group version, with their code digest and location."""
    version = greengrass.get_group_version(GroupId=group_id, GroupVersionId=group_version_id)
    arn = version.get("Definition", {}).get("FunctionDefinitionVersionArn")
    if not arn:
        return []
    definition_id, definition_version = _id_and_version(arn)
    functions = greengrass.get_function_definition_version(
        FunctionDefinitionId=definition_id, FunctionDefinitionVersionId=definition_version)
    found = []
    for function in functions.get("Definition", {}).get("Functions", []):
        function_arn = function.get("FunctionArn", "")
        if ":lambda:" not in function_arn:
            continue  # connectors and system functions are not ours to run
        configuration = function.get("FunctionConfiguration", {})
        variables = configuration.get("Environment", {}).get("Variables", {}) or {}
        described = lambda_client.get_function(FunctionName=function_arn)
        found.append(DeployedFunction(
            function_arn=function_arn,
            pinned=bool(configuration.get("Pinned", False)),
            environment={str(k): str(v) for k, v in variables.items()},
            handler=described["Configuration"].get("Handler", ""),
            code_sha256=described["Configuration"].get("CodeSha256", ""),
            code_location=described.get("Code", {}).get("Location", ""),
        ))
    return found


class S3ArtifactStore:
    """Packages that `publish` uploaded to the artifact bucket: the key is the end of `Code.Location`."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def fetch(self, function: DeployedFunction) -> tuple[bytes, str]:
        """(package bytes, where they came from); LookupError when this store does not have them."""
        key = urlsplit(function.code_location).path.lstrip("/")
        if not key:
            raise LookupError("Lambda gave no code location")
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read(), f"s3://{self.bucket}/{key}"
        except Exception as exc:  # noqa: BLE001 - any failure to fetch is the same outcome for the device
            raise LookupError(f"cannot download s3://{self.bucket}/{key}: {exc}") from None


def download_code(stores: list[Any], function: DeployedFunction) -> tuple[bytes, str]:
    """(package bytes, origin) from the first store that has them; not yet verified."""
    problems = []
    for store in stores:
        try:
            return store.fetch(function)
        except LookupError as exc:
            problems.append(str(exc))
    raise DeploymentProblem("CodeDownloadFailed", f"{function.name}: " + "; ".join(problems or ["no code store"]))


# ---------------------------------------------------------------------------------------------- reporting


@dataclass(frozen=True)
class SimulatedStatus:
    """A `GetDeploymentStatus` answer with the error fields a real core's report carries."""

    base: Any
    message: str
    details: tuple[dict[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.base.to_dict(), "ErrorMessage": self.message, "ErrorDetails": list(self.details)}


class MotoDeploymentReporter:
    """Sets deployment outcomes on the in-process moto Greengrass backend (see the module docstring)."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._original: Callable[..., Any] | None = None

    def _backend(self) -> Any:
        from moto.backends import get_backend

        return get_backend("greengrass")[self.account_id][self.region]

    def report(self, group_id: str, deployment_id: str, status: str, message: str = "",
               details: tuple[dict[str, str], ...] = ()) -> None:
        from moto.core.utils import utcnow

        deployment = self._backend().deployments[deployment_id]
        deployment.deployment_status = status
        deployment.update_at_datetime = utcnow()
        deployment.simulated_error = (message, details) if message else None
        if message:
            self._install()

    def _install(self) -> None:
        """Wrap moto's GetDeploymentStatus so it also returns the reported error (undone by `close`)."""
        from moto.greengrass.models import GreengrassBackend

        if self._original is not None:
            return
        original = GreengrassBackend.get_deployment_status
        self._original = original

        def get_deployment_status(backend: Any, group_id: str, deployment_id: str) -> Any:
            answer = original(backend, group_id, deployment_id)
            error = getattr(backend.deployments[deployment_id], "simulated_error", None)
            return SimulatedStatus(answer, error[0], error[1]) if error else answer

        GreengrassBackend.get_deployment_status = get_deployment_status  # type: ignore[method-assign]

    def close(self) -> None:
        if self._original is not None:
            from moto.greengrass.models import GreengrassBackend

            GreengrassBackend.get_deployment_status = self._original  # type: ignore[method-assign]
            self._original = None


# ---------------------------------------------------------------------------------------------- device process


@dataclass
class DeviceRun:
    """One started function process and the files it writes."""

    deployment_id: str
    function: DeployedFunction
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    status_path: Path
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    code_origin: str = ""

    def status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def wait_started(self, timeout_s: float) -> dict[str, Any]:
        """The runtime's status once it is known, or a failure when the process died or took too long."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.status()
            if status.get("state") in ("started", "finished", "failed"):
                return status
            if self.process.poll() is not None:
                status = self.status()
                return status if status else {"state": "failed", "error": f"exited with code {self.process.returncode} "
                                                                           f"before importing: {self.log_tail(1)}"}
            time.sleep(0.05)
        return {"state": "failed", "error": f"did not start within {timeout_s:.0f} s"}

    def wait(self, timeout_s: float) -> int | None:
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        self.ended_at = self.ended_at or time.monotonic()
        return code

    def terminate(self, grace_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.ended_at = self.ended_at or time.monotonic()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


@dataclass(frozen=True)
class DeviceIo:
    """What the simulated hardware is attached to: the camera feed and the files the shims write."""

    source: str  # DEEPLENS_SIM_SOURCE: image folder, video file or webcam:N
    fps: float = 15.0
    messages_path: Path | None = None  # greengrasssdk shim output (JSON lines)
    frame_log_path: Path | None = None  # awscam shim: which frame was served when
    centerface_path: str | None = None


class SimulatedCore:
    """Watches one group's deployments and runs what they deploy (see the module docstring)."""

    def __init__(self, session: Any, endpoint_url: str, group_id: str, thing_name: str, artifact_bucket: str,
                 root: str | Path, io_: DeviceIo, reporter: Any = None, extra_env: Mapping[str, str] | None = None,
                 log: Callable[[str], None] | None = None, poll_s: float = 0.2, start_timeout_s: float = 60.0,
                 python: str = sys.executable, code_stores: list[Any] | None = None) -> None:
        region = session.region_name
        self._clients = {name: session.client(name, endpoint_url=endpoint_url, region_name=region)
                         for name in ("greengrass", "lambda", "s3")}
        self.endpoint_url = endpoint_url
        self.region = region
        self.group_id = group_id
        self.thing_name = thing_name
        self.artifact_bucket = artifact_bucket
        self.root = Path(root)
        self.io = io_
        self.reporter = reporter
        self.extra_env = dict(extra_env or {})
        self.log = log or (lambda message: None)
        self.poll_s = poll_s
        self.start_timeout_s = start_timeout_s
        self.python = python
        self.runs: list[DeviceRun] = []
        self.outcomes: dict[str, tuple[str, str]] = {}  # deployment id -> (status, message)
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.runtime_dir = self.root / "runtime"
        self.code_stores = code_stores if code_stores is not None else [S3ArtifactStore(self._clients["s3"], artifact_bucket)]

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Install the shims and start watching; deployments that exist already are history, not news."""
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        here = Path(__file__).parent
        for name in SHIM_FILES:
            shutil.copyfile(here / name, self.runtime_dir / name)
        self._seen.update(self._deployment_ids())
        self._thread = threading.Thread(target=self._watch, name="simulated-core", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and end every function process (a core shutting down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for run in self.runs:
                run.terminate()
        if self.reporter is not None and hasattr(self.reporter, "close"):
            self.reporter.close()

    def __enter__(self) -> SimulatedCore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def current_run(self) -> DeviceRun | None:
        with self._lock:
            return self.runs[-1] if self.runs else None

    # -- watching -----------------------------------------------------------------------------------------

    def _deployment_ids(self) -> list[str]:
        answer = self._clients["greengrass"].list_deployments(GroupId=self.group_id)
        return [d["DeploymentId"] for d in answer.get("Deployments", [])]

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                answer = self._clients["greengrass"].list_deployments(GroupId=self.group_id)
            except Exception as exc:  # noqa: BLE001 - the emulator going away ends the watch quietly
                if not self._stop.is_set():
                    self.errors.append(f"list_deployments failed: {exc}")
                return
            fresh = [d for d in answer.get("Deployments", []) if d["DeploymentId"] not in self._seen]
            fresh.sort(key=lambda d: d.get("CreatedAt", ""))
            for deployment in fresh:
                self._seen.add(deployment["DeploymentId"])
            if fresh:  # only the newest matters: each deployment replaces the whole group configuration
                self.apply(fresh[-1])

    def apply(self, deployment: Mapping[str, Any]) -> tuple[str, str]:
        """Run one deployment and report its outcome; returns (status, message)."""
        deployment_id = deployment["DeploymentId"]
        try:
            version_id = str(deployment.get("GroupArn", "")).rstrip("/").split("/versions/")[-1]
            if "/versions/" not in str(deployment.get("GroupArn", "")):
                raise DeploymentProblem("GroupInvalid", f"deployment {deployment_id} names no group version")
            self.log(f"simulated device: deployment {deployment_id} received (group version {version_id})")
            functions = read_group_functions(self._clients["greengrass"], self._clients["lambda"],
                                             self.group_id, version_id)
            if not functions:
                raise DeploymentProblem("NoFunction", "the deployed group version has no Lambda function")
            with self._lock:
                for run in self.runs:
                    run.terminate()  # a deployment replaces the running project
            for function in functions:
                self._start_function(deployment_id, function)
        except CodeRefused as exc:
            return self._report(deployment_id, "Failure", "CodeIntegrity", exc.one_line())
        except DeploymentProblem as exc:
            return self._report(deployment_id, "Failure", exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a core reports every failure; it never dies of one
            return self._report(deployment_id, "Failure", "CoreError", f"{type(exc).__name__}: {exc}")
        return self._report(deployment_id, "Success", "", "")

    def _start_function(self, deployment_id: str, function: DeployedFunction) -> DeviceRun:
        data, origin = download_code(self.code_stores, function)
        verify_code(data, function.code_sha256, f"package of {function.function_arn} from {origin}")
        run_root = self.root / "deployments" / deployment_id / function.name
        code_dir = run_root / "code"
        unpack_code(data, code_dir)
        self.log(f"simulated device: package of {function.name} from {origin} matches CodeSha256 "
                 f"({len(data)} bytes); starting {function.handler}")
        run = self._launch(deployment_id, function, run_root, code_dir)
        run.code_origin = origin
        status = run.wait_started(self.start_timeout_s)
        if status.get("state") not in ("started", "finished"):
            run.terminate()
            raise DeploymentProblem("FunctionStartFailed",
                                    f"{function.name} ({function.handler}) failed to start: {status.get('error')}")
        return run

    def device_environment(self, function: DeployedFunction, code_dir: Path, device_tmp: Path) -> dict[str, str]:
        """The function process's environment: the group's variables, what Greengrass sets, the emulator."""
        env = {name: os.environ[name] for name in _HOST_ENV_PASSED if name in os.environ}
        env.update(function.environment)
        for name, leaf in DEVICE_TMP_DEFAULTS.items():
            value = env.get(name)
            if not value or value.startswith("/tmp/"):
                env[name] = str(device_tmp / (value[len("/tmp/"):] if value else leaf))
        env.update({
            "AWS_IOT_THING_NAME": self.thing_name,  # set by Greengrass for every function
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
            # the group role's credentials, as the core's token service would hand them out
            "AWS_ACCESS_KEY_ID": "simulated-device", "AWS_SECRET_ACCESS_KEY": "simulated-device",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "TMPDIR": str(device_tmp), "HOME": str(device_tmp),
            "PYTHONPATH": os.pathsep.join([str(code_dir), str(self.runtime_dir)]),
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
            "DEEPLENS_SIM_SOURCE": self.io.source, "DEEPLENS_SIM_FPS": str(self.io.fps),
        })
        for name, path in (("DEEPLENS_SIM_MESSAGES", self.io.messages_path),
                           ("DEEPLENS_SIM_FRAME_LOG", self.io.frame_log_path),
                           ("DEEPLENS_SIM_CENTERFACE", self.io.centerface_path)):
            if path:
                env[name] = str(path)
        env.update(self.extra_env)
        return env

    def _launch(self, deployment_id: str, function: DeployedFunction, run_root: Path, code_dir: Path) -> DeviceRun:
        device_tmp = run_root / "tmp"
        device_tmp.mkdir(parents=True, exist_ok=True)
        log_path, status_path = run_root / "function.log", run_root / "status.json"
        command = [self.python, str(self.runtime_dir / "lambda_runtime.py"), "--handler", function.handler,
                   "--code-dir", str(code_dir), "--status-file", str(status_path)]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=self.device_environment(function, code_dir, device_tmp),
                                       cwd=str(code_dir), stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        run = DeviceRun(deployment_id, function, run_root, process, log_path, status_path)
        with self._lock:
            self.runs.append(run)
        return run

    def _report(self, deployment_id: str, status: str, code: str, message: str) -> tuple[str, str]:
        self.outcomes[deployment_id] = (status, message)
        if status == "Success":
            self.log(f"simulated device: deployment {deployment_id} succeeded")
        else:
            self.log(f"simulated device: deployment {deployment_id} failed: {message}")
        if self.reporter is not None:
            details = ({"DetailedErrorCode": code, "DetailedErrorMessage": message},) if message else ()
            self.reporter.report(self.group_id, deployment_id, status, message, details)
        return status, message
