"""Greengrass V1 (AWS DeepLens) entry point: a pinned, long-lived Lambda.

A DeepLens inference function does its work at import: Greengrass imports the module once when the core
starts and never calls the handler (nothing is subscribed to it), so ``function_handler`` is a no-op and
the loop runs in ONE supervised background thread started here. Settings come from the function's
environment variables (see ``settings.py``); on the device the source and detector default to
``awscam`` and the preview to the ``/tmp/results.mjpeg`` FIFO that the DeepLens docs tell users to open
with mplayer.

``awscam`` is imported first, before anything can load ``cv2`` (documented DeepLens quirk). A bad setting
is logged as one line and the loop does not start (Greengrass would otherwise restart the function in a
tight loop); fix the environment and redeploy. No signal handler here: the Greengrass runtime owns the
main thread. What is still queued in memory when Greengrass kills the process is lost; crops already in
the spool are uploaded by the next start.
"""

try:
    import awscam  # noqa: F401 - must precede any cv2 import on a DeepLens
except ImportError:
    awscam = None

import logging
import os
import threading
from typing import Any, Mapping, Optional

from edge_function import settings

LOG = logging.getLogger("edge_function")
LAMBDA_DEFAULTS = {"source": "awscam", "detector": "awscam", "preview": "/tmp/results.mjpeg"}

EDGE_LOOP = None
SUPERVISOR = None
THREAD: Optional[threading.Thread] = None


def start(env: Optional[Mapping[str, str]] = None, awscam_module: Any = None, greengrasssdk_module: Any = None,
          s3_client: Any = None):
    """Validate the settings and start the supervised loop thread; returns the thread, or None."""
    global EDGE_LOOP, SUPERVISOR, THREAD
    env = os.environ if env is None else env
    if THREAD is not None:
        return THREAD
    try:
        config = settings.load_settings(env, defaults=LAMBDA_DEFAULTS)
    except settings.SettingsError as error:
        LOG.error("edge loop not started: %s", error)
        return None
    if not logging.getLogger().handlers:  # Greengrass V1 collects the function's stderr into its logs
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(config.log_level)

    from edge_function import loop  # after awscam, see the module docstring

    try:
        EDGE_LOOP = loop.build_edge_loop(config, env, awscam_module=awscam_module if awscam_module else awscam,
                                         greengrasssdk_module=greengrasssdk_module, s3_client=s3_client)
    except Exception:
        LOG.exception("edge loop not started")
        return None
    edge = EDGE_LOOP
    SUPERVISOR = loop.Supervisor(edge.run_once, threading.Event())
    THREAD = SUPERVISOR.start_thread(after=lambda: edge.finish(config.flush_timeout_s))
    return THREAD


def function_handler(event: Any, context: Any) -> None:
    """Not invoked: the work happens in the thread started at import."""
    return None


start()
