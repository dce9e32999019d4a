"""`deeplens-cli demo`: the whole flow on an embedded AWS emulator with a simulated device.

No account, no camera, no download. The demo

1. starts, in this process on 127.0.0.1 and free ports, moto's server (with AWS managed policies loaded) and,
   for Greengrass V2, the in-process Greengrass V2 control plane moto lacks, with fake credentials of their
   own: the user's profile, keys and ~/.aws are hidden from every AWS client while the demo runs (and restored
   afterwards) (`sandbox`);
2. runs the same code as the commands, with settings that point at the emulator: `register-roles`,
   `register-device --greengrass v2|v1`, `deploy --device` (package, publish, deployment, wait), then
   `status`. Nothing bypasses the planners or the executor (`steps`);
3. lets a simulated device receive that deployment the way a real one does (`devices`): by default a
   Greengrass V2 core device whose simulated nucleus runs the published recipe and artifact (Install, Run,
   token exchange credentials, IPC); with `--greengrass v1` a DeepLens (Greengrass V1 core) that checks the
   Lambda package against `CodeSha256` and runs it with the `awscam`/`greengrasssdk` stand-ins;
4. feeds the device a short clip built from face images bundled with scikit-image (or `--source`), with a
   frame budget so the edge function ends by itself after flushing its uploads (`frames`);
5. collects the result: the crops under `faces/` in the emulated bucket, the device's messages, a contact sheet
   (and, on V1, annotated frames) in `--out`, and one JSON document with `--output json` (`outputs`).

With `--keep-running` the emulator (and the simulated device, which takes further deployments) stay up
until Ctrl-C, and the demo prints the environment to point `deeplens-cli` or the AWS CLI at it.
"""

from deeplens_cli.demo.run import TARGETS, run_demo

__all__ = ["TARGETS", "run_demo"]
