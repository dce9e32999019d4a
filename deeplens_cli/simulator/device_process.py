"""What both simulated cores do with the process they started on the device: wait for it to exit, quote its log.

The Greengrass V1 core (`core.DeviceRun`, a Lambda function process) and the V2 nucleus (`v2_core.ComponentRun`,
a component's Run script) start their processes differently, but the demo waits on and reports both the same
way, so both records take these two behaviours from here.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any


class StartedDeviceProcess:
    """Mixed into a run record that has `process` (a `subprocess.Popen`), `log_path` and `ended_at`."""

    process: Any
    log_path: Path
    ended_at: float | None

    def wait(self, timeout_s: float) -> int | None:
        """The process' exit code, or None when it is still running after `timeout_s`; notes when it ended."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        self.ended_at = self.ended_at or time.monotonic()
        return code

    def log_tail(self, lines: int = 5) -> str:
        """The last `lines` lines of the process' log on one line ("" when there is no log yet)."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])
