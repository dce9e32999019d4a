"""keys.py: the workshop's key layout, keys that never collide, small ASCII metadata."""

import re
import threading
import time

import pytest

from edge_function import __version__, keys

# 2023-11-14 22:13:20.5 UTC
CAPTURED_AT = 1700000000.5


def factory(**kwargs):
    kwargs.setdefault("localtime", time.gmtime)
    return keys.KeyFactory(**kwargs)


def test_default_layout_is_the_workshops_with_a_unique_suffix():
    make = factory(boot_id="k3f9q2")
    assert make.make_key(CAPTURED_AT) == "faces/11_14/22_13/1700000000_k3f9q2-1.jpg"
    assert make.make_key(CAPTURED_AT) == "faces/11_14/22_13/1700000000_k3f9q2-2.jpg"


def test_month_day_hour_minute_are_unpadded_like_the_workshop():
    key = factory(boot_id="abcdef").make_key(1704171845.0)  # 2024-01-02 05:04:05 UTC
    assert key.startswith("faces/1_2/5_4/1704171845_")


def test_many_crops_in_the_same_millisecond_get_distinct_keys():
    make = factory()
    generated = [make.make_key(CAPTURED_AT) for _ in range(10000)]
    assert len(set(generated)) == 10000


def test_keys_are_unique_across_threads():
    make = factory()
    generated = []
    lock = threading.Lock()

    def produce():
        mine = [make.make_key(CAPTURED_AT) for _ in range(2000)]
        with lock:
            generated.extend(mine)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(generated)) == 8000


def test_a_restarted_process_does_not_reuse_keys_of_the_same_second():
    before_restart = {factory().make_key(CAPTURED_AT) for _ in range(1000)}
    after_restart = {factory().make_key(CAPTURED_AT) for _ in range(1000)}
    assert not before_restart & after_restart


def test_boot_ids_are_random_per_start():
    assert len({keys.new_boot_id() for _ in range(200)}) == 200
    assert re.match(r"^[a-z2-7]{6}$", keys.new_boot_id())


def test_empty_prefix_and_custom_template():
    assert factory(prefix="", boot_id="abcdef").make_key(CAPTURED_AT) == "11_14/22_13/1700000000_abcdef-1.jpg"
    custom = factory(prefix="/site-a/", template="{prefix}/{device}/{year}/{timestamp_ms}-{track}-{n}.jpg",
                     device="deeplens_x", boot_id="abcdef")
    assert custom.make_key(CAPTURED_AT, track_id=7) == "site-a/deeplens_x/2023/1700000000500-7-abcdef-1.jpg"


@pytest.mark.parametrize("template, expected", [
    ("{prefix}/{timestamp}.jpg", "{n}"),
    ("{prefix}/{nope}_{n}.jpg", "not {nope}"),
    ("{prefix/{n}.jpg", "balanced"),
])
def test_unusable_templates_are_explained(template, expected):
    assert expected in keys.template_problem(template)
    with pytest.raises(ValueError):
        keys.KeyFactory(template=template)


def test_default_template_is_usable():
    assert keys.template_problem(keys.DEFAULT_TEMPLATE) is None


def test_metadata_is_small_ascii_strings():
    metadata = keys.object_metadata("deeplens_é", "awscam-ssd", 0.93456, (100.4, 200.6, 180.0, 290.2),
                                    (1920, 1080), 12, CAPTURED_AT)
    assert metadata == {
        "device": "deeplens_?",
        "detector": "awscam-ssd",
        "confidence": "0.935",
        "box": "100,201,180,290",
        "frame-size": "1920x1080",
        "track-id": "12",
        "captured-at": "2023-11-14T22:13:20.500Z",
        "software-version": __version__,
    }
    assert sum(len(k) + len(v) for k, v in metadata.items()) < 2048
