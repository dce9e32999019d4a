"""A simulated Greengrass V2 nucleus: runs a published component the way the Java nucleus (2.x) runs it.

What it reproduces, from the nucleus source (aws-greengrass/aws-greengrass-nucleus):

* **Layout** under the nucleus root R: artifacts in `R/packages/artifacts/<name>/<version>/`, a ZIP artifact
  with `Unarchive: ZIP` unpacked into `R/packages/artifacts-unarchived/<name>/<version>/<zip name without
  .zip>/`, the work folder `R/work/<name>/` (not per version: it survives updates). Artifact directories are
  0755; artifact files get the recipe's `Permission` (`Read: OWNER` -> 0440) and, like the nucleus' path
  ownership handler, belong to the component's user; the work folder is 0700 and belongs to it too.
* **Recipe variables** `{artifacts:path}`, `{artifacts:decompressedPath}`, `{work:path}`, `{kernel:rootPath}`,
  `{iot:thingName}` and `{configuration:/json/pointer}` (strings as they are, containers as JSON); a variable
  that cannot be resolved is left in place, as the nucleus does.
* **Lifecycle**: `Install` (timeout from the recipe, default 120 s) then `Run`, each as `sh -c SCRIPT` in the
  work folder as the component user, with the component environment (`AWS_IOT_THING_NAME`, `AWS_REGION`,
  `AWS_DEFAULT_REGION`, `SVCUID`, `GG_ROOT_CA_PATH`, the IPC socket path and, with a dependency on the token
  exchange service, `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN`).
* **Stop**: SIGTERM to the process and its children, 5 s of grace, then SIGKILL.

How a script is started is pluggable (`ScriptRunner`): `HostRunner` runs it on this machine (the demo), the
device lab runs it inside a Debian root file system with `chroot --userspec` (tests/device_lab). Paths in
recipes are the device's paths; `DeviceFiles` maps them to where they are on this machine.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import urlsplit

DEFAULT_INSTALL_TIMEOUT_S = 120.0  # Lifecycle.DEFAULT_INSTALL_STAGE_TIMEOUT_IN_SEC
GRACEFUL_STOP_S = 5.0  # Exec.gracefulShutdownTimeout
TOKEN_EXCHANGE_SERVICE = "aws.greengrass.TokenExchangeService"
PUBLIC_PREFIX = "aws.greengrass."  # AWS-provided components (Nucleus, TokenExchangeService, LogManager, ...)
_VARIABLE = re.compile(r"\{([.\w-]+):([^:}]*)\}")


class NucleusError(Exception):
    """A lifecycle step failed the way the nucleus would report it (the component goes BROKEN)."""


# ---------------------------------------------------------------------------------------------- identities


@dataclass(frozen=True)
class ComponentUser:
    """Who a component runs as (`runWith.posixUser`): numeric ids, because a chroot has its own passwd."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()  # supplementary groups, as `sudo -u` would give them from the group database


@dataclass(frozen=True)
class DeviceFiles:
    """Where the device's file system is on this machine: `/` for the host, the root file system for chroot."""

    root: Path = Path("/")

    def host_path(self, device_path: PurePosixPath | str) -> Path:
        relative = PurePosixPath(device_path).relative_to("/")
        return self.root / relative


# ---------------------------------------------------------------------------------------------- running scripts


@dataclass
class StartedScript:
    """A running lifecycle script."""

    process: subprocess.Popen[bytes]
    started: float


class ScriptRunner(Protocol):
    """Starts `sh -c script` as `user` in `cwd` (device paths) with exactly `environment`."""

    files: DeviceFiles

    def start(self, script: str, user: ComponentUser, cwd: PurePosixPath, environment: Mapping[str, str],
              log: Path) -> StartedScript: ...


def _start(command: Sequence[str], log: Path, cwd: str | None = None,
           env: Mapping[str, str] | None = None) -> StartedScript:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=cwd, env=dict(env) if env is not None else None, start_new_session=True)
    return StartedScript(process=process, started=time.monotonic())


@dataclass
class HostRunner:
    """Runs scripts on this machine as the current user (the demo: no root, no chroot)."""

    files: DeviceFiles = field(default_factory=DeviceFiles)
    inherit: tuple[str, ...] = ("PATH", "HOME", "LANG", "TMPDIR")  # what sudo -E would pass on

    def start(self, script: str, user: ComponentUser, cwd: PurePosixPath, environment: Mapping[str, str],
              log: Path) -> StartedScript:
        env = {name: os.environ[name] for name in self.inherit if name in os.environ}
        env.update(environment)
        return _start(["/bin/sh", "-c", script], log, cwd=str(self.files.host_path(cwd)), env=env)


@dataclass
class ChrootRunner:
    """Runs scripts inside a root file system as the component user with its supplementary groups:
    `chroot --userspec=UID:GID --groups=G,... ROOT /usr/bin/env -i K=V ... /bin/sh -c ...` (needs root)."""

    files: DeviceFiles
    path: str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def start(self, script: str, user: ComponentUser, cwd: PurePosixPath, environment: Mapping[str, str],
              log: Path) -> StartedScript:
        env = {"PATH": self.path, "HOME": f"/home/{user.name}", "USER": user.name, "LOGNAME": user.name,
               "LANG": "C.UTF-8"}
        env.update(environment)
        # Always name the groups: without --groups, chroot would look the uid up in the *host's* group database.
        groups = ",".join(str(g) for g in (user.gid, *user.groups))
        command = ["chroot", f"--userspec={user.uid}:{user.gid}", f"--groups={groups}"]
        # chroot leaves the process in /; the nucleus starts scripts in {work:path}.
        command += [str(self.files.root), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
                    "/bin/sh", "-c", 'cd "$1" && shift && exec /bin/sh -c "$0"', script, str(cwd)]
        return _start(command, log)


# ---------------------------------------------------------------------------------------------- the component


@dataclass(frozen=True)
class Deployed:
    """A component version as the device receives it: the recipe (dict) and its artifacts' bytes by URI."""

    recipe: Mapping[str, Any]
    artifacts: Mapping[str, bytes]
    configuration: Mapping[str, Any] | None = None  # None: the recipe's DefaultConfiguration

    @property
    def name(self) -> str:
        return str(self.recipe["ComponentName"])

    @property
    def version(self) -> str:
        return str(self.recipe["ComponentVersion"])

    def manifest(self) -> Mapping[str, Any]:
        """The first Linux manifest (the nucleus picks the best platform match; ours have one)."""
        for manifest in self.recipe.get("Manifests", []):
            if (manifest.get("Platform") or {}).get("os", "linux") in ("linux", "*", "all"):
                return manifest
        raise NucleusError(f"{self.name} {self.version}: no manifest for linux")

    def effective_configuration(self) -> Mapping[str, Any]:
        if self.configuration is not None:
            return self.configuration
        return ((self.recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration")) or {}

    def depends_on(self, component: str) -> bool:
        return component in (self.recipe.get("ComponentDependencies") or {})


def fetch_artifacts(recipe: Mapping[str, Any], read_s3: Callable[[str, str], bytes]) -> dict[str, bytes]:
    """Download every `s3://` artifact of the recipe's manifests with `read_s3(bucket, key)`."""
    artifacts = {}
    for manifest in recipe.get("Manifests", []):
        for artifact in manifest.get("Artifacts", []):
            uri = artifact["URI"]
            parts = urlsplit(uri)
            if parts.scheme != "s3":
                raise NucleusError(f"artifact {uri}: only s3:// artifacts are supported here")
            artifacts[uri] = read_s3(parts.netloc, parts.path.lstrip("/"))
    return artifacts


def is_public_component(name: str) -> bool:
    """An AWS-provided component (aws.greengrass.*): part of the real nucleus or a plugin of it (LogManager).
    The simulated nucleus provides what of them our component uses (credentials, IPC) itself and skips the
    rest, rather than failing a deployment that carries them."""
    return name.startswith(PUBLIC_PREFIX)


def verify_artifacts(recipe: Mapping[str, Any], artifacts: Mapping[str, bytes]) -> None:
    """What the nucleus checks after a download: each artifact's SHA-256 against the `Digest` the service
    recorded at CreateComponentVersion (ARTIFACT_CHECKSUM_MISMATCH when the S3 object changed since)."""
    import base64
    import hashlib

    for manifest in recipe.get("Manifests", []):
        for artifact in manifest.get("Artifacts", []):
            expected = artifact.get("Digest")
            if expected is None:
                continue
            actual = base64.b64encode(hashlib.sha256(artifacts[artifact["URI"]]).digest()).decode()
            if actual != expected:
                raise NucleusError(f"ARTIFACT_CHECKSUM_MISMATCH: {artifact['URI']} has sha256 {actual}, the "
                                   f"component version recorded {expected}")


@dataclass(frozen=True)
class DeviceIdentity:
    """What the nucleus configuration says about the device."""

    thing_name: str
    region: str
    root: PurePosixPath = PurePosixPath("/greengrass/v2")
    ipc_socket: str = "/greengrass/v2/ipc.socket"


@dataclass
class RunningComponent:
    """A component whose `Run` step is running."""

    name: str
    script: StartedScript
    install_s: float

    def alive(self) -> bool:
        return self.script.process.poll() is None


@dataclass
class Nucleus:
    """Runs components like the Java nucleus (see the module docstring)."""

    device: DeviceIdentity
    runner: ScriptRunner
    user: ComponentUser
    logs: Path  # where this machine keeps each lifecycle step's output
    credentials_uri: str | None = None  # the token exchange service (aws.greengrass.TokenExchangeService)
    extra_environment: Mapping[str, str] = field(default_factory=dict)  # e.g. an emulator's endpoint
    chown: bool = True  # give artifacts and work folder to the component user (False: host demo as non-root)
    stop_grace_s: float = GRACEFUL_STOP_S
    # Every token handed to a component (SVCUID = AWS_CONTAINER_AUTHORIZATION_TOKEN); pass the token exchange
    # server's `accepted_tokens` here so it answers only components this nucleus started.
    issued_tokens: set[str] = field(default_factory=set)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ paths

    def artifacts_path(self, component: Deployed) -> PurePosixPath:
        return self.device.root / "packages" / "artifacts" / component.name / component.version

    def decompressed_path(self, component: Deployed) -> PurePosixPath:
        return self.device.root / "packages" / "artifacts-unarchived" / component.name / component.version

    def work_path(self, component: Deployed) -> PurePosixPath:
        return self.device.root / "work" / component.name

    # ------------------------------------------------------------------ lifecycle

    def prepare(self, component: Deployed) -> None:
        """Place artifacts (unpacked when asked) and the work folder, with the nucleus' modes and owners."""
        files = self.runner.files
        artifacts = files.host_path(self.artifacts_path(component))
        artifacts.mkdir(parents=True, exist_ok=True)
        for entry in component.manifest().get("Artifacts", []):
            uri = entry["URI"]
            name = PurePosixPath(urlsplit(uri).path).name
            target = artifacts / name
            target.unlink(missing_ok=True)  # a re-deploy replaces it (the file is read-only)
            target.write_bytes(component.artifacts[uri])
            mode = _artifact_mode(entry.get("Permission") or {})
            os.chmod(target, mode)
            self._give(target)
            if str(entry.get("Unarchive", "NONE")).upper() == "ZIP":
                unpacked = files.host_path(self.decompressed_path(component)) / PurePosixPath(name).stem
                shutil.rmtree(unpacked, ignore_errors=True)
                with zipfile.ZipFile(io.BytesIO(component.artifacts[uri])) as archive:
                    archive.extractall(unpacked)
                self._set_tree(unpacked, mode)
        work = files.host_path(self.work_path(component))
        work.mkdir(parents=True, exist_ok=True)
        os.chmod(work, 0o700)
        self._give(work)

    def environment(self, component: Deployed) -> dict[str, str]:
        # The service's unique id, one per component for the nucleus' lifetime: SVCUID and the TES token.
        token = self._tokens.setdefault(component.name, uuid.uuid4().hex)
        self.issued_tokens.add(token)
        env = {
            "AWS_IOT_THING_NAME": self.device.thing_name,
            "AWS_REGION": self.device.region,
            "AWS_DEFAULT_REGION": self.device.region,
            "SVCUID": token,
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": self.device.ipc_socket,
            "GG_ROOT_CA_PATH": str(self.device.root / "AmazonRootCA1.pem"),
        }
        if self.credentials_uri and component.depends_on(TOKEN_EXCHANGE_SERVICE):
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = self.credentials_uri
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        env.update(self.extra_environment)
        return env

    def script(self, component: Deployed, step: str) -> tuple[str | None, float | None]:
        """The interpolated script of a lifecycle step and its timeout (None: none set)."""
        value = (component.manifest().get("Lifecycle") or {}).get(step)
        if value is None:
            return None, None
        if isinstance(value, str):
            return self.interpolate(component, value), None
        timeout = value.get("Timeout")
        return self.interpolate(component, value["Script"]), float(timeout) if timeout is not None else None

    def interpolate(self, component: Deployed, text: str) -> str:
        system = {
            ("artifacts", "path"): str(self.artifacts_path(component)),
            ("artifacts", "decompressedPath"): str(self.decompressed_path(component)),
            ("work", "path"): str(self.work_path(component)),
            ("kernel", "rootPath"): str(self.device.root),
            ("iot", "thingName"): self.device.thing_name,
        }
        configuration = component.effective_configuration()

        def replace(match: re.Match[str]) -> str:
            namespace, key = match.group(1), match.group(2)
            if namespace == "configuration":
                value = _json_pointer(configuration, key)
                if value is _MISSING:
                    return match.group(0)
                return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            return system.get((namespace, key), match.group(0))

        return _VARIABLE.sub(replace, text)

    def install(self, component: Deployed) -> float:
        """Run `Install` to completion within its timeout; returns its duration. Raises NucleusError."""
        script, timeout = self.script(component, "Install")
        if script is None:
            return 0.0
        started = self.runner.start(script, self.user, self.work_path(component), self.environment(component),
                                    self.install_log(component))
        limit = DEFAULT_INSTALL_TIMEOUT_S if timeout is None else timeout
        try:
            code = started.process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.stop_script(started)
            raise NucleusError(f"{component.name}: Install timed out after {limit:.0f} s") from None
        if code != 0:
            raise NucleusError(f"{component.name}: Install exited with {code} (log: {self.install_log(component)})")
        return time.monotonic() - started.started

    def run(self, component: Deployed) -> RunningComponent:
        """Prepare, Install, then start `Run` (long-running); returns the running component."""
        self.prepare(component)
        install_s = self.install(component)
        return self.start(component, install_s)

    def start(self, component: Deployed, install_s: float = 0.0) -> RunningComponent:
        """Start `Run` of a prepared and installed component."""
        script, _ = self.script(component, "Run")
        if script is None:
            raise NucleusError(f"{component.name}: no Run step")
        started = self.runner.start(script, self.user, self.work_path(component), self.environment(component),
                                    self.run_log(component))
        return RunningComponent(name=component.name, script=started, install_s=install_s)

    def run_log(self, component: Deployed) -> Path:
        return self.logs / f"{component.name}.log"

    def install_log(self, component: Deployed) -> Path:
        return self.logs / f"{component.name}.install.log"

    def stop(self, running: RunningComponent) -> tuple[int | None, float]:
        """Stop `Run` as the nucleus does; returns (exit code, seconds it took to exit)."""
        return self.stop_script(running.script)

    def stop_script(self, started: StartedScript) -> tuple[int | None, float]:
        process = started.process
        begun = time.monotonic()
        if process.poll() is not None:
            return process.returncode, 0.0
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        return process.returncode, time.monotonic() - begun

    # ------------------------------------------------------------------ ownership

    def _give(self, path: Path) -> None:
        if self.chown:
            os.chown(path, self.user.uid, self.user.gid)

    def _set_tree(self, top: Path, file_mode: int) -> None:
        for directory, _dirs, names in os.walk(top):
            os.chmod(directory, 0o755)
            self._give(Path(directory))
            for name in names:
                path = Path(directory) / name
                os.chmod(path, file_mode)
                self._give(path)


_MISSING = object()


def _json_pointer(document: Any, pointer: str) -> Any:
    if pointer in ("", "/"):
        return document
    if not pointer.startswith("/"):
        return _MISSING
    node = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _artifact_mode(permission: Mapping[str, Any]) -> int:
    """Permission.toFileSystemPermission: owner always reads; OWNER means user and group."""
    read, execute = str(permission.get("Read", "OWNER")).upper(), str(permission.get("Execute", "NONE")).upper()
    mode = 0o400
    if read in ("OWNER", "ALL") or execute in ("OWNER", "ALL"):
        mode |= 0o040
    if read == "ALL" or execute == "ALL":
        mode |= 0o004
    if execute in ("OWNER", "ALL"):
        mode |= 0o110
    if execute == "ALL":
        mode |= 0o001
    return mode


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """The script and everything it started (it leads its own session)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
