"""What the targets' Lambda functions share: how a function's configuration is compared with the one we want, and
how a CreateFunction retried after a lost answer tells our function from someone else's.

Greengrass V1's edge function (`greengrass_v1/lambda_publish.py`) and Greengrass V2's pre-provisioning hook
(`greengrass_v2/claim_guard.py`) are both created, compared and kept current this way.
"""

from __future__ import annotations

from typing import Any, Mapping

from deeplens_cli.aws import maybe
from deeplens_cli.engine.plan import AlreadyExists


def configuration_differences(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Names of the configuration fields of `desired` the function does not have (Lambda reports more than we set;
    Environment is compared by its variables)."""
    differences = []
    for key, value in desired.items():
        if key == "Environment":
            if (current.get("Environment") or {}).get("Variables", {}) != value["Variables"]:
                differences.append("environment")
        elif current.get(key) != value:
            differences.append(key.lower())
    return differences


def function_as_created(code_sha256_b64: str, desired: Mapping[str, Any]) -> AlreadyExists:
    """CreateFunction retried after a lost answer (Lambda answers the retry ResourceConflictException "Function
    already exist"): the function that exists is ours when it has our code and configuration."""
    def read(ctx: Any, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        found = maybe(lambda: ctx.client("lambda").get_function(FunctionName=params["FunctionName"]),
                      ("ResourceNotFoundException",))
        current = (found or {}).get("Configuration") or {}
        if current.get("CodeSha256") != code_sha256_b64 or configuration_differences(current, desired):
            return None
        return current

    return AlreadyExists(("ResourceConflictException",), read)
