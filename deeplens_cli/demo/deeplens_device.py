"""`demo --device-profile deeplens`: the simulated Greengrass V2 core device made to look like a stock DeepLens.

What the component sees is what it sees on a DeepLens, as far as this machine allows:

* the device profile `deeplens` under the nucleus root, where the bundle's install.sh records it (the demo does
  not run install.sh: it would install Java and stop a Greengrass V1 daemon on this machine);
* `awscam` importable from the component's venv: our stand-in (deeplens_cli/simulator/awscam.py) copied alone
  into a folder the venv sees, as the DeepLens' own awscam sits in its system site-packages. Its camera serves
  the demo's frames, its model is the project's CPU face detector;
* the face model file at `model.artifact_path` (a placeholder: the stand-in never reads it), so Run takes the
  DeepLens path, `--source awscam --detector awscam`.

What it cannot be: a DeepLens runs the component under Python 3.7 with the lock resolved for 3.7
(deeplens_py37.lock). The demo must not download at run time, and the packages it has are this Python's, so
Install reuses them (HOST_SITE_ENV) with this machine's Python, whatever its version. The Python 3.7 Install,
from the hashed lock, is proven by the device lab (tests/device_lab/test_deeplens_lab.py), not by the demo.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deeplens_cli.simulator import awscam
from deeplens_cli.simulator.awscam import FPS_ENV, SOURCE_ENV
from deeplens_cli.targets.greengrass_v2.device_profile import PROFILE_FILE

PROFILE = "deeplens"
MODEL_FILE = "mxnet_deploy_ssd_FP16_FUSED.xml"  # the face project's artifact (edge_function.settings)


@dataclass(frozen=True)
class DeepLensDemo:
    """Where the simulated DeepLens keeps its awscam folders, below the demo's work folder."""

    work: Path

    @property
    def model_path(self) -> Path:
        return self.work / "device" / "opt" / "awscam" / "artifacts" / MODEL_FILE

    @property
    def system_site(self) -> Path:
        return self.work / "device" / "system-site-packages"

    def settings(self) -> dict[str, object]:
        """The demo's deeplens.yaml sections for a DeepLens: its profile, its model, camera and detector `auto`
        (resolved on the device, as a DeepLens deployment leaves them)."""
        return {"greengrass": {"device_profile": PROFILE}, "model": {"artifact_path": str(self.model_path)},
                "detection": {"detector": "auto", "source": "auto"}}

    def prepare(self, nucleus_root: PurePosixPath) -> str:
        """Profile record, model file and awscam stand-in in place; returns the folder the venv must see."""
        profile = Path(str(nucleus_root)) / PROFILE_FILE
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(PROFILE + "\n")
        self.model_path.parent.mkdir(parents=True, exist_ok=True)
        self.model_path.write_text("<!-- placeholder: the awscam stand-in runs a CPU detector instead -->\n")
        self.system_site.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(awscam.__file__, self.system_site / "awscam.py")
        return str(self.system_site)

    @staticmethod
    def environment(frames_spec: str, fps: float) -> dict[str, str]:
        """What the awscam stand-in reads: the frames its camera serves and their rate."""
        return {SOURCE_ENV: frames_spec, FPS_ENV: str(fps)}
