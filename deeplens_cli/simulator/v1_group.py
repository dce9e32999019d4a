"""What a Greengrass V1 core reads of a deployed group version: its Lambda functions (version ARN, pinned flag,
environment, handler, code digest and location) and where their packages can be downloaded from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class DeploymentProblem(Exception):
    """Why the simulated core reports a deployment as failed: a short code and a one-line message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message



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


def read_group_functions(
    greengrass: Any, lambda_client: Any, group_id: str, group_version_id: str
) -> list[DeployedFunction]:
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


