"""Bytes sent for one person standing in view: our gate vs the seed vs cloud inference.

A 1920x1080 scene (textured background from scikit-image's sample photos, the astronaut's face pasted in,
drifting a few pixels and with sensor noise, 10 fps) with one person in view for N seconds; the detector
misses the face on ~10 % of frames (flicker), as real detectors do. The face box comes from running
CenterFace once on the first frame.

  ours    EdgeLoop with default settings (one best crop per track, JPEG q90, 20 % margin), time simulated
  seed    the original sample: a crop (box +- 25 px, JPEG q90) uploaded on every frame with a face
  cloud   cloud inference: a full 1080p JPEG (q90) every second
Goals: ours <= 1/20 of seed, <= 1/50 of cloud.

Run: python bench/bench_bandwidth.py [--seconds N ...]
"""

import argparse
import io
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy  # noqa: E402

from edge_function import detectors, gate, loop, publish, settings  # noqa: E402
from edge_function.detectors import Detection  # noqa: E402

FPS = 10.0


class RecordingUploader:
    def __init__(self):
        self.sizes = []

    def submit(self, item):
        self.sizes.append(len(item.body))

    def stats(self):
        return {"captured": len(self.sizes)}

    def close(self, deadline_s):
        return True


class SimClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def build_scene():
    from skimage import data

    tiles = [data.rocket(), data.coffee(), data.chelsea(), data.coffee()[:, ::-1], data.rocket()[:, ::-1],
             data.chelsea()[:, ::-1]]
    tiles = [cv2.resize(cv2.cvtColor(t, cv2.COLOR_RGB2BGR), (640, 540), interpolation=cv2.INTER_AREA) for t in tiles]
    background = numpy.vstack([numpy.hstack(tiles[:3]), numpy.hstack(tiles[3:])])
    person = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return background, person


def make_noise(shape, count=8):
    """A few sensor-noise patterns (0..4 added, saturating), cycled: cheap, and no two frames alike."""
    rng = numpy.random.RandomState(1)
    return [rng.randint(0, 5, size=shape).astype(numpy.uint8) for _ in range(count)]


def frame_at(background, person, index, noise):
    frame = background.copy()
    dx = int(round(6 * numpy.sin(index / 15.0)))
    dy = int(round(3 * numpy.cos(index / 20.0)))
    x0, y0 = 700 + dx, 300 + dy
    frame[y0:y0 + 512, x0:x0 + 512] = person
    return cv2.add(frame, noise[index % len(noise)]), (dx, dy)


def jpeg_size(image):
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return len(encoded)


def scene_bytes(seconds, background, person, face_box, noise):
    flicker = random.Random(2)
    env = {"DEEPLENS_BUCKET": "deeplens-bench", "DEEPLENS_DETECTOR": "opencv", "AWS_IOT_THING_NAME": "deeplens_bench"}
    config = settings.load_settings(env)
    clock = SimClock()
    uploads = RecordingUploader()
    messages = io.StringIO()
    edge = loop.EdgeLoop(config, uploads, publish.StdoutPublisher(messages),
                         face_gate=gate.FaceGate(gate.gate_config_from_settings(config), clock=clock,
                                                 wall_clock=lambda: 1.7e9 + clock.now),
                         open_components=lambda: None, clock=clock)
    seed_bytes = cloud_bytes = seed_crops = 0
    frames = int(seconds * FPS)
    height, width = background.shape[:2]
    for index in range(frames):
        frame, (dx, dy) = frame_at(background, person, index, noise)
        seen = flicker.random() >= 0.10
        box = (face_box[0] + dx, face_box[1] + dy, face_box[2] + dx, face_box[3] + dy)
        faces = [Detection("face", 0.9, box)] if seen else []
        edge.process_frame(frame, faces)
        if seen:  # the seed: crop +- 25 px, no clamping, every frame
            x0, y0, x1, y1 = (int(v) for v in box)
            seed_bytes += jpeg_size(frame[max(0, y0 - 25):min(height, y1 + 25), max(0, x0 - 25):min(width, x1 + 25)])
            seed_crops += 1
        if index % int(FPS) == 0:
            cloud_bytes += jpeg_size(frame)
        clock.now += 1.0 / FPS
    for _ in range(int(3 * FPS)):  # the person leaves; the track ends
        edge.process_frame(background, [])
        clock.now += 1.0 / FPS
    edge.finish(0.0)
    return {"ours": sum(uploads.sizes), "ours_crops": len(uploads.sizes), "seed": seed_bytes,
            "seed_crops": seed_crops, "cloud": cloud_bytes, "cloud_frames": (frames + int(FPS) - 1) // int(FPS),
            "messages": len(messages.getvalue().encode())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    args = parser.parse_args()
    background, person = build_scene()
    noise = make_noise(background.shape)
    first, _ = frame_at(background, person, 0, noise)
    found = detectors.make_detector("opencv").detect(first)
    face_box = max(found, key=lambda d: d.score).box
    print("face box from CenterFace on frame 0: %s (score %.2f); %g fps, 10 %% detector flicker"
          % (tuple(int(v) for v in face_box), max(d.score for d in found), FPS))
    print("%7s | %-22s | %-24s | %-24s | %9s | %9s" % ("seconds", "ours (crops, bytes)", "seed (crops, bytes)",
                                                       "cloud (frames, bytes)", "ours/seed", "ours/cloud"))
    for seconds in args.seconds:
        result = scene_bytes(seconds, background, person, face_box, noise)
        print("%7g | %4d %17d | %5d %18d | %5d %18d | %9s | %9s" % (
            seconds, result["ours_crops"], result["ours"], result["seed_crops"], result["seed"],
            result["cloud_frames"], result["cloud"], "1/%.0f" % (result["seed"] / float(result["ours"])),
            "1/%.0f" % (result["cloud"] / float(result["ours"]))))
        print("        (IoT messages, ours: %d bytes at 1 per second)" % result["messages"])
    print("goals: ours/seed <= 1/20, ours/cloud <= 1/50")


if __name__ == "__main__":
    main()
