"""The simulated device's Lambda runtime: what a Greengrass V1 core does to start a pinned Python function.

Run by the simulated core (``core.py``) as a separate process, from a folder that holds only this file and
the ``awscam`` / ``greengrasssdk`` shims, with ``PYTHONPATH`` = the unpacked deployment package + that
folder. numpy, OpenCV and boto3 come from the interpreter's site-packages, as the device's system packages
do. Nothing of the host tool is importable: ``deeplens_cli`` is blocked, and the handler module must come
from the unpacked package, so the code that runs is exactly the code that was deployed.

Greengrass imports the handler's module once when a pinned function starts; a DeepLens inference function
does all its work in threads started at import and never returns from them. The simulated device is given
a frame budget, so its work does end: the runtime waits until the function has no running thread left,
then exits 0 (a real core would keep the process for invocations that never come).

Progress is reported through a small JSON status file, written atomically:
``{"state": "started", ...}`` once the module is imported and the handler resolved, or
``{"state": "failed", "error": "..."}`` when that fails (the traceback goes to the function log), and
``{"state": "finished", "peak_rss_mb": ...}`` when the function's work has ended.
"""

import argparse
import importlib
import importlib.abc
import json
import os
import sys
import threading
import time
import traceback

BLOCKED_PACKAGES = ("deeplens_cli",)  # the host tool does not exist on a DeepLens


class _BlockHostPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED_PACKAGES:
            raise ImportError("%s is not available on the device" % fullname)
        return None


def _write_status(path, document):
    temporary = path + ".tmp"
    with open(temporary, "w") as status:
        json.dump(document, status)
    os.replace(temporary, path)


def _one_line(error):
    text = " ".join(("%s: %s" % (type(error).__name__, error)).split())
    return text[:500]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handler", required=True, help="module.function, as Lambda's Handler setting")
    parser.add_argument("--code-dir", required=True, help="the unpacked deployment package")
    parser.add_argument("--status-file", required=True)
    args = parser.parse_args(argv)

    sys.meta_path.insert(0, _BlockHostPackages())
    code_dir = os.path.realpath(args.code_dir)
    if code_dir not in [os.path.realpath(entry) for entry in sys.path if entry]:
        sys.path.insert(0, code_dir)
    os.chdir(code_dir)  # Greengrass starts a function in its own deployment folder

    module_name, _, function_name = args.handler.rpartition(".")
    try:
        if not module_name or not function_name:
            raise ValueError("handler %r is not module.function" % args.handler)
        module = importlib.import_module(module_name)
        module_file = os.path.realpath(getattr(module, "__file__", "") or "")
        if not module_file.startswith(code_dir + os.sep):
            raise ImportError("handler module %s was imported from %s, outside the deployed package"
                              % (module_name, module_file or "nowhere"))
        handler = getattr(module, function_name, None)
        if not callable(handler):
            raise AttributeError("handler %s not found in %s" % (function_name, module_name))
    except BaseException as error:  # noqa: B036 - report anything the import raised, SystemExit included
        traceback.print_exc()
        _write_status(args.status_file, {"state": "failed", "error": _one_line(error), "pid": os.getpid()})
        return 1

    started = {"state": "started", "handler": args.handler, "module_file": module_file, "pid": os.getpid(),
               "threads": threading.active_count() - 1}
    _write_status(args.status_file, started)
    sys.stderr.flush()
    main_thread = threading.current_thread()
    while any(thread is not main_thread and thread.is_alive() for thread in threading.enumerate()):
        time.sleep(0.1)
    _write_status(args.status_file, dict(started, state="finished", peak_rss_mb=_peak_rss_mb()))
    return 0


def _peak_rss_mb():
    """This process's peak resident memory since exec (Linux VmHWM), or None where /proc has no such line."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
