"""The standard AWS environment, checked before the first call with the rules the flags follow.

botocore reads `AWS_ENDPOINT_URL[_<SERVICE>]`, `AWS_DEFAULT_REGION`, `~/.aws/config` and the credential chain
itself, lazily, and reports what it dislikes as exceptions in the middle of a command (`ValueError: Invalid
endpoint`, `InvalidRegionError`, `PartialCredentialsError`, the `FileNotFoundError` of a missing
`credential_process` helper). These checks run once, when the AwsContext is made, and turn each into one line
naming the variable or file, exit 2: the same treatment `--endpoint-url` and `--region` get.

This module belongs to the configuration layer: it reads the environment and the AWS config files and raises
ConfigError, and imports nothing of aws.py, which calls it when it makes a session.

`AWS_REGION` is honoured as the AWS CLI v2 and the other AWS SDKs do (it wins over `AWS_DEFAULT_REGION` and the
profile's region); botocore itself reads only `AWS_DEFAULT_REGION`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from deeplens_cli.errors import ConfigError, DeeplensError
from deeplens_cli.settings.settings_schema import check_endpoint_url, check_region

if TYPE_CHECKING:
    from deeplens_cli.settings.config import Settings

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")  # in precedence order


def check_endpoint_variables(environ: Mapping[str, str]) -> None:
    """Every AWS_ENDPOINT_URL[_<SERVICE>] botocore would use must be an http(s) URL with a valid port."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return
    for name in sorted(environ):
        if name == ENDPOINT_VARIABLE or name.startswith(ENDPOINT_VARIABLE + "_"):
            value = environ[name]
            if value == "":
                continue
            problem = check_endpoint_url(value)
            if problem:
                raise ConfigError(f"{name} is {value!r}, expected {problem}",
                                  f"fix or unset {name} (the same rules as --endpoint-url)", code="invalid_endpoint")


def resolved_region(core: Any, settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The region to use: deeplens settings (flag, DEEPLENS_REGION, file) > AWS_REGION > AWS_DEFAULT_REGION >
    the profile's region. Each is checked, and a bad one is named with where it came from."""
    if settings["region"]:
        return settings["region"]  # validated with the settings
    for name in REGION_VARIABLES:
        value = environ.get(name)
        if value:
            _require_region(value, name, f"fix or unset {name}")
            return value
    if settings["profile"]:
        core.set_config_variable("profile", settings["profile"])
    value = core.get_scoped_config().get("region")
    if value:
        profile = settings["profile"] or environ.get("AWS_PROFILE") or "default"
        config_file = core.get_config_variable("config_file")
        _require_region(value, f"the region of profile '{profile}' in {config_file}", f"fix region in {config_file}")
    return value or None


def _require_region(value: str, where: str, hint: str) -> None:
    problem = check_region(value)
    if problem:
        raise ConfigError(f"{where} is {value!r}, expected {problem}", hint, code="invalid_region")


def credentials_problem(session: Any) -> None:
    """Resolve the credential chain once, so its configuration mistakes are named before any work starts.

    No credentials at all is not raised here: the first call says "no AWS credentials found" with its context.
    """
    import botocore.exceptions as bce

    try:
        session.get_credentials()
    except bce.PartialCredentialsError as exc:
        missing = exc.kwargs.get("cred_var", "a value")
        provider = exc.kwargs.get("provider", "?")
        where = "the environment" if provider == "env" else f"the {provider} credentials"
        raise ConfigError(f"AWS credentials in {where} are incomplete: {missing} is missing",
                          "set the access key and its secret together, or unset both to use a profile",
                          code="partial_credentials") from None
    except bce.ConfigParseError as exc:
        raise config_parse_error(exc) from None
    except OSError as exc:
        helper = _credential_process(session)
        if helper is None:
            raise
        raise ConfigError(f"the credential_process helper {helper!r} cannot be run: "
                          f"{exc.strerror or exc.__class__.__name__}",
                          "install the helper, or fix credential_process in the profile (AWS_CONFIG_FILE)",
                          code="credential_process_failed") from None
    except bce.CredentialRetrievalError as exc:
        raise DeeplensError(f"AWS credentials could not be retrieved: {exc}",
                            "run the credential_process helper by hand to see why, or log in again",
                            code="credentials_refresh_failed") from None


def config_parse_error(exc: BaseException) -> ConfigError:
    """The one line for an AWS config file botocore cannot parse (botocore's ConfigParseError), wherever it is
    first read: making the session, resolving credentials, or a later call (aws.translate_error)."""
    path = getattr(exc, "kwargs", {}).get("path", "the AWS config file")
    return ConfigError(f"AWS config file {path} cannot be parsed",
                       "fix its syntax (sections are [default] or [profile NAME], then key = value lines), "
                       "or point AWS_CONFIG_FILE at a valid file", code="aws_config_invalid")


def _credential_process(session: Any) -> str | None:
    try:
        return session._session.get_scoped_config().get("credential_process")
    except Exception:  # noqa: BLE001 - only used to word the message
        return None
