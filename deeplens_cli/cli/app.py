"""What every command works with: settings, the AWS context and the reporter, created on first use.

Commands stay thin: they call a planner, then `pipeline.run_plan`, then render. Settings and the boto3 session are made
lazily so `--help` and usage errors never import boto3 or read credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from deeplens_cli.cli.output import Reporter, default_output

if TYPE_CHECKING:
    from deeplens_cli.aws import AwsContext
    from deeplens_cli.settings.config import Settings


@dataclass
class App:
    config_path: str | None = None
    global_flags: dict[str, Any] = field(default_factory=dict)  # dotted key -> value from --profile/--region/...
    reporter: Reporter = field(default_factory=Reporter)
    environ: Mapping[str, str] | None = None
    sleep: Callable[[float], None] | None = None  # injected by tests: no real waiting
    detailed_exitcode: bool = False  # --detailed-exitcode: a dry run with changes pending exits 2
    changes_pending: bool = False  # a dry run found changes (main turns it into exit 2 with --detailed-exitcode)
    global_options: dict[str, Any] = field(default_factory=dict)  # --profile, --output, ... as parsed so far
    _settings: Settings | None = None
    _ctx: AwsContext | None = None

    def apply_global_options(self, given: Mapping[str, Any]) -> None:
        """Take the global options parsed before the command, then those typed after it (they win).

        The AWS settings join `global_flags` (flags > environment > config file, in `config.load_settings`); the
        output options rebuild the reporter, and a `--query` is compiled here, so a typo fails before any work.
        """
        if not given:
            return
        self.global_options = {**self.global_options, **given}
        chosen = self.global_options
        self.config_path = chosen.get("config_path")
        flags = {key: chosen.get(key) for key in ("profile", "region", "endpoint_url")}
        self.global_flags = {**self.global_flags, **{k: v for k, v in flags.items() if v is not None}}
        self._settings = None
        self._ctx = None
        query = chosen.get("query")
        self.reporter = Reporter(output=chosen.get("output") or default_output(), verbose=bool(chosen.get("verbose")),
                                 query=query)
        if query is not None:
            from deeplens_cli.cli.query import compile_query  # jmespath loads only with --query

            compile_query(query)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from deeplens_cli.settings.config import load_settings

            self._settings = load_settings(self.config_path, self.environ, self.global_flags)
        return self._settings

    def override(self, **flags: Any) -> None:
        """Apply command-level flags (dotted keys written with '__': function__name=...) over the settings.

        Flags join the global ones and settings are re-read, so a flag also wins over an invalid value in a lower
        layer (a bad DEEPLENS_BUCKET does not fail a command given a good --bucket).
        """
        given = {k.replace("__", "."): v for k, v in flags.items() if v is not None}
        if given:
            self.global_flags = {**self.global_flags, **given}
            self._settings = None
            self._ctx = None

    @property
    def ctx(self) -> AwsContext:
        if self._ctx is None:
            from deeplens_cli.aws import make_context

            self._ctx = make_context(self.settings, sleep=self.sleep)
        return self._ctx
