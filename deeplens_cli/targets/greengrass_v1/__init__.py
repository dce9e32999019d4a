"""The classic DeepLens target: an AWS IoT Greengrass V1 core, its group, and a pinned Lambda function.

What a DeepLens "project" is in Greengrass V1 terms (the AWS DeepLens Developer Guide, archived at
github.com/awsdocs/aws-deeplens-user-guide, and the AWS IoT Greengrass V1 Developer Guide), and therefore what
this target plans:

* **register-device** - an IoT thing named like DeepLens names them (`deeplens_<22 chars>`), a key pair and an
  active certificate, the minimal Greengrass V1 core IoT policy (named `deeplens...`, the only names the DeepLens
  service policy may attach), a core definition (thing + certificate), a group `deeplens-<name>` whose first
  version holds the core, and the group role. The device bundle (certificate, private key 0600, public key,
  `config/config.json`, the root CA reference) is written by a LocalStep right after the key is issued, because
  the private key exists only in that one API response.
* **publish** - the deterministic zip (package.py) as the Lambda function `function.name`, configured through
  environment variables, published as a numbered version; skipped when `CodeSha256` and the configuration match.
* **deploy** - a new function definition version that keeps every function that is not ours and pins ours (the
  published *version* ARN, never `$LATEST`), the GPU device resource (and an ML model resource when
  `model.s3_uri` is set), the `$aws/things/<thing>/infer -> cloud` subscription, a group version holding all of
  that plus the group's existing core and other definitions, then a `NewDeployment`.

Names are deterministic: the thing name is derived from account, region and device name, and every definition is
named after the thing. So a registration interrupted half way (AccessDenied, Ctrl-C) is found again by the
next run, which plans only what is missing instead of creating duplicates. A registration is marked complete
by its last step, which moves the device name from the thing attribute `deeplens_pending` to `deeplens_name`;
until then `list_devices` shows the device as "<name> (incomplete)" (details: registration, pending_name).
The bundle folder carries `deeplens-bundle.json` (the thing, then the certificate id once issued; no secret),
written before the key, which is made here before IoT is asked for its certificate: a re-run pointed at the same
folder keeps the certificate issued for the key there (bundle.held_certificate, as for V2); a re-run
pointed at an empty folder issues a new one and retires the other. A folder holding anything else is never
written to. Deploy definitions are found by name the same way, so an interrupted deploy is finished, not
duplicated.

Deployment status seam: moto's `GetDeploymentStatus` answers `InProgress` forever, and there is no DeepLens in a
test. Where a deployment's status comes from is therefore a `DeploymentStatusSource`: by default the
`GetDeploymentStatus` API; tests pass a scripted function (`GreengrassV1Target(ctx, settings,
deployment_status=...)`, or replace `target.status_source_for`). The demo's simulated core needs neither: it
records Success/Failure on the emulator's deployment record, the way a real core reports to the cloud, and the
API source reads it. The seam is read only for status; it never writes anything.

How the package is composed: one module per concern (register, lambda_publish, project, deploy, devices, status,
destroy; groups for the reads they share; naming and core_bundle), each a set of plain functions that take the
one `V1Context` (context.py: AWS context, settings, status source, clock, caches) as their first argument and
import what they need from a sibling by name - no mixins, so what depends on what is in each module's imports
(no cycles: tests/hardening/test_layout.py). `project.desired_project` is pure: the group content as data, from
the settings and the group's current content. `target.py` is the facade that implements the `Target` protocol
by delegating.
"""
# The package's face, as V2's: the target and the names others build on (policy lint, role checks). Everything
# else is imported from the module of its concern (naming, core_bundle, project, deploy, groups, ...).
from deeplens_cli.targets.greengrass_v1.naming import (
    LAMBDA_ROLE,
    SERVICE_ROLE,
    TARGET,
    core_policy,
    thing_name_for,
)
from deeplens_cli.targets.greengrass_v1.target import GreengrassV1Target

__all__ = ["LAMBDA_ROLE", "SERVICE_ROLE", "TARGET", "GreengrassV1Target", "core_policy", "thing_name_for"]
