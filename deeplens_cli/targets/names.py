"""The target names and the default target: the `--greengrass` choices, the values `greengrass.default_target`
accepts and the thing attribute `deeplens_target`.

Kept apart from registry.py because the settings schema validates these names, and the config layer sits below
every target: a target's code reads `Settings`, and the registry's factories import the targets. The schema may
know the names, never the table (tests/hardening/test_layout.py finds an import cycle at any depth). The registry
builds its rows on these names, and a test keeps the two the same set.
"""

V1 = "v1"
V2 = "v2"
TARGET_NAMES = (V1, V2)
DEFAULT_TARGET = V2  # register-device without --greengrass (config greengrass.default_target)
