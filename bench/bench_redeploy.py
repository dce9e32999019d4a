"""Re-deploy with nothing changed, Greengrass V1, against a moto server (goal: 0 mutating calls, <= 1 s).

Sets up the classic flow once through the real CLI (`--endpoint-url` to a local moto server):
register-roles, register-device --greengrass v1, deploy --no-wait, and then reports that deployment Success
as the device would (moto never finishes a V1 deployment by itself, and `deploy` with nothing to change waits
for a last deployment that is still InProgress, up to deploy.timeout_s = 600 s: without the report every
re-deploy below would time out instead of being measured). Then runs `deploy --device Cam` again `--runs`
times with nothing changed and reports, per run, the wall time and the AWS API calls made (all of them, and
the mutating ones: anything but Get/List/Describe/Head/Search).

Two timings:
  in-process   `deeplens_cli.cli.main([...])` in this interpreter: the command itself (a fresh boto3 session,
               the package build and sha256, every read of the plan) without Python start-up
  subprocess   `python -c 'deeplens_cli.cli.main()' ...`: what a user waits for, interpreter start and imports
               included

Run: python bench/bench_redeploy.py [--runs N]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BUCKET = "deeplens-bench-face-crops"
FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "DEEPLENS_BUCKET": BUCKET,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}


def run_cli(args: list[str]) -> int:
    from deeplens_cli.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def report_deployments_succeeded(endpoint: str) -> list[str]:
    """Every deployment moto holds, reported Success through the simulated core's reporter (see the module doc);
    their ids."""
    import boto3

    from deeplens_cli.simulator.moto_internals import MotoDeploymentReporter

    greengrass = boto3.client("greengrass", endpoint_url=endpoint)
    account = boto3.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]
    reporter = MotoDeploymentReporter(account, os.environ["AWS_REGION"])
    reported = []
    for group in greengrass.list_groups()["Groups"]:
        for deployment in greengrass.list_deployments(GroupId=group["Id"])["Deployments"]:
            reporter.report(group["Id"], deployment["DeploymentId"], "Success")
            status = greengrass.get_deployment_status(GroupId=group["Id"], DeploymentId=deployment["DeploymentId"])
            if status["DeploymentStatus"] != "Success":
                raise SystemExit(f"could not report deployment {deployment['DeploymentId']} Success: {status}")
            reported.append(deployment["DeploymentId"])
    return reported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()

    os.environ.update(FAKE_ENV)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL") or n == "AWS_PROFILE"]:
        del os.environ[name]
    workdir = tempfile.mkdtemp(prefix="bench-redeploy-")
    os.chdir(workdir)

    from moto.server import ThreadedMotoServer

    import deeplens_cli.aws as aws_module

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    contexts = []
    real_make_context = aws_module.make_context

    def recording_make_context(settings, sleep=None):
        ctx = real_make_context(settings, sleep=sleep)
        contexts.append(ctx)
        return ctx

    aws_module.make_context = recording_make_context
    devnull = open(os.devnull, "w")
    stdout, stderr = sys.stdout, sys.stderr
    try:
        sys.stdout = sys.stderr = devnull
        setup = [["register-roles"], ["register-device", "--name", "Cam", "--greengrass", "v1", "--out", "bundle"],
                 ["deploy", "--device", "Cam", "--no-wait"]]
        setup_times = []
        for args in setup:
            started = time.perf_counter()
            code = run_cli(["--endpoint-url", endpoint, *args])
            setup_times.append(time.perf_counter() - started)
            if code != 0:
                raise SystemExit(f"setup step {args} failed with exit code {code}")
        if not report_deployments_succeeded(endpoint):
            raise SystemExit("setup left no deployment to report Success")

        timings, calls, mutating = [], [], []
        services: collections.Counter[str] = collections.Counter()
        for _ in range(options.runs):
            contexts.clear()
            started = time.perf_counter()
            code = run_cli(["--endpoint-url", endpoint, "deploy", "--device", "Cam"])
            timings.append(time.perf_counter() - started)
            if code != 0:
                raise SystemExit(f"re-deploy failed with exit code {code}")
            made = [call for ctx in contexts for call in ctx.recorder.calls]
            calls.append(len(made))
            mutating.append([call for ctx in contexts for call in ctx.recorder.mutating])
            services = collections.Counter(service for service, _ in made)
    finally:
        sys.stdout, sys.stderr = stdout, stderr

    command = [sys.executable, "-c", "from deeplens_cli.cli import main; main()", "--endpoint-url", endpoint,
               "deploy", "--device", "Cam"]
    subprocess_times = []
    for _ in range(max(1, options.runs // 2)):
        started = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=workdir, env={**os.environ, "PYTHONPATH": ROOT}
        )
        subprocess_times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"subprocess re-deploy failed: {done.stderr.strip()}")
    server.stop()

    print("Greengrass V1 re-deploy with nothing changed, moto server at", endpoint)
    print(f"  setup: register-roles {setup_times[0]:.2f}s, register-device {setup_times[1]:.2f}s, "
          f"first deploy {setup_times[2]:.2f}s")
    print(f"  in-process  ({options.runs} runs): median {statistics.median(timings):.3f}s, "
          f"min {min(timings):.3f}s, max {max(timings):.3f}s")
    print(f"  subprocess  ({len(subprocess_times)} runs): median {statistics.median(subprocess_times):.3f}s, "
          f"min {min(subprocess_times):.3f}s, max {max(subprocess_times):.3f}s")
    print(f"  API calls per re-deploy: {calls[-1]} ({', '.join(f'{s} {n}' for s, n in sorted(services.items()))})")
    print(f"  mutating calls per re-deploy: {[len(m) for m in mutating]}"
          + (f" -> {mutating[-1]}" if any(mutating) else ""))
    goal_time = statistics.median(timings) <= 1.0
    print(f"  goal (0 mutating calls, <= 1 s in-process): {'met' if goal_time and not any(mutating) else 'NOT met'}")


if __name__ == "__main__":
    main()
