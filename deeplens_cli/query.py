"""`--query`: a JMESPath expression over a command's JSON document, as the AWS CLI has it.

jmespath ships with botocore, so it costs no dependency; it is imported only when a query is given, so `--help`
and commands without `--query` never load it. The expression is compiled before the command does any work
(`compile_query`), so a typo is a usage error (exit 2) and not a failure after a deployment.
"""

from __future__ import annotations

from typing import Any

from deeplens_cli.errors import ConfigError

QUERY_HINT = "see https://jmespath.org for the syntax, e.g. --query 'devices[].name'"


def compile_query(expression: str) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        first = str(exc).strip().splitlines()[0].rstrip(": ") if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"invalid --query {expression!r}: {first}", QUERY_HINT, code="usage") from None


def apply_query(expression: str, document: Any) -> Any:
    from jmespath.exceptions import JMESPathError

    try:
        return compile_query(expression).search(document)
    except JMESPathError as exc:  # a type error in a function call shows only against real data
        raise ConfigError(f"--query {expression!r} failed on this document: {exc}", QUERY_HINT, code="usage") from None
