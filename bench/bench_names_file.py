"""`register-device --names-file` with N = 100, 1,000 and 10,000 new names: wall time, CPU time, AWS calls.

Issue 21 found that 10,000 names with `--dry-run` did not finish in 300 s. Each run goes through the real CLI
(`deeplens_cli.cli.main`, in-process, `--output json`) against moto in-process (`mock_aws`: IAM, IoT, S3, STS)
in an account where `register-roles` left what a Greengrass V2 registration needs (bucket, token exchange role,
role alias). Every call the CLI makes is counted with the AwsContext's call recorder. Dry runs for every N;
a real run (certificates, policies, bundles written) for the sizes given with --real (default 100, 1000).

Run: python bench/bench_names_file.py [--sizes 100,1000,10000] [--real 100,1000] [--profile N]
With --profile N, one dry run of N names runs under cProfile and the 25 most expensive functions are printed
(by cumulative time; BENCH_SORT=tottime sorts by own time).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aws_call_counter import AwsCallCounter  # bench/ is on sys.path: the script's own folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "DEEPLENS_BUCKET": "deeplens-test-face-crops"}


@dataclass
class Figures:
    names: int
    dry_run: bool
    exit_code: int
    wall_s: float
    cpu_s: float
    calls: int

    def row(self) -> str:
        kind = "dry run" if self.dry_run else "real run"
        exit_note = "" if self.exit_code == 0 else f" (exit {self.exit_code})"
        return (f"| {self.names:,} | {kind}{exit_note} | {self.wall_s:.2f} | {self.cpu_s:.2f} | "
                f"{self.wall_s / self.names * 1000:.2f} | {self.calls:,} | {self.calls / self.names:.2f} |")


def register(names_file: Path, out: Path, dry_run: bool) -> int:
    from deeplens_cli.cli import main

    args = ["--output", "json", "register-device", "--greengrass", "v2", "--names-file", str(names_file),
            "--out", str(out)] + (["--dry-run"] if dry_run else [])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(args)
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def one_run(size: int, dry_run: bool, counter: AwsCallCounter, workdir: Path, profile: bool = False) -> Figures:
    import boto3
    from moto import mock_aws

    from tests.cli.fake_greengrassv2 import prepare_v2_account

    with mock_aws():
        prepare_v2_account(lambda service: boto3.client(service, region_name="us-east-1"))
        names = workdir / f"names-{size}.txt"
        names.write_text("".join(f"Cam{number:05d}\n" for number in range(size)))
        out = workdir / f"bundles-{size}-{'dry' if dry_run else 'real'}"
        before = counter.count
        started, cpu = time.perf_counter(), time.process_time()
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            code = profiler.runcall(register, names, out, dry_run)
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(25)
        else:
            code = register(names, out, dry_run)
        return Figures(size, dry_run, code, time.perf_counter() - started, time.process_time() - cpu,
                       counter.count - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="dry runs of these sizes")
    parser.add_argument("--real", default="100,1000", help="real runs of these sizes ('' for none)")
    parser.add_argument("--profile", type=int, default=0, help="profile one dry run of this size instead")
    options = parser.parse_args()

    os.environ.update(ENV)
    for name in [n for n in os.environ if n.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "DEEPLENS_CONFIG"))]:
        del os.environ[name]
    workdir = Path(tempfile.mkdtemp(prefix="bench-names-file-"))
    os.chdir(workdir)
    counter = AwsCallCounter()
    if options.profile:
        print(one_run(options.profile, True, counter, workdir, profile=True).row())
        return
    print("| names | run | wall s | CPU s | wall ms per name | AWS calls | calls per name |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    runs = [(int(n), True) for n in options.sizes.split(",") if n]
    runs += [(int(n), False) for n in options.real.split(",") if n]
    for size, dry_run in runs:
        print(one_run(size, dry_run, counter, workdir).row(), flush=True)
    print(f"\n(python {sys.version.split()[0]}, moto in-process, work folder {workdir})")


if __name__ == "__main__":
    main()
