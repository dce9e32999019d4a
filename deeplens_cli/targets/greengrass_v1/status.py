"""Greengrass V1 status: thing, certificate, core, group role, deployed project and last deployment; and the
published function.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from deeplens_cli.aws import collect, maybe
from deeplens_cli.targets import iot as device_iot
from deeplens_cli.targets.base import Device, DeviceStatus, ProjectStatus
from deeplens_cli.targets.greengrass_v1.naming import TARGET, group_name_for
from deeplens_cli.targets.iot import NOT_FOUND

V1_FULL_READS = 10  # V1 devices read in full by fleet views without --details (no bulk read of V1 deployments)


class Reporting:
    """device_status, fleet_statuses and project_status (read-only)."""

    def _groups_by_name(self) -> dict[str, dict[str, Any]]:
        """Every Greengrass V1 group by name: V1 has no lookup of a group by name, so this is one listing (pages
        of groups, read once per target instance)."""
        cached = getattr(self, "_group_listing", None)
        if cached is None:
            cached = {g["Name"]: g for g in collect(self.gg, "list_groups", "Groups") if "Name" in g}
            self._group_listing = cached
        return cached

    def device_from_thing(self, thing: Mapping[str, Any]) -> Device:
        """The device a DescribeThing entry stands for, with its group (named after the device)."""
        device = device_iot.device_from_thing(thing, TARGET, managed=True)
        incomplete = device.details.get("registration") == device_iot.INCOMPLETE
        name = device.details.get("pending_name", "") if incomplete else device.name
        group = self._groups_by_name().get(group_name_for(name))
        return replace(device, group_id=group["Id"], group_name=group["Name"]) if group else device

    def unmanaged_devices(self, name: str) -> list[Device]:
        """A DeepLens registered by its console, named by its group: the group's core is a `deeplens_` thing."""
        group = self._groups_by_name().get(name)
        if group is None or not group.get("LatestVersion"):
            return []
        core = self._group_core(group["Id"], group["LatestVersion"])
        thing_name = core["ThingArn"].rsplit("/", 1)[-1] if core else ""
        if not thing_name.startswith("deeplens_"):
            return []
        return [Device(name=group["Name"], target=TARGET, thing_name=thing_name, thing_arn=core["ThingArn"],
                       group_id=group["Id"], group_name=group["Name"], details={"managed": False})]

    def fleet_statuses(self, devices: list[Device], details: bool = False) -> dict[str, DeviceStatus]:
        """What the bulk reads tell about every device: the thing (ListThings, already read) and its group
        (ListGroups: exists, has a version). Greengrass V1 has no bulk read of deployments, cores or roles - its
        ListDeployments is per group - so the deployment state is "unknown" here; `--details` (or
        `status --device`) reads each device in full (about eight calls a device). Up to V1_FULL_READS devices
        are always read in full (a bounded, constant cost), so a small V1 fleet's `status` still sees a failed
        deployment; beyond that the summary says "unknown" and `--details` reads them.
        """
        groups = {g["Id"]: g for g in self._groups_by_name().values()}
        statuses: dict[str, DeviceStatus] = {}
        details = details or len(devices) <= V1_FULL_READS  # a bounded number of full reads is a constant cost
        for device in devices:
            if details:
                statuses[device.thing_name] = self.device_status(device)
                continue
            problems: list[str] = []
            if device.details.get("registration") == "incomplete":
                problems.append("registration incomplete (run register-device again)")
            group = groups.get(device.group_id or "")
            if group is None:
                problems.append("no Greengrass group")
            elif not group.get("LatestVersion"):
                problems.append("the group has no version")
            statuses[device.thing_name] = DeviceStatus(
                health="ok" if not problems else "problem", problems=tuple(problems),
                health_detail="summary: thing and group only (use --details for deployments)",
                last_deployment_status="unknown",
                details={"target": TARGET, "summary_only": True, "group": device.group_name})
        return statuses

    def device_status(self, device: Device) -> DeviceStatus:
        """Thing, certificate, core, group role, the deployed project and the last deployment (reads only)."""
        problems: list[str] = []
        info: dict[str, Any] = {"target": TARGET, "thing": device.thing_name, "group": device.group_name,
                                "group_id": device.group_id}
        if device.details.get("registration") == "incomplete":
            problems.append("registration incomplete (run register-device again)")
        thing = maybe(lambda: self.iot.describe_thing(thingName=device.thing_name), NOT_FOUND)
        info["thing_exists"] = thing is not None
        if thing is None:
            problems.append(f"IoT thing {device.thing_name} missing")
        certificates = self._certificates(device.thing_name) if thing else []
        info["certificates"] = [{"id": c.id, "status": c.status} for c in certificates]
        if thing and not any(c.status == "ACTIVE" for c in certificates):
            problems.append("no active certificate")
        group = self._read_group(device.group_id) if device.group_id else None
        info["group_version"] = group.latest_version if group else None
        if group is None:
            problems.append("no Greengrass group")
        else:
            core = self._definition_items(group.core_version_arn)[0] if group.core_version_arn else None
            info["core"] = core.get("ThingArn") if core else None
            if core is None:
                problems.append("the group has no core")
            elif core.get("ThingArn", "").rsplit("/", 1)[-1] != device.thing_name:
                problems.append("the group's core is another thing")
            associated = maybe(lambda: self.gg.get_associated_role(GroupId=group.id), NOT_FOUND)
            info["group_role"] = (associated or {}).get("RoleArn")
            if not info["group_role"]:
                problems.append("no group role")
            project = [f for f in self._current_items(group, "functions") if self._is_our_function(f)]
            info["function_version_arn"] = project[0]["FunctionArn"] if project else None
            last = self._last_deployment(group.id)
            info["last_deployment"] = last
            info["last_deployment_id"] = last["id"] if last else None
            info["last_deployment_status"] = last["status"] if last else "never"
            if last is None:
                problems.append("never deployed")
            elif last["status"] != "Success":
                problems.append(f"last deployment {last['status']}" + (f": {last['error_message']}"
                                                                       if last.get("error_message") else ""))
            elif last["group_version"] != group.latest_version:
                problems.append("the latest group version is not deployed")
        last = info.get("last_deployment")
        return DeviceStatus(health="ok" if not problems else "problem", problems=tuple(problems),
                            last_deployment_id=last["id"] if last else None,
                            last_deployment_status=last["status"] if last else "never",
                            last_deployment_error=last.get("error_message") if last else None, details=info)

    def project_status(self) -> ProjectStatus:
        """The published function: latest version, its CodeSha256, and whether it matches the local build."""
        from deeplens_cli.package import vendor_dir_if_cached

        function_name = self.settings["function.name"]
        status: dict[str, Any] = {"target": TARGET, "kind": "lambda-function", "name": function_name}
        current = maybe(lambda: self.lam.get_function(FunctionName=function_name), ("ResourceNotFoundException",))
        status["exists"] = current is not None
        if current is None:
            return ProjectStatus(TARGET, function_name, False, problems=("function not published (run publish or deploy)",),
                                 details=status)
        versions = [v for v in collect(self.lam, "list_versions_by_function", "Versions", FunctionName=function_name)
                    if v.get("Version") != "$LATEST"]
        latest = max(versions, key=lambda v: int(v["Version"]), default=None)
        status.update(latest_version=latest["Version"] if latest else None,
                      version_arn=latest["FunctionArn"] if latest else None,
                      code_sha256=latest["CodeSha256"] if latest else current["Configuration"].get("CodeSha256"),
                      runtime=current["Configuration"].get("Runtime"))
        vendor = self.settings["function.vendor"]
        if vendor and vendor_dir_if_cached(vendor, self.device_python) is None:
            status["local_code_sha256"] = None  # would need pip (maybe the network): not for a status command
        else:
            status["local_code_sha256"] = self.package().code_sha256_b64
        status["up_to_date"] = status["local_code_sha256"] == status["code_sha256"] if status["local_code_sha256"] else None
        status["problems"] = [] if latest else ["no published version"]
        if status["up_to_date"] is False:
            status["problems"].append("local edge_function differs from the published version (run deploy)")
        return ProjectStatus(TARGET, function_name, True, status["latest_version"], status["code_sha256"],
                             status["up_to_date"], tuple(status.pop("problems")), details=status)
