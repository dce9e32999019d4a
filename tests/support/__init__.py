"""The test support layer: fixtures and helpers every test folder shares, one copy of each.

`tests/conftest.py` registers the modules below as pytest plugins (`pytest_plugins`), so a test names a fixture
as an argument and pytest finds it; nothing imports a fixture to make it visible. Helpers that are plain
functions or classes (a poll loop, a fake clock, an account snapshot) are imported from here by name:
`from tests.support.polling import wait_for` (pytest's `pythonpath` setting puts the repository root on
`sys.path`).

Plugins (fixtures):
  environment      `aws_env`: fake credentials, nothing from the developer's shell or ~/.aws
  settings         `settings_for` and `make_settings`: validated Settings without files
  aws_accounts     in-process moto accounts: `aws`, `aws_plain`, `aws_class`, `aws_plain_class`, `fresh_account`,
                   `lean_managed_policies`
  botocore_models  one botocore model loader per process: `shared_botocore_models` (module), `shared_models`
  moto_server      a moto server on localhost: `moto_server_session`, `moto_server`, `reset_moto`
  cli              the CLI in-process: `run_cli`, `recorded_aws`
  aws_faults       wrong answers from AWS on demand: `faults`
  filesystems      real tmpfs mounts, read-only or full: `tmpfs` (helpers fill_up, free_up, remount)
  greengrass_v1    a V1-ready account and the V1 target driven as the CLI drives it: `gg_account`, `world`, ...
  iot_provisioning IoT provisioning templates next to moto (checked against botocore's model) and RegisterThing's
                   decision with the template's pre-provisioning hook: `templates`

Helpers (imported): polling.wait_for and polling.HANG_GUARD_S (a wall-clock limit only ever guards a hang),
clock.FakeClock, account_snapshot.account_snapshot, archives.zip_of, and
target_drivers (one driver per registry target, for tests/cli/test_target_contract.py).

The plugins are also loaded by the Python 3.7 run of the edge tests (tests/py37/run.sh), so they import only
pytest and the standard library at module level and stay 3.7-compatible; product modules are imported inside
the fixtures that need them. Fixture names are used by every test folder: keep them stable.
"""
