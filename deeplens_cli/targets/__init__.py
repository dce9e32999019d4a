"""Deployment targets behind one interface: Greengrass V1 (DeepLens classic) and Greengrass V2.

A device decides its target: `register-device` records it on the IoT thing (attributes `deeplens_name` and
`deeplens_target`), and every later command finds the device by name first and asks the right target. Users
never pass a target flag to `deploy`/`status`/`destroy`.

Each target implements `Target` (base.py) for one AWS context + settings and has one row in registry.py.
Planners only read; mutations are the steps of the plans they return, executed by `executor.Executor`.

Import from the modules themselves: base.py (the contract and its typed values), registry.py (the target
table, `make_target`, `find_device`). This file imports nothing, so `deeplens-cli --help`, which reads the
target names for its choices, does not pay for the contract's dataclasses.
"""
