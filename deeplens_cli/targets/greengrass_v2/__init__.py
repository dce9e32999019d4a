"""The Greengrass V2 target: any Linux camera (or a reflashed DeepLens) running the Greengrass V2 nucleus.

What deeplens-cli creates for one device `NAME`:

* the IoT thing `deeplens-NAME` (attributes `deeplens_name=NAME`, `deeplens_target=v2`, which is how every later
  command finds it), an active certificate attached to it, and the IoT policy `deeplens-v2-core-NAME` attached
  to the certificate (never to a thing group: thing-group policies do not grant Greengrass data-plane actions).
  Registration is resumable: the name waits in `deeplens_pending` until the last step, and a re-run after an
  interruption finds the thing by name and the certificate by the bundle already written to `--out`;
* with `--fleet G`, membership of the IoT thing group `G` (created when missing, marked as ours);
* a device bundle: certificate, private key (mode 0600, written once - IoT issues it only in the create call),
  Amazon Root CA 1, the nucleus `config.yaml` and `install.sh` with the exact installer command.

The Greengrass core device record appears when the nucleus first connects; deployments made before that wait
in the cloud until it does. `deploy` publishes the component (component.py) and sends the complete component
set to the thing or thing group, then follows the device's own report (`list_effective_deployments`), and for a
single device also the component's lifecycle state (`list_installed_components`): a deployment can report
success the moment `Run` starts, even if `Run` then fails.

Health is what the device last reported (at startup, after a deployment, when a component breaks and every 24 h
by default), so a HEALTHY status can be stale; status output always shows when it was reported.

Thing names never contain ':' (IoT rejects it); device names are letters, digits and hyphens, so
`deeplens-NAME` is always valid. The IoT policy names the thing exactly - client IDs `T` and `T#N` (the nucleus
opens `T#2`, `T#3`... after 50 subscriptions) - instead of the documented `T*`, which would also match the
thing of a device whose name merely starts with this one's.

destroy keeps no device resource: deployments (canceled, then deleted), the core device record, certificates
(detached, deactivated, deleted), the policy and the thing. Software already installed on the device keeps
running, but without its certificate it can neither connect nor obtain AWS credentials. With every V2 device
gone, destroy also deletes the fleet deployments and empty thing groups deeplens-cli created, the component
versions, and their artifacts: an artifact exists only for its version, and a version without its artifact
could not be deployed anyway.

How the package is composed: `target.GreengrassV2Target` is a thin facade implementing the `Target` and
`FleetTarget` protocols of targets/base.py. It holds one `context.V2Context` (AWS context, settings, the component
build, the caches) and delegates to plain functions of the concern modules - register, publish, deploy, fleet,
provisioning, status, destroy - which take that context as their first argument and import what they need from
each other explicitly (reads.py holds the read-only lookups several of them share; the graph is in target.py).
Pure data stays apart: naming, component (the desired component), core_bundle (the device bundle), outcomes.
"""

from deeplens_cli.targets.greengrass_v2.core_bundle import (
           AMAZON_ROOT_CA_1_SHA256,
           CoreBundle,
           amazon_root_ca_1,
)
from deeplens_cli.targets.greengrass_v2.naming import TARGET, core_policy, policy_name, thing_name
from deeplens_cli.targets.greengrass_v2.outcomes import describe_failure, failure_hint
from deeplens_cli.targets.greengrass_v2.target import GreengrassV2Target

__all__ = ["AMAZON_ROOT_CA_1_SHA256", "TARGET", "CoreBundle", "GreengrassV2Target", "amazon_root_ca_1", "core_policy",
           "describe_failure", "failure_hint", "policy_name", "thing_name"]
