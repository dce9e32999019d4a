"""The crop key template, checked at publish with the device's own code: a sample key is formatted exactly as
edge_function/keys.py formats one on the device.

The config check (`template_problem`) looks at field names only; a format spec the device's values cannot take
(`{n:d}`: n is text) or a field the device does not pass only fails inside `str.format` on the device, where
it restart-loops the component and uploads nothing. Publishing is the last moment to catch it.
"""

from __future__ import annotations

import time
from typing import Mapping

from deeplens_cli.errors import ConfigError
from edge_function.keys import KeyFactory

SAMPLE_CAPTURE_TIME = 1_700_000_000.25  # any instant: the check is whether formatting works, not its result


def check_key_template(settings: Mapping[str, object]) -> str:
    """A sample key made by the device's KeyFactory from the template it will receive (package.edge_environment
    passes it as "{prefix}/" + key_template); ConfigError (exit 2) when the device could not make one."""
    template = "{prefix}/" + str(settings["key_template"])
    try:
        factory = KeyFactory(str(settings["prefix"]).rstrip("/"), template, device="sample-device",
                             localtime=time.localtime)
        return factory.make_key(SAMPLE_CAPTURE_TIME, track_id=1)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ConfigError(f"key_template {settings['key_template']!r} cannot be formatted on the device: {exc}",
                          "use the placeholders of edge_function/keys.py without format specs, e.g. "
                          "{month}_{day}/{timestamp}_{n}.jpg") from exc
