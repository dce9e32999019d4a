"""``python -m edge_function run ...``: the edge loop off-device and as a Greengrass V2 component.

Every setting of ``settings.py`` has a flag here (generated from the same table, so flags, environment
variables and documentation cannot drift apart); a flag overrides its ``DEEPLENS_*`` variable.

Exit codes: 0 after a clean stop (``--max-frames`` reached, finite source exhausted, SIGTERM/SIGINT)
with every crop uploaded; 1 when crops are left in the spool after the flush deadline, or on an
unexpected start-up error (one line; the traceback with ``--log-level DEBUG``); 2 for a bad setting
or a bad ``--source``/``--detector`` (one line naming it).

Signal handlers are installed here only: this is the one entry point that owns the main thread (the
Greengrass V1 Lambda runtime owns it in ``lambda_function.py``). The loop runs in its own thread and the main
thread only waits (``loop.run_until_stop``), so SIGTERM/SIGINT stops the process within about
``flush_timeout_s`` even while the detector spends seconds on one frame; the Greengrass V2 nucleus kills the
component 5 s after SIGTERM and Run sets ``DEEPLENS_FLUSH_TIMEOUT_S=3``. When the loop thread is still inside a
detector call at exit, the process ends with ``os._exit`` (after flushing its output) instead of the interpreter's
shutdown, which would have to stop a thread inside native (OpenCV) code.
"""

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any, List, Mapping, Optional

from edge_function import __version__, settings

LOG = logging.getLogger("edge_function")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edge_function",
        description="Edge face gate: detect faces locally, upload only face crops to S3.",
    )
    parser.add_argument("--version", action="version", version="edge_function " + __version__)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the capture loop",
                              description="Run the capture loop. Each flag overrides its environment variable.")
    for option in settings.OPTIONS:
        run.add_argument(option.flag, dest=option.name, default=None, metavar="VALUE",
                         help="%s [env %s]" % (option.help, option.env))
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def import_awscam(config: settings.Settings) -> Any:
    """The device SDK when the settings use it, imported before anything loads cv2 (DeepLens quirk)."""
    if "awscam" not in (config.source, config.detector):
        return None
    import awscam  # raises ImportError off a DeepLens

    return awscam


def main(argv: Optional[List[str]] = None, env: Optional[Mapping[str, str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        parser.print_usage(sys.stderr)
        print("error: missing command: run", file=sys.stderr)
        return 2
    env = os.environ if env is None else env
    try:
        config = settings.load_settings(env, {option.name: getattr(args, option.name) for option in settings.OPTIONS})
    except settings.SettingsError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    try:
        awscam_module = import_awscam(config)
    except ImportError:
        print("error: --source/--detector awscam needs the awscam module, which exists only on a DeepLens; "
              "use --source FILE|DIR|webcam:N --detector opencv", file=sys.stderr)
        return 2

    from edge_function import loop  # after awscam: loads cv2-using modules

    try:
        components = loop.open_source_and_detector(config, awscam_module)
    except ValueError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    except Exception as error:
        LOG.debug("start-up failed", exc_info=True)
        print("error: cannot start: %s" % error, file=sys.stderr)
        return 1
    try:
        edge = loop.build_edge_loop(config, env, awscam_module=awscam_module)
    except Exception as error:
        LOG.debug("start-up failed", exc_info=True)
        components[0].close()
        print("error: cannot start: %s" % error, file=sys.stderr)
        return 1
    edge.adopt(components)

    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        LOG.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    LOG.info("edge loop %s: source=%s detector=%s bucket=%s device=%s", __version__, config.source,
             config.detector, config.bucket, config.device)
    if loop.run_until_stop(edge, stop, config.flush_timeout_s):
        return 0
    print("error: %d crops not uploaded; they wait in %s for the next run"
          % (edge.uploader.stats()["spool_items"], config.spool_dir), file=sys.stderr)
    return 1


def exit_process(code: int) -> None:
    """Exit with ``code``; at once (``os._exit``, output flushed first) if the loop thread is still in a frame."""
    loop = sys.modules.get("edge_function.loop")
    if loop is not None and loop.loop_thread_running():
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe must not change the exit code
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_process(main())
