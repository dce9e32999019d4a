"""Deployment targets behind one interface: Greengrass V1 (DeepLens classic) and Greengrass V2.

A device decides its target: `register-device` records it on the IoT thing (attributes `deeplens_name` and
`deeplens_target`), and every later command finds the device by name first and asks the right target. Users
never pass a target flag to `deploy`/`status`/`destroy`.

Each target implements `Target` (base.py) for one AWS context + settings and has one row in registry.py. Planners only read; mutations are the steps of the
plans they return, executed by `executor.Executor`.
"""

from __future__ import annotations

from deeplens_cli.targets.base import (
    NAME_ATTRIBUTE,
    TARGET_ATTRIBUTE,
    DeploymentOutcome,
    DeploymentRef,
    Device,
    FleetTarget,
    Target,
)
from deeplens_cli.targets.registry import (
    TARGET_NAMES,
    TARGET_SPECS,
    TargetSpec,
    all_devices,
    find_device,
    make_target,
    spec_for,
)

__all__ = ["NAME_ATTRIBUTE", "TARGET_ATTRIBUTE", "TARGET_NAMES", "TARGET_SPECS", "DeploymentOutcome",
           "DeploymentRef", "Device", "FleetTarget", "Target", "TargetSpec", "all_devices", "find_device",
           "make_target", "spec_for"]
