"""Crops put into moto's S3 exactly as the edge function names and describes them (edge_function.keys)."""

from __future__ import annotations

import datetime as dt
import time

from edge_function.keys import KeyFactory, object_metadata

BUCKET = "deeplens-test-face-crops"


def put_crops(
    s3,
    device: str,
    times: list[dt.datetime],
    template: str = "{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg",
    prefix: str = "faces",
    score: float = 0.93,
    body: bytes = b"\xff\xd8not-really-a-jpeg",
) -> list[str]:
    """One crop per time, keyed in UTC as a device whose clock is on UTC would; returns the keys.

    `template` is the `key_template` setting (below the prefix); the device receives it as "{prefix}/" + template.
    """
    factory = KeyFactory(
        prefix=prefix, template="{prefix}/" + template, device=device, boot_id="boot01", localtime=time.gmtime
    )
    keys = []
    for track, when in enumerate(times):
        captured = when.timestamp()
        key = factory.make_key(captured, track_id=track)
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=body,
            ContentType="image/jpeg",
            Metadata=object_metadata(
                device, "opencv", score, (10, 20, 110, 140), (640, 480), track, captured
            ),
        )
        keys.append(key)
    return keys


def count_calls(client, operation: str) -> list[int]:
    """A one-element counter of `operation` requests the client sends from now on."""
    counter = [0]

    def count(**_kwargs):
        counter[0] += 1

    client.meta.events.register(f"before-call.s3.{operation}", count)
    return counter
