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

Reporting goes through a reporter (`moto_internals.MotoDeploymentReporter` for the embedded emulator, which has
no API a core would report through). Packages: `lambda_package`; group reading: `v1_group`.

The device's `/tmp` is a private folder under the core's root (a Greengrass container has its own too):
the function's spool and preview FIFO go there, never to the host's `/tmp`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from deeplens_cli.simulator.device_process import StartedDeviceProcess
from deeplens_cli.simulator.lambda_package import (  # noqa: F401 - also this module's public names
    CodeRefused,
    code_sha256,
    unpack_code,
    verify_code,
)
from deeplens_cli.simulator.moto_internals import MotoDeploymentReporter  # noqa: F401 - public name here too
from deeplens_cli.simulator.v1_group import (  # noqa: F401 - also this module's public names
    DeployedFunction,
    DeploymentProblem,
    S3ArtifactStore,
    download_code,
    read_group_functions,
)

SHIM_FILES = ("awscam.py", "greengrasssdk.py", "lambda_runtime.py")
# Paths the edge function defaults to under /tmp (edge_function/settings.py and lambda_function.py); the
# simulated device gets them inside its own tmp unless the group configuration names them.
DEVICE_TMP_DEFAULTS = {"DEEPLENS_SPOOL_DIR": "deeplens-spool", "DEEPLENS_PREVIEW": "results.mjpeg"}
_HOST_ENV_PASSED = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")


# ---------------------------------------------------------------------------------------------- device process


@dataclass
class DeviceRun(StartedDeviceProcess):
    """One started function process and the files it writes (`wait`, `log_tail`: device_process)."""

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

    def terminate(self, grace_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.ended_at = self.ended_at or time.monotonic()


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
        self.code_stores = (
            code_stores
            if code_stores is not None
            else [S3ArtifactStore(self._clients["s3"], artifact_bucket)]
        )

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
