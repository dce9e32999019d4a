"""`faces`: requests and time to answer the newest page, as the bucket grows (moto S3, in-process).

Prints, for buckets of N crops in the device's key layout, how many ListObjectsV2/HeadObject requests the newest
page of 20 takes and how long, next to the ListObjectsV2 pages a full listing would need (1,000 keys a page).
Run: python bench/bench_faces.py [N ...]   (default 1000 10000)
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from deeplens_cli.commands.faces import gather_faces  # noqa: E402
from edge_function.keys import KeyFactory, object_metadata  # noqa: E402

TEMPLATE = "{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"
NOW = dt.datetime(2026, 11, 30, 9, 30, tzinfo=dt.timezone.utc)


def fill(s3, count: int) -> None:
    """`count` crops, one every 20 s back from NOW (10,000 crops span about 2.3 days)."""
    factory = KeyFactory(prefix="faces", template="{prefix}/" + TEMPLATE, device="cam", localtime=time.gmtime)
    for i in range(count):
        captured = (NOW - dt.timedelta(seconds=20 * i)).timestamp()
        s3.put_object(Bucket="bench", Key=factory.make_key(captured), Body=b"x",
                      Metadata=object_metadata("cam", "opencv", 0.9, (0, 0, 1, 1), (1, 1), i, captured))


def main(sizes: list[int]) -> None:
    print(f"{'crops':>8} {'LIST':>5} {'HEAD':>5} {'page (ms)':>10} {'full listing LIST pages':>24}")
    for size in sizes:
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="bench")
            fill(s3, size)
            started = time.perf_counter()
            report = gather_faces(s3, "bench", "faces/", TEMPLATE, NOW, limit=20)
            elapsed = (time.perf_counter() - started) * 1000
            assert len(report.crops) == 20
            print(f"{size:>8} {report.list_calls:>5} {report.head_calls:>5} {elapsed:>10.0f} {-(-size // 1000):>24}")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1000, 10000])
