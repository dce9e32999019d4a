"""Every place the simulators reach into moto's internals, and why (moto has no public API for these).

* `MotoDeploymentReporter`: moto accepts Greengrass V1 deployments but never changes their status, and has no
  API a core would use to report (the real one is the device's `UpdateCoreDeploymentStatus` over IoT). The
  emulator runs in this process, so the reporter sets the status on moto's deployment record, and adds
  `ErrorMessage` / `ErrorDetails` to `GetDeploymentStatus` answers while installed (moto's answer has no such
  fields); `close` undoes the patch.
* `stop_threaded_server`: `ThreadedMotoServer.stop()` leaves its listening socket open; this closes it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


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


def stop_threaded_server(server: Any) -> None:
    """Stop a `moto.server.ThreadedMotoServer` and release its port."""
    server.stop()
    if getattr(server, "_server", None) is not None:
        server._server.server_close()  # ThreadedMotoServer.stop() leaves the listening socket open
