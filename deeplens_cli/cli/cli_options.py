"""Global options that work before and after the command, as the AWS CLI's do, with click's own machinery.

`deeplens-cli --region eu-west-1 status` and `deeplens-cli status --region eu-west-1` mean the same. The group and
every command are built from `GlobalOptionsGroup` / `GlobalOptionsCommand`, which add the same option list
(`GLOBAL_OPTIONS`) to their parameters and, before running the callback, take those values out of the click context
and hand them to the `App`. The group applies everything it parsed (flags, then environment variables, then
defaults); a command then overrides only what was typed after it on the command line. So the precedence is the same
in both positions: flags > environment > config file > defaults, and when a flag is given twice the one after the
command wins. A command that has an option of its own with the same spelling (`init --region`, the region to record)
keeps its own; the global one is then only accepted before the command.

`--detailed-exitcode` is a per-command option (only planning commands have it); its value goes to the App too, so
the command functions keep their signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click
from click.core import ParameterSource

from deeplens_cli.cli.app import App
from deeplens_cli.cli.output import OUTPUT_FORMATS


@dataclass(frozen=True)
class GlobalOption:
    """One global option: its declarations, and its click settings before the command (`group`) and after it."""

    name: str
    decls: tuple[str, ...]
    help: str
    group_settings: dict[str, Any]
    is_flag: bool = False
    type: Any = None

    def make(self, after_command: bool) -> click.Option:
        settings: dict[str, Any] = {"help": self.help, "is_flag": self.is_flag}
        if self.type is not None:
            settings["type"] = self.type
        if after_command:
            # No envvar and no default after the command: only what was typed there may override the group's value.
            settings["show_envvar"] = False
        else:
            settings.update(self.group_settings)
        return click.Option([*self.decls, f"global_{self.name}"] if after_command else [*self.decls, self.name],
                            **settings)


GLOBAL_OPTIONS: tuple[GlobalOption, ...] = (
    GlobalOption("config_path", ("--config",), "Config file (default: ./deeplens.yaml, or $DEEPLENS_CONFIG).",
                 {"envvar": "DEEPLENS_CONFIG"}, type=click.Path(dir_okay=False)),
    GlobalOption("profile", ("--profile",), "AWS named profile (default: the standard credential chain).", {}),
    GlobalOption("region", ("--region",), "AWS region (default: the profile's or AWS_REGION).", {}),
    GlobalOption("endpoint_url", ("--endpoint-url",), "Send every AWS call to this endpoint (an emulator).", {}),
    GlobalOption("output", ("--output",),
                 "table (default on a terminal), text (default when piped: tab-separated lines for cut/awk/grep) "
                 "or json (stdout holds exactly one JSON document); or $DEEPLENS_OUTPUT.",
                 {"envvar": "DEEPLENS_OUTPUT"}, type=click.Choice(OUTPUT_FORMATS)),
    GlobalOption("query", ("--query",), "JMESPath expression applied to the JSON document before printing "
                 "(any --output), e.g. --query 'devices[].name'.", {}),
    GlobalOption("verbose", ("-v", "--verbose"), "Debug output and tracebacks on errors.", {}, is_flag=True),
)

GLOBAL_NAMES = tuple(option.name for option in GLOBAL_OPTIONS)

DETAILED_EXITCODE_NEEDS_DRY_RUN = ("--detailed-exitcode needs --dry-run: it tells a CI step whether a run would "
                                   "change anything (0 no, 2 yes)")


class _TakesGlobalOptions:
    """Mixin: add the global options to a command's parameters and hand their values to the App on invoke."""

    after_command = True

    def _add_global_options(self) -> None:
        params: list[click.Parameter] = self.params  # type: ignore[attr-defined]
        own = {spelling for param in params for spelling in (*param.opts, *param.secondary_opts)}
        for option in GLOBAL_OPTIONS:
            if own.isdisjoint(option.decls):
                params.append(option.make(self.after_command))

    def invoke(self, ctx: click.Context) -> Any:
        given: dict[str, Any] = {}
        for name in GLOBAL_NAMES:
            key = f"global_{name}" if self.after_command else name
            if key not in ctx.params:
                continue  # the command has an option of its own with this spelling
            value = ctx.params.pop(key)
            if not self.after_command or ctx.get_parameter_source(key) is ParameterSource.COMMANDLINE:
                given[name] = value

        app = ctx.ensure_object(App)
        app.apply_global_options(given)
        if app.detailed_exitcode and ctx.params.get("dry_run") is False:  # before any AWS call, not after the reads
            raise click.UsageError(DETAILED_EXITCODE_NEEDS_DRY_RUN, ctx)
        return super().invoke(ctx)  # type: ignore[misc]


class GlobalOptionsCommand(_TakesGlobalOptions, click.Command):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_global_options()


class GlobalOptionsGroup(_TakesGlobalOptions, click.Group):
    """The `deeplens-cli` group: global options before the command, and every command built to accept them after."""

    after_command = False
    command_class = GlobalOptionsCommand

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_global_options()


def detailed_exitcode_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """`--detailed-exitcode` for a planning command: with `--dry-run`, exit 0 when nothing would change and 2 when
    something would (Terraform's convention); every error then exits 1, so 2 means only "changes pending"."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(App).detailed_exitcode = True

    return click.option("--detailed-exitcode", is_flag=True, expose_value=False, callback=remember,
                        help="With --dry-run: exit 0 when nothing would change, 2 when something would (1: error).")(
        function)
