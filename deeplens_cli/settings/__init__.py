"""The settings layer: what the user configured, validated before any AWS call.

`settings_schema.SCHEMA` declares every key once (type, default, DEEPLENS_* variable, documentation);
`config.load_settings` layers the YAML file < environment < flags into a `Settings`; `aws_environment` checks the
standard AWS environment (endpoint variables, region, config file, credential chain) with the same one-line,
exit-2 errors; `device_names` is the one rule a device name follows. Nothing here imports a layer above it: the
targets, the engine and the commands read `Settings`, never the other way round (tests/hardening/test_layout.py).
"""
