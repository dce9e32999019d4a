"""Fleet commands at N = 10, 100 and 500 Greengrass V2 devices: AWS API calls and seconds per command.

Each command runs through the real CLI (`deeplens_cli.cli.main`, in-process) against moto (IAM, IoT, S3, STS;
`mock_aws`) and the Greengrass V2 emulator of the tests (tests/cli/fake_greengrassv2.py: pages like the service,
100 core devices / deployments a page; fleet deployments have their IoT job executions in moto). Every call any
command makes is counted with the AwsContext's call recorder (deeplens_cli.aws.CallRecorder).

The fleet is N things carrying what register-device leaves (attributes deeplens_target / deeplens_name), members
of thing group Stores, each with a connected core. Registration is measured separately: `register-device
--names-file` with N new names in one run (certificates, policies, bundles: the real thing).

Goals (issue 12): per-device commands flat; fleet views <= 1 call per 25 devices beyond a constant; an unchanged
`deploy --fleet` constant; registration linear in total.

Run: python bench/bench_fleet.py [--sizes 10,100,500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from aws_call_counter import AwsCallCounter  # bench/ is on sys.path: the script's own folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BUCKET = "deeplens-test-face-crops"
FLEET = "Stores"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "DEEPLENS_BUCKET": BUCKET,
       "DEEPLENS_DEPLOY_POLL_S": "0.01"}
COMMANDS = (
    ("devices", ("devices",)),
    ("status", ("status",)),
    ("status --device", ("status", "--device", "Cam0003")),
    ("deploy --device (first)", ("deploy", "--device", "Cam0003", "--no-wait")),
    ("deploy --device (unchanged)", ("deploy", "--device", "Cam0003", "--no-wait")),
    ("deploy --fleet (first)", ("deploy", "--fleet", FLEET, "--no-wait")),
    ("deploy --fleet (unchanged)", ("deploy", "--fleet", FLEET, "--no-wait")),
    ("devices (after the deploys)", ("devices",)),
    ("status (after the deploys)", ("status",)),
)


def run_cli(args: tuple[str, ...]) -> int:
    import contextlib
    import io

    from deeplens_cli.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(["--output", "json", *args])
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def measure(counter: AwsCallCounter, args: tuple[str, ...]) -> tuple[int, float, int]:
    before = counter.count
    started = time.perf_counter()
    code = run_cli(args)
    return counter.count - before, time.perf_counter() - started, code


def one_size(size: int, counter: AwsCallCounter, workdir: Path) -> dict[str, tuple[int, float, int]]:
    import boto3
    from moto import mock_aws

    from tests.cli.fake_greengrassv2 import FakeGreengrassV2, prepare_v2_account

    results: dict[str, tuple[int, float, int]] = {}
    with mock_aws():
        fake = FakeGreengrassV2(s3=boto3.client("s3", region_name="us-east-1"),
                                iot=boto3.client("iot", region_name="us-east-1"))
        os.environ["AWS_ENDPOINT_URL_GREENGRASSV2"] = fake.serve()
        try:
            prepare_v2_account(lambda service: boto3.client(service, region_name="us-east-1"))
            iot = boto3.client("iot", region_name="us-east-1")
            iot.create_thing_group(thingGroupName=FLEET)
            for number in range(size):
                thing = f"deeplens-Cam{number:04d}"
                iot.create_thing(thingName=thing, attributePayload={"attributes": {
                    "deeplens_target": "v2", "deeplens_name": f"Cam{number:04d}"}})
                iot.add_thing_to_thing_group(thingGroupName=FLEET, thingName=thing)
                fake.connect_core(thing)
            for label, args in COMMANDS:
                results[label] = measure(counter, args)
            names = workdir / f"names-{size}.txt"
            names.write_text("".join(f"New{number:04d}\n" for number in range(size)))
            results["register-device (N names, one run)"] = measure(
                counter, ("register-device", "--names-file", str(names), "--out", str(workdir / f"bundles-{size}")))
            results["register-device (one more)"] = measure(
                counter, ("register-device", "--name", "OneMore", "--out", str(workdir / f"one-more-{size}")))
        finally:
            fake.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500")
    sizes = [int(n) for n in parser.parse_args().sizes.split(",")]

    os.environ.update(ENV)
    for name in [n for n in os.environ if (n.startswith("AWS_ENDPOINT_URL") or n == "AWS_PROFILE")]:
        del os.environ[name]
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    os.chdir(workdir)
    counter = AwsCallCounter()
    table = {size: one_size(size, counter, workdir) for size in sizes}

    labels = list(next(iter(table.values())))
    header = "| command | " + " | ".join(f"N={n} calls | s" for n in sizes) + " | growth per extra device |"
    print(header)
    print("|---|" + "---:|---:|" * len(sizes) + "---|")
    for label in labels:
        cells = []
        for size in sizes:
            calls, seconds, code = table[size][label]
            cells.append(f"{calls}{'' if code in (0, 1) else f' (exit {code})'} | {seconds:.2f}")
        first, last = sizes[0], sizes[-1]
        growth = (table[last][label][0] - table[first][label][0]) / (last - first) if last > first else 0.0
        print(f"| `{label}` | " + " | ".join(cells) + f" | {growth:+.3f} calls |")
    print(f"\n(exit 1 = the command ran and reported problems, e.g. status in an account without register-roles; "
          f"python {sys.version.split()[0]}, work folder {workdir})")


if __name__ == "__main__":
    main()
