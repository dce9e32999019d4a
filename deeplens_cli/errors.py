"""Errors that reach the user, each carrying its documented exit code.

Every failure the CLI reports is one of these: a one-line message naming the cause plus a hint. `cli.main`
turns them into that line on stderr and the exit code below; a traceback is printed only with `-v`.
Keeping the codes here (not scattered in commands) is what makes the exit-code table in README.md true.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # anything else: AWS errors, missing resources, `status` found a problem
EXIT_USAGE = 2  # bad configuration or usage (click uses 2 for usage errors too)
EXIT_CHANGES_PENDING = 2  # only with `--dry-run --detailed-exitcode` (Terraform's convention); errors then exit 1
EXIT_DEPLOYMENT_FAILED = 3
EXIT_DEPLOYMENT_TIMEOUT = 4
EXIT_PREFLIGHT_FAILED = 5


class DeeplensError(Exception):
    """A failure explained in one line: what went wrong, and what to do about it.

    `code` is the stable, machine-readable name of the kind of failure: with `--output json` it is
    `{"error": {"code": ...}}` on stdout, so a CI script can branch on it without parsing the message.
    """

    exit_code = EXIT_ERROR
    code = "error"

    def __init__(self, message: str, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def one_line(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def to_document(self) -> dict[str, dict[str, str | None]]:
        """The one JSON document printed on stdout for this error with `--output json`."""
        return {"error": {"code": self.code, "message": self.message, "hint": self.hint}}


class ConfigError(DeeplensError):
    """Bad configuration or usage: names the key or flag and what is expected."""

    exit_code = EXIT_USAGE
    code = "config"


class DeploymentFailed(DeeplensError):
    exit_code = EXIT_DEPLOYMENT_FAILED
    code = "deployment_failed"


class DeploymentTimedOut(DeeplensError):
    exit_code = EXIT_DEPLOYMENT_TIMEOUT
    code = "deployment_timeout"


class PreflightFailed(DeeplensError):
    exit_code = EXIT_PREFLIGHT_FAILED
    code = "preflight_failed"


class ProblemsReported(DeeplensError):
    """A read-only command (`status`) found problems and has already reported them in its own output (the table,
    or its one JSON document): `cli.main` exits with the code and prints nothing more, no error line and no
    error document, so stdout still holds exactly one document."""

    exit_code = EXIT_ERROR
    code = "problems_reported"
