"""What treating outside text as data costs: the escaper on every printed line, strict JSON, and `watch`'s bounded
decoding of a message (typical, the largest AWS IoT Core delivers, and nested past the bound).

Prints figures, asserts nothing. Run from the repository root: `python bench/bench_untrusted_output.py`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import statistics
import time
from typing import Callable

from deeplens_cli.cli.output import Reporter
from deeplens_cli.cli.printable import printable
from deeplens_cli.cli.strict_json import encode
from deeplens_cli.commands.watch import MAX_MESSAGE_BYTES, decode

CLEAN_LINE = "2026-12-08T01:00:00.000Z [INFO] (pool-2-thread-7) com.deeplens.FaceCrops: frames=1200 fps=9.8 uploads=3"
HOSTILE_LINE = "\x1b]0;OWNED\x07\x1b[2J" + CLEAN_LINE + "\r\u202e\\x1b\n" * 3


def per_call_us(work: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median over `repeats` runs of the time per call, in microseconds."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        runs.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(runs)


def main() -> None:
    clean_us = per_call_us(lambda: printable(CLEAN_LINE), 100_000)
    hostile_us = per_call_us(lambda: printable(HOSTILE_LINE), 100_000)
    print(f"printable, a clean {len(CLEAN_LINE)}-character log line:   {clean_us:7.2f} us")
    print(f"printable, a hostile {len(HOSTILE_LINE)}-character line:     {hostile_us:7.2f} us")
    sink = io.StringIO()
    out = Reporter(output="text", stdout=sink, stderr=io.StringIO())

    def plain_print() -> None:
        print(CLEAN_LINE, file=sink, flush=True)

    line_us = per_call_us(lambda: out.line(CLEAN_LINE), 100_000)
    print(f"Reporter.line (escaped) vs bare print, clean line: {line_us:7.2f} us"
          f" vs {per_call_us(plain_print, 100_000):.2f} us")

    document = {"crops": [{"key": f"faces/12_08/01_00/{i}.jpg", "confidence": 0.93, "device": "cam-a"}
                          for i in range(1000)]}
    print(f"strict JSON, 1,000 crops (clean) vs json.dumps:    {per_call_us(lambda: encode(document, 2), 20):7.0f} us"
          f" vs {per_call_us(lambda: json.dumps(document, indent=2, default=str), 20):.0f} us")
    document["crops"][500]["confidence"] = float("nan")
    print(f"strict JSON, 1,000 crops, one NaN (cleaned):       {per_call_us(lambda: encode(document, 2), 20):7.0f} us")

    now = dt.datetime.now(dt.timezone.utc)
    typical = json.dumps({"face": 0.93, "device": "cam-a", "time": 1.0, "fps": 9.8, "uploads": {"uploaded": 3},
                          "faces": [{"label": "face", "score": 0.93, "box": [10, 20, 110, 140]}],
                          "frame": [640, 480]}).encode()
    largest = json.dumps({"device": "cam-a", "faces": [{"label": "face", "score": 0.5, "box": [1, 2, 3, 4]}] * 1800}
                         ).encode()[:MAX_MESSAGE_BYTES]
    largest = largest[:largest.rfind(b"}, {")] + b"}]}"
    deep = b"[" * (MAX_MESSAGE_BYTES // 2) + b"]" * (MAX_MESSAGE_BYTES // 2)
    for name, payload, calls in (("typical result message", typical, 20_000),
                                 (f"largest delivered ({len(largest)} B)", largest, 50),
                                 (f"nested {MAX_MESSAGE_BYTES // 2} deep ({len(deep)} B)", deep, 200)):
        message = decode("t", payload, now)
        took = per_call_us(lambda payload=payload: decode("t", payload, now), calls)
        print(f"watch decode, {name:34s} {took:9.1f} us"
              f"  ({message.problem or 'a result message'})")


if __name__ == "__main__":
    main()
