"""A simulated Greengrass V2 core device: the simulated nucleus (nucleus.py) fed by the in-process control plane.

A real core learns of a deployment through its IoT job, resolves each component's recipe, downloads the
artifacts, checks them against the digests the service recorded, runs `Install` then `Run`, and reports the
deployment's outcome and each component's lifecycle state. This one does the same against the emulated cloud,
so `deeplens-cli deploy --greengrass v2` waits on what actually happened on the (simulated) device:

1. `take_deployments` on the control plane (behaviour "external": the service does not advance it itself);
2. for each component of ours: the stored recipe, its `s3://` artifacts from the emulated bucket, their SHA-256
   against the recorded `Digest` (ARTIFACT_CHECKSUM_MISMATCH otherwise), then `Nucleus.run` (layout, recipe
   variables, Install within its timeout, Run);
3. AWS-provided components (aws.greengrass.*: Nucleus, TokenExchangeService, LogManager) are skipped: the
   simulated nucleus provides credentials and IPC itself, and a log uploader has nothing to upload to;
4. reports RUNNING + COMPLETED, or BROKEN + FAILED with the nucleus' reason; when Run exits later it reports
   FINISHED (exit 0) or ERRORED, as the nucleus' status updates do.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from deeplens_cli.simulator.device_process import StartedDeviceProcess
from deeplens_cli.simulator.nucleus import (
    Deployed,
    Nucleus,
    NucleusError,
    RunningComponent,
    fetch_artifacts,
    is_public_component,
    verify_artifacts,
)


@dataclass
class ComponentRun(StartedDeviceProcess):
    """Our component, started by the simulated nucleus for one deployment (`wait`, `log_tail`: device_process)."""

    deployment_id: str
    component: Deployed
    running: RunningComponent
    log_path: Path
    install_log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None

    @property
    def process(self) -> Any:
        return self.running.script.process


class SimulatedV2Core:
    """Takes the thing's deployments from `control_plane` and runs them with `nucleus` (see the module doc)."""

    def __init__(self, control_plane: Any, thing_name: str, read_s3: Callable[[str, str], bytes], nucleus: Nucleus,
                 poll_s: float = 0.1, log: Callable[[str], None] | None = None) -> None:
        self.control_plane = control_plane
        self.thing_name = thing_name
        self.read_s3 = read_s3
        self.nucleus = nucleus
        self.poll_s = poll_s
        self.log = log or (lambda message: None)
        self.outcomes: dict[str, tuple[str, str]] = {}  # deployment id -> (status, reason)
        self.skipped: list[str] = []  # public components the nucleus did not run
        self._runs: list[ComponentRun] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle of the device

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="simulated-greengrass-v2-core", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.nucleus.stop_grace_s + 60)
        run = self.current_run()
        if run is not None:
            self.nucleus.stop(run.running)
            run.ended_at = run.ended_at or time.monotonic()

    def current_run(self) -> ComponentRun | None:
        with self._lock:
            return self._runs[-1] if self._runs else None

    def _watch(self) -> None:
        reported_end: set[int] = set()
        while not self._stop.is_set():
            for deployment_id, components in self.control_plane.take_deployments(self.thing_name):
                self.apply(deployment_id, components)
            run = self.current_run()
            if run is not None and id(run) not in reported_end and not run.running.alive():
                reported_end.add(id(run))
                self._report_exit(run)
            self._stop.wait(self.poll_s)

    # ------------------------------------------------------------------ one deployment

    def apply(self, deployment_id: str, components: dict[str, Any]) -> tuple[str, str]:
        """Run the deployment's components of ours; report the outcome to the control plane."""
        started: list[tuple[str, str]] = []
        try:
            for name, spec in components.items():
                version = spec["componentVersion"]
                if is_public_component(name):
                    self.skipped.append(name)
                    self.log(f"simulated nucleus: {name} {version} is an AWS-provided component; skipped")
                    continue
                self._run_component(deployment_id, name, version)
                started.append((name, version))
        except NucleusError as error:
            reason = f"COMPONENT_BROKEN: {error}"
            for name, spec in components.items():
                if not is_public_component(name) and (name, spec["componentVersion"]) not in started:
                    self.control_plane.report_component(self.thing_name, name, spec["componentVersion"], "BROKEN",
                                                        details=str(error)[:1000], deployment_id=deployment_id)
            self.control_plane.report_deployment(self.thing_name, deployment_id, "FAILED", failure={
                "reason": reason, "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"],
                "errorTypes": ["COMPONENT_ERROR"]})
            self.outcomes[deployment_id] = ("FAILED", reason)
            self.log(f"simulated nucleus: deployment {deployment_id} FAILED: {error}")
            return self.outcomes[deployment_id]
        for name, version in started:
            self.control_plane.report_component(self.thing_name, name, version, "RUNNING", deployment_id=deployment_id)
        self.control_plane.report_deployment(self.thing_name, deployment_id, "COMPLETED", "SUCCESSFUL")
        self.outcomes[deployment_id] = ("COMPLETED", "SUCCESSFUL")
        return self.outcomes[deployment_id]

    def _run_component(self, deployment_id: str, name: str, version: str) -> None:
        recipe = self.control_plane.component_recipe(name, version)
        try:
            artifacts = fetch_artifacts(recipe, self.read_s3)
        except Exception as error:  # noqa: BLE001 - any download failure fails the deployment the same way
            raise NucleusError(f"{name} {version}: cannot download an artifact: {error}") from None
        verify_artifacts(recipe, artifacts)
        for uri in artifacts:
            self.log(f"simulated nucleus: {uri} downloaded; its sha256 matches the recorded digest")
        component = Deployed(recipe=recipe, artifacts=artifacts)
        previous = self.current_run()
        if previous is not None and previous.component.name == name:
            self.nucleus.stop(previous.running)  # an update: the old version's Run stops first
            previous.ended_at = previous.ended_at or time.monotonic()
        self.log(f"simulated nucleus: installing {name} {version} (Install, as the component user)")
        running = self.nucleus.run(component)
        self.log(f"simulated nucleus: {name} {version} installed in {running.install_s:.1f} s; Run started")
        with self._lock:
            self._runs.append(ComponentRun(deployment_id, component, running, self.nucleus.run_log(component),
                                           self.nucleus.install_log(component)))

    def _report_exit(self, run: ComponentRun) -> None:
        code = run.process.poll()
        run.ended_at = run.ended_at or time.monotonic()
        state = "FINISHED" if code == 0 else "ERRORED"
        self.control_plane.report_component(self.thing_name, run.component.name, run.component.version, state,
                                            details="" if code == 0 else f"Run exited with {code}",
                                            deployment_id=run.deployment_id)
