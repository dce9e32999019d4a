"""pytest plugin for the Python 3.7 run (tests/py37/run.sh): moto 5 (``mock_aws``) needs Python 3.8, so on 3.7
the edge tests use moto 4.2, whose S3 mock has the same behaviour under the older name ``mock_s3``."""

import moto

if not hasattr(moto, "mock_aws"):
    moto.mock_aws = moto.mock_s3

# moto 4.2's ThreadedMotoServer has no get_host_and_port (added in moto 5); the werkzeug server it wraps knows both
from moto.server import ThreadedMotoServer  # noqa: E402

if not hasattr(ThreadedMotoServer, "get_host_and_port"):
    ThreadedMotoServer.get_host_and_port = lambda self: (self._server.host, self._server.port)
