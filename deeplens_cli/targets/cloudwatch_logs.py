"""Where a device's logs land in CloudWatch Logs, and what each target must deploy to put them there.

Facts (checked against the AWS documentation, see docs/troubleshooting.md and research notes):

* **Greengrass V2** - the public `aws.greengrass.LogManager` component uploads them. Log groups are
  `/aws/greengrass/UserComponent/<region>/<component>` for components and
  `/aws/greengrass/GreengrassSystemComponent/<region>/System` for the nucleus and its plugins; streams are
  `/<yyyy>/<MM>/<dd>/thing/<thing name>` (log manager 2.1.0 and later; a ':' in the thing name becomes '+').
  Configuration (2.2.0 and later): `logsUploaderConfiguration.componentLogsConfigurationMap.<component>` and
  `logsUploaderConfiguration.systemLogsConfiguration.uploadToCloudWatch`, values as strings. A component's
  stdout/stderr land in `<root>/logs/<component>.log`, which the map entry uploads with no path or regex.
  `minimumLogLevel` only filters logs written in the Greengrass JSON format: our component prints plain lines
  (all of them are uploaded), and the nucleus's WARN filter applies only if its `logging.format` is JSON.
  Uploads happen every `periodicUploadIntervalSec` (default 300 s; 60 here, so `logs --follow` is useful).
  The token exchange role needs `logs:CreateLogGroup`, `logs:CreateLogStream`, `logs:PutLogEvents` and
  `logs:DescribeLogStreams` (policies.NUCLEUS_LOG_ACTIONS already grants exactly these on /aws/greengrass/*).
* **Greengrass V1** - the group's logger definition. `Component` Lambda or GreengrassSystem, `Type`
  AWSCloudWatch or FileSystem (FileSystem takes `Space` in KB). Lambda logs go to
  `/aws/greengrass/Lambda/<region>/<account>/<function name>`, streams `<date>/<account>/<group id>/<core name>`.
  The group role needs the same four `logs:` actions (the managed AWSDeepLensLambdaFunctionAccessPolicy the
  group role carries grants them on /aws/greengrass/*).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

LOG_MANAGER = "aws.greengrass.LogManager"
LOG_MANAGER_UPLOAD_INTERVAL_S = 60
COMPONENT_LOG_LEVEL = "INFO"
SYSTEM_LOG_LEVEL = "WARN"
V1_LOCAL_LOG_SPACE_KB = 25600  # FileSystem loggers keep the device's local logs, as the DeepLens default did


@dataclass(frozen=True)
class LogSource:
    """One log group to read for a device, and how to recognise the device's streams in it."""

    group: str
    kind: str  # "component" | "system" | "function"
    stream_suffix: str | None = None  # V2: the stream ends with it
    stream_part: str | None = None  # V1: the stream contains it

    def matches(self, stream: str) -> bool:
        if self.stream_suffix is not None and not stream.endswith(self.stream_suffix):
            return False
        return self.stream_part is None or self.stream_part in stream


# ---------------------------------------------------------------------------------------------- Greengrass V2


def v2_log_sources(region: str, component: str, thing: str) -> list[LogSource]:
    suffix = "/thing/" + thing.replace(":", "+")
    return [LogSource(f"/aws/greengrass/UserComponent/{region}/{component}", "component", stream_suffix=suffix),
            LogSource(f"/aws/greengrass/GreengrassSystemComponent/{region}/System", "system", stream_suffix=suffix)]


def log_manager_configuration(component: str) -> dict[str, Any]:
    """The LogManager configuration merged by our deployments: our component at INFO, the nucleus at WARN."""
    return {
        "logsUploaderConfiguration": {
            "systemLogsConfiguration": {"uploadToCloudWatch": "true", "minimumLogLevel": SYSTEM_LOG_LEVEL},
            "componentLogsConfigurationMap": {component: {"minimumLogLevel": COMPONENT_LOG_LEVEL}},
        },
        "periodicUploadIntervalSec": str(LOG_MANAGER_UPLOAD_INTERVAL_S),
    }


def log_manager_deployment_entry(component: str, version: str) -> dict[str, Any]:
    """The LogManager's entry in a deployment's `components` (configuration reset, then ours merged)."""
    return {"componentVersion": version,
            "configurationUpdate": {"reset": [""], "merge": json.dumps(log_manager_configuration(component),
                                                                       sort_keys=True)}}


def latest_log_manager_version(greengrassv2: Any, partition: str, region: str) -> str | None:
    """The newest public LogManager version in this region (list_component_versions lists highest first).

    A deployment must name a version (`componentVersion` is required), and pinning it keeps a redeploy from
    pulling a new one behind the user's back; this is how `deploy` picks it the first time.
    """
    arn = f"arn:{partition}:greengrass:{region}:aws:components:{LOG_MANAGER}"
    try:
        page = greengrassv2.list_component_versions(arn=arn, maxResults=1)
    except greengrassv2.exceptions.ResourceNotFoundException:
        return None  # not published here (an emulator, a region without it): deploy goes on without it and says so
    versions = page.get("componentVersions") or []
    return versions[0]["componentVersion"] if versions else None


def deployed_log_manager_version(current_components: dict[str, Any] | None) -> str | None:
    """The LogManager version a device's current deployment already pins (so a redeploy keeps it)."""
    entry = (current_components or {}).get(LOG_MANAGER) or {}
    return entry.get("componentVersion")


def log_manager_version_for(greengrassv2: Any, partition: str, region: str,
                            current_components: dict[str, Any] | None) -> str | None:
    """The LogManager version a deployment should pin: the one the device's current deployment already runs
    (a redeploy changes nothing), else the newest published one; None when the service lists none."""
    return deployed_log_manager_version(current_components) or latest_log_manager_version(greengrassv2, partition,
                                                                                          region)


# ---------------------------------------------------------------------------------------------- Greengrass V1


def v1_log_sources(region: str, account: str, function: str, group_id: str) -> list[LogSource]:
    return [LogSource(f"/aws/greengrass/Lambda/{region}/{account}/{function}", "function",
                      stream_part=f"/{account}/{group_id}/")]


def v1_logger_definition_version(cloudwatch: bool) -> dict[str, Any]:
    """`InitialVersion` of the group's logger definition: local logs always, CloudWatch when enabled."""
    loggers: list[dict[str, Any]] = [
        {"Id": "deeplens-system-local", "Component": "GreengrassSystem", "Type": "FileSystem", "Level": "INFO",
         "Space": V1_LOCAL_LOG_SPACE_KB},
        {"Id": "deeplens-lambda-local", "Component": "Lambda", "Type": "FileSystem", "Level": "INFO",
         "Space": V1_LOCAL_LOG_SPACE_KB},
    ]
    if cloudwatch:
        loggers += [
            {"Id": "deeplens-lambda-cloudwatch", "Component": "Lambda", "Type": "AWSCloudWatch", "Level": "INFO"},
            {"Id": "deeplens-system-cloudwatch", "Component": "GreengrassSystem", "Type": "AWSCloudWatch",
             "Level": SYSTEM_LOG_LEVEL},
        ]
    return {"Loggers": loggers}


def create_v1_logger_definition(greengrass: Any, name: str, cloudwatch: bool,
                                token: Callable[[], str] | None = None) -> str:
    """Create the logger definition and return its LatestVersionArn, for `create_group_version(
    LoggerDefinitionVersionArn=...)`. Definitions are immutable data: the V1 project compares the version's
    `Loggers` with `v1_logger_definition_version` and creates a new one only when they differ."""
    kwargs: dict[str, Any] = {"Name": name, "InitialVersion": v1_logger_definition_version(cloudwatch)}
    if token is not None:
        kwargs["AmznClientToken"] = token()
    return greengrass.create_logger_definition(**kwargs)["LatestVersionArn"]
