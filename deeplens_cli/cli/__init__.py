"""Click declarations only: each command's options and help, and one call into its module in `commands/`.

Every command's module (`commands/<command>.py`, entry `run_<command>(app, ...)`) follows the same shape: read
flags into settings, ask a planner (or a gatherer) in another module, apply or render, and raise a typed error
(errors.py) that `main` maps to the documented exit code. The modules are imported inside the command so
`deeplens-cli --help` stays fast. No boto3 here.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from deeplens_cli.cli.app import App
from deeplens_cli.cli.cli_options import GlobalOptionsGroup, detailed_exitcode_option
from deeplens_cli.cli.output import Reporter, default_output
from deeplens_cli.cli.printable import printable
from deeplens_cli.errors import EXIT_CHANGES_PENDING, EXIT_ERROR, EXIT_USAGE, DeeplensError, ProblemsReported
from deeplens_cli.targets.names import TARGET_NAMES

pass_app = click.make_pass_decorator(App)


@click.group(cls=GlobalOptionsGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="deeplens-edge-cli")
def cli() -> None:
    """Provision and deploy edge face detection: a DeepLens (Greengrass V1) or any Greengrass V2 camera
    detects faces locally and uploads only face crops to S3.

    \b
    Start with:  deeplens-cli demo          (the whole flow on an embedded emulator)
    Real account: register-roles, register-device, deploy, status  (see README.md)
    Global options (--profile, --region, --output, --query, ...) go before or after the command.
    """
    # The global options reach the App through GlobalOptionsGroup/GlobalOptionsCommand (cli_options.py); `main`
    # passes its App in as the context object, so it can still render an error after the command.


# ---------------------------------------------------------------------------------------------- account


@cli.command("register-roles")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@detailed_exitcode_option
@click.option(
    "--s3-full-access",
    is_flag=True,
    help="Attach AmazonS3FullAccess to the group role, as the workshop did (default: PutObject on bucket/prefix only).",
)
@click.option("--bucket", help="S3 bucket for face crops (overrides the config's bucket).")
@click.option("--save/--no-save", default=None,
              help="Record --bucket in deeplens.yaml without asking (default: ask on a terminal).")
@pass_app
def register_roles(app: App, dry_run: bool, s3_full_access: bool, bucket: str | None, save: bool | None) -> None:
    """Create the five DeepLens IAM roles, the S3 grant, the bucket and the Greengrass V2 role alias."""
    from deeplens_cli.commands.register_roles import run_register_roles

    run_register_roles(app, dry_run, bucket=bucket, s3_full_access=s3_full_access, save=save)


# ---------------------------------------------------------------------------------------------- devices


@cli.command("register-device")
@click.option("--name", "names", multiple=True, help="Device name (letters, digits, hyphens); repeat for many devices.")
@click.option("--names-file", type=click.Path(dir_okay=False), default=None,
              help="Also register the names in this file (one a line; # comments).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where to write the device bundle (default: ./devices/NAME; with many names, OUT/NAME).")
@click.option("--greengrass", type=click.Choice(TARGET_NAMES), default=None,
              help="Target: v2 (default; any Linux camera) or v1 (DeepLens classic, emulators only since 2026-10-07).")
@click.option("--fleet", help="Greengrass V2: also add the device to this IoT thing group.")
@click.option("--claim", is_flag=True,
              help="With --fleet: one bundle any number of cameras install with; each registers itself (no --name).")
@click.option("--allow", "allow", multiple=True, metavar="NAMES",
              help="With --claim: names that may register by claim, once each (repeatable or a comma list).")
@click.option("--allow-file", type=click.Path(dir_okay=False), default=None,
              help="With --claim: also allow the names in this file (one a line; # comments).")
@click.option("--rotate", is_flag=True, help="With --claim: issue a new claim certificate and revoke the old one.")
@click.option("--device-profile", type=click.Choice(("auto", "generic", "deeplens")), default=None,
              help="Greengrass V2: what the device is; deeplens = a stock AWS DeepLens (default: "
                   "greengrass.device_profile, auto = detected on the device).")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@detailed_exitcode_option
@pass_app
def register_device(app: App, names: tuple[str, ...], names_file: str | None, out_dir: str | None,
                    greengrass: str | None, fleet: str | None, claim: bool, allow: tuple[str, ...],
                    allow_file: str | None, rotate: bool, device_profile: str | None, dry_run: bool) -> None:
    """Register devices: IoT thing, certificate, policy and Greengrass resources; write each one's bundle."""
    from deeplens_cli.commands.register_device import run_register_device

    app.override(greengrass__device_profile=device_profile)  # the bundle's install.sh (targets/greengrass_v2)
    run_register_device(app, names=names, names_file=names_file, out_dir=out_dir, target=greengrass, fleet=fleet,
                        claim=claim, dry_run=dry_run, allow=allow, allow_file=allow_file, rotate=rotate)


@cli.command("publish")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@detailed_exitcode_option
@click.option(
    "--greengrass",
    type=click.Choice(TARGET_NAMES),
    default=None,
    help="Publish the Lambda function (v1) or the Greengrass V2 component (v2); default: greengrass.default_target.",
)
@pass_app
def publish(app: App, dry_run: bool, greengrass: str | None) -> None:
    """Package the edge function and publish it (skipped when unchanged)."""
    from deeplens_cli.commands.publish import run_publish

    run_publish(app, target=greengrass, dry_run=dry_run)


@cli.command("deploy")
@click.option("--device", help="Device name (default: the config's device).")
@click.option("--fleet", help="Greengrass V2: deploy to every device of this IoT thing group.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@detailed_exitcode_option
@click.option("--no-wait", is_flag=True, help="Start the deployment and return.")
@click.option("--timeout", type=click.IntRange(1, 86400), default=None,
              help="Seconds to wait (default: deploy.timeout_s).")
@click.option("--force", is_flag=True, help="Deploy again even when nothing changed.")
@click.option("--rollout-per-minute", type=click.IntRange(1, 1000), default=None,
              help="Fleet rollout rate (devices per minute).")
@click.option("--abort-failure-percent", type=click.FloatRange(0, 100), default=None,
              help="Fleet: cancel the rollout when this percentage of devices fail.")
@pass_app
def deploy(app: App, device: str | None, fleet: str | None, dry_run: bool, no_wait: bool, timeout: int | None,
           force: bool, rollout_per_minute: int | None, abort_failure_percent: float | None) -> None:
    """Publish the edge function and deploy the project to a device; wait for the verdict."""
    from deeplens_cli.commands.deploy import run_deploy

    run_deploy(app, device_name=device, fleet=fleet, dry_run=dry_run, wait=not no_wait, force=force,
               rollout_per_minute=rollout_per_minute, abort_failure_percent=abort_failure_percent, timeout_s=timeout)


def _fleet_view_options(command: Any) -> Any:
    """--details, --status, --max-items, --starting-token: how `devices` and `status` show a large fleet."""
    for option in reversed(
        (
            click.option(
                "--details",
                is_flag=True,
                help="Read every device in full (default: bulk reads; problems in full).",
            ),
            click.option("--status", "health", type=click.Choice(("HEALTHY", "UNHEALTHY"), case_sensitive=False),
                         default=None, help="Only healthy devices, or only those with a problem."),
            click.option("--max-items", type=click.IntRange(1, 100000), default=None,
                         help="Show at most this many devices and print a NextToken for the rest."),
            click.option(
                "--starting-token", default=None, help="Continue after the page that printed this NextToken."
            ),
        )
    ):
        command = option(command)
    return command


@cli.command("status")
@click.option("--device", help="Only this device (default: every device).")
@_fleet_view_options
@pass_app
def status(app: App, device: str | None, details: bool, health: str | None, max_items: int | None,
           starting_token: str | None) -> None:
    """Roles, bucket, function, project, devices, last deployment and recent uploads. Exit 1 if anything is wrong."""
    from deeplens_cli.commands.status import run_status

    run_status(app, device_name=device, details=details, health=health, max_items=max_items,
               starting_token=starting_token)


@cli.command("devices")
@_fleet_view_options
@pass_app
def devices(app: App, details: bool, health: str | None, max_items: int | None, starting_token: str | None) -> None:
    """Registered devices, their target, health and last deployment (bulk reads: pages, not devices)."""
    from deeplens_cli.commands.devices import run_devices

    run_devices(app, details=details, health=health, max_items=max_items, starting_token=starting_token)


@cli.command("destroy")
@click.option("--device", help="Only this device (default: everything deeplens-cli created).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@click.option("--delete-roles", is_flag=True, help="Also delete the IAM roles (only when no device is left).")
@click.option("--delete-bucket", is_flag=True, help="Also delete the bucket AND ALL FACE CROPS in it.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@detailed_exitcode_option
@pass_app
def destroy(app: App, device: str | None, yes: bool, delete_roles: bool, delete_bucket: bool, dry_run: bool) -> None:
    """Remove what deeplens-cli created, in safe order. Keeps face crops unless --delete-bucket."""
    from deeplens_cli.commands.destroy import run_destroy

    run_destroy(app, device_name=device, yes=yes, delete_roles=delete_roles, delete_bucket=delete_bucket,
                dry_run=dry_run)


# ---------------------------------------------------------------------------------------------- tools


@cli.command("demo")
@click.option("--device", default="MyDevice", show_default=True, help="Name of the simulated device.")
@click.option(
    "--source",
    help="Frames: a video FILE, a DIR of images or webcam:N (default: a clip built from bundled face images).",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo-out", show_default=True,
              help="Where to write the crops, a contact sheet and annotated frames.")
@click.option("--max-frames", type=click.IntRange(1, 100000), default=None,
              help="Frames the simulated device processes.")
@click.option("--keep-running", is_flag=True, help="Keep the emulator up afterwards and print how to use it.")
@click.option("--greengrass", type=click.Choice(TARGET_NAMES), default=None,
              help="Simulated device: v2 (a Greengrass V2 core device running the published component) or v1 (a "
                   "DeepLens, Greengrass V1); default: greengrass.default_target (v2).")
@click.option("--device-profile", type=click.Choice(("generic", "deeplens")), default=None,
              help="The V2 device: generic (default; a Linux camera) or deeplens (a stock AWS DeepLens: awscam "
                   "camera and face model).")
@pass_app
def demo(app: App, device: str, source: str | None, out_dir: str, max_frames: int | None, keep_running: bool,
         greengrass: str | None, device_profile: str | None) -> None:
    """The whole flow on an embedded AWS emulator with a simulated device: no account, no camera."""
    from deeplens_cli.commands.demo import run_demo

    run_demo(app, device_name=device, source=source, out_dir=out_dir, max_frames=max_frames, keep_running=keep_running,
             target=greengrass, device_profile=device_profile)


@cli.command("init")
@click.option("--bucket", help="S3 bucket for face crops (bucket names are global: choose your own).")
@click.option("--region", "init_region", help="AWS region to record.")
@click.option("--profile", "init_profile", help="AWS named profile to record.")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@pass_app
def init(app: App, bucket: str | None, init_region: str | None, init_profile: str | None, force: bool) -> None:
    """Write a commented deeplens.yaml (or --config PATH) so later commands need no flags."""
    from deeplens_cli.commands.init import InitChoices, run_init

    run_init(app, InitChoices(bucket=bucket, region=init_region, profile=init_profile), force)


@cli.command("doctor")
@pass_app
def doctor(app: App) -> None:
    """Preflight: credentials, region, which Greengrass targets answer, Lambda runtime, bucket.
    Exit 5 on a failed check."""
    from deeplens_cli.commands.doctor import run_doctor

    run_doctor(app)


# ---------------------------------------------------------------------------------------------- after deploy


@cli.command("faces")
@click.option("--device", help="Only this device's crops (default: every device).")
@click.option("--since", help="Only crops newer than this: 10m, 1h, 2d, or an ISO time (UTC unless it has an offset).")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="Newest crops to show.")
@click.option("--download", "download_dir", type=click.Path(file_okay=False),
              help="Save the JPEGs (0600) and a contact_sheet.png into this folder (0700); existing files are kept.")
@pass_app
def faces(app: App, device: str | None, since: str | None, limit: int, download_dir: str | None) -> None:
    """The face crops devices uploaded, newest first: time, device, confidence, track."""
    from deeplens_cli.commands.faces import run_faces

    run_faces(app, device_name=device, since=since, limit=limit, download_dir=download_dir)


@cli.command("logs")
@click.option("--device", required=True, help="Device name.")
@click.option("--since", help="Start this far back: 10m, 1h, 2d, or an ISO time (default: 1h).")
@click.option("--follow", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--filter", "filter_text", help="Only events containing this text.")
@pass_app
def logs(app: App, device: str, since: str | None, follow: bool, filter_text: str | None) -> None:
    """The device's component (V2) or function (V1) log from CloudWatch Logs, one line per event."""
    from deeplens_cli.commands.logs import run_logs

    run_logs(app, device_name=device, since=since, follow=follow, filter_text=filter_text)


@cli.command("watch")
@click.option("--device", required=True, help="Device name.")
@click.option("--count", type=click.IntRange(1, 1000000), default=None, help="Stop after this many messages.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 86400), default=None,
              help="Stop after this many seconds.")
@click.option("--broker", "broker_url", help="A local broker instead of AWS IoT Core: mqtt://HOST:PORT (the demo).")
@pass_app
def watch(app: App, device: str, count: int | None, timeout_s: float | None, broker_url: str | None) -> None:
    """The device's live result messages (faces, scores, fps, uploads); JSON lines with --output json."""
    from deeplens_cli.commands.watch import run_watch

    run_watch(app, device_name=device, count=count, timeout_s=timeout_s, broker_url=broker_url)


# ---------------------------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every error to one line on stderr and its exit code (traceback only with -v).

    With `--output json` an error also prints `{"error": {"code", "message", "hint"}}` on stdout, unless the
    command already printed its document (doctor and status report their own failures in it): stdout then holds
    exactly one JSON document on every exit. With `--dry-run --detailed-exitcode` a run that would change something
    exits 2, and every error exits 1 (a usage error too), so 2 means "changes pending" and nothing else.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    verbose = any(arg in ("-v", "--verbose") for arg in args)
    # Click may fail before it has parsed `--output` (an unknown option, a bad value before it, or after the group
    # applied only the options before the command): errors then follow a plain scan of the arguments, which reads
    # them as click does, so a usage error in `--output json` mode is a JSON document too (the only place the raw
    # arguments are read).
    wants_json = _asks_for_json(args)
    app = App(reporter=Reporter(output="json" if wants_json else default_output(), verbose=verbose))
    try:
        result = cli.main(args=args, prog_name="deeplens-cli", standalone_mode=False, obj=app)
        if app.detailed_exitcode and app.changes_pending:
            sys.exit(EXIT_CHANGES_PENDING)
        sys.exit(result if isinstance(result, int) else 0)  # click returns Exit codes when not standalone
    except click.exceptions.Abort as exc:  # click turns Ctrl-C into Abort (raised from the KeyboardInterrupt)
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        _fail(app, DeeplensError(_INTERRUPTED if interrupted else "aborted", code="interrupted"), 130, verbose,
              prefix="", wants_json=wants_json)
    except click.exceptions.Exit as exc:
        sys.exit(_error_exit_code(app, args, exc.exit_code))
    except click.ClickException as exc:
        code = exc.exit_code if exc.exit_code else EXIT_USAGE
        command = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "deeplens-cli"
        error = DeeplensError(exc.format_message(), f"see {command} --help", code="usage")
        if not wants_json:
            exc.show()  # click's usage, then its error line, for a person at a terminal
            sys.exit(_error_exit_code(app, args, code))
        _fail(app, error, _error_exit_code(app, args, code), verbose=False, wants_json=True)
    except ProblemsReported as exc:  # status: the problems are in the document or table it printed
        sys.exit(_error_exit_code(app, args, exc.exit_code))
    except DeeplensError as exc:
        _fail(app, exc, _error_exit_code(app, args, exc.exit_code), verbose, wants_json=wants_json)
    except KeyboardInterrupt:
        _fail(app, DeeplensError(_INTERRUPTED, code="interrupted"), 130, verbose, prefix="", wants_json=wants_json)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, traceback only with -v
        from deeplens_cli.aws import translate_error

        translated = translate_error(exc)
        if translated is not None:
            _fail(app, translated, _error_exit_code(app, args, translated.exit_code), verbose, wants_json=wants_json)
        _fail(app, DeeplensError(f"unexpected error: {exc.__class__.__name__}: {exc}", "rerun with -v and report it",
                                 code="unexpected"), EXIT_ERROR, verbose, wants_json=wants_json)


_INTERRUPTED = "interrupted: nothing more was changed; re-running the command converges"


def _error_exit_code(app: App, args: list[str], code: int) -> int:
    """With --detailed-exitcode, 2 is reserved for "changes pending": an error that would exit 2 exits 1."""
    detailed = app.detailed_exitcode or "--detailed-exitcode" in args  # also when click failed before parsing it
    return EXIT_ERROR if detailed and code == EXIT_USAGE else code


def _asks_for_json(args: list[str]) -> bool:
    """Whether the run is in `--output json` mode, read as click reads it: the last `--output` on the command line
    wins (after the command beats before it, a repeated flag its earlier use), else $DEEPLENS_OUTPUT."""
    chosen = None
    for index, arg in enumerate(args):
        if arg == "--output" and index + 1 < len(args):
            chosen = args[index + 1]
        elif arg.startswith("--output="):
            chosen = arg.removeprefix("--output=")
    return (chosen if chosen is not None else os.environ.get("DEEPLENS_OUTPUT")) == "json"


def _emit_error(app: App, error: DeeplensError, wants_json: bool = False) -> None:
    reporter = app.reporter
    if reporter.has_emitted_json:
        return  # the command printed its document (doctor, status): a second one would break stdout
    if wants_json and reporter.output != "json":  # click failed before the command's --output reached the App
        reporter = app.reporter = Reporter(output="json", verbose=reporter.verbose, stdout=reporter.stdout,
                                           stderr=reporter.stderr)
    if reporter.output == "json":
        reporter.query = None  # the error document is printed whole: a query was meant for the result
        reporter.emit_json(error.to_document())


def _fail(app: App, error: DeeplensError, code: int, verbose: bool, prefix: str = "error: ",
          wants_json: bool = False) -> None:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    _emit_error(app, error, wants_json)
    click.echo(printable(f"{prefix}{error.one_line()}"), err=True)  # it may quote what a device reported
    sys.exit(code)
