"""`faces`: the newest crops first, with the metadata the device wrote, found without listing the bucket."""

from __future__ import annotations

import datetime as dt
import json
import stat

import boto3
import pytest
from crop_fixtures import BUCKET, count_calls, put_crops

from deeplens_cli.commands.faces import gather_faces

NOW = dt.datetime(2026, 11, 30, 9, 30, tzinfo=dt.timezone.utc)
TEMPLATE = "{month}_{day}/{hour}_{minute}/{timestamp}_{n}.jpg"
ENV = {"DEEPLENS_BUCKET": BUCKET, "DEEPLENS_REGION": "us-east-1"}


@pytest.fixture
def s3(aws_plain):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def minutes_ago(*minutes: float, now: dt.datetime = NOW) -> list[dt.datetime]:
    return [now - dt.timedelta(minutes=m) for m in minutes]


class TestNewestFirst:

    def test_lists_newest_first_with_device_confidence_and_track_from_the_metadata(self, s3):
        put_crops(s3, "cam-a", minutes_ago(50, 5, 20))
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW)
        assert [c.time for c in report.crops] == sorted((c.time for c in report.crops), reverse=True)
        assert report.crops[0].time == NOW - dt.timedelta(minutes=5)
        assert {c.device for c in report.crops} == {"cam-a"}
        assert report.crops[0].confidence == pytest.approx(0.93)
        assert report.crops[0].track == 1  # the second crop put, the newest
        assert report.crops[0].captured_at.endswith("Z")

    def test_unpadded_folder_names_are_ordered_by_number_not_text(self, s3):
        # "9_5" sorts after "10_0" as text; as times 10:00 is newer.
        put_crops(s3, "cam-a", [dt.datetime(2026, 11, 30, 9, 5, tzinfo=dt.timezone.utc),
                                dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc),
                                dt.datetime(2026, 11, 9, 23, 59, tzinfo=dt.timezone.utc)])
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW.replace(hour=11))
        assert [c.time.strftime("%d %H:%M") for c in report.crops] == ["30 10:00", "30 09:05", "09 23:59"]

    def test_last_years_december_comes_after_this_januarys_crops(self, s3):
        january = dt.datetime(2027, 1, 2, 8, 0, tzinfo=dt.timezone.utc)
        put_crops(s3, "cam-a", [dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.timezone.utc), january])
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, january + dt.timedelta(hours=1))
        assert [c.time.month for c in report.crops] == [1, 12]

    def test_on_new_years_eve_a_device_already_in_january_is_newest(self, s3):
        # At 12:00 UTC on 31 December a UTC+14 device writes 1_1 folders: those are the newest, not last January's.
        new_year = dt.datetime(2027, 1, 1, 2, 0, tzinfo=dt.timezone.utc)
        put_crops(s3, "cam-kiribati", [new_year])
        put_crops(s3, "cam-a", [dt.datetime(2026, 12, 31, 11, 0, tzinfo=dt.timezone.utc)])
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.timezone.utc))
        assert [c.device for c in report.crops] == ["cam-kiribati", "cam-a"]

    def test_an_empty_bucket_answers_with_no_crops(self, s3):
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW)
        assert report.crops == [] and not report.more

    def test_objects_that_are_not_crops_are_ignored(self, s3):
        s3.put_object(Bucket=BUCKET, Key="faces/README.txt", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key="faces/not_a_date/x.jpg", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key="faces/11_30/9_0/notes.txt", Body=b"x")
        put_crops(s3, "cam-a", minutes_ago(1))
        assert len(gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW).crops) == 1


class TestPagination:

    def test_the_newest_page_of_a_large_bucket_lists_only_the_newest_folders(self, s3):
        # 30 days x 4 minutes x 3 crops = 360 crops; the newest 3 live in one minute folder.
        times = [NOW - dt.timedelta(days=day, minutes=minute) + dt.timedelta(seconds=second)
                 for day in range(30) for minute in (2, 8, 14, 20) for second in (0, 10, 20)]
        put_crops(s3, "cam-a", times)
        lists = count_calls(s3, "ListObjectsV2")
        heads = count_calls(s3, "HeadObject")

        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW, limit=3)

        assert [c.time for c in report.crops] == sorted(times, reverse=True)[:3]
        assert report.more
        # the day level, the hour_minute level of today, the newest minute folder, and the next one to see "more"
        assert lists[0] <= 4, lists[0]
        assert heads[0] == 4  # the three shown + the one that proves there are more

    def test_since_stops_at_the_window_and_never_lists_older_days(self, s3):
        put_crops(s3, "cam-a", [NOW - dt.timedelta(days=d, minutes=2) for d in range(10)])
        lists = count_calls(s3, "ListObjectsV2")
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW, since=NOW - dt.timedelta(hours=1), limit=50)
        assert len(report.crops) == 1 and not report.more
        assert lists[0] <= 4, lists[0]  # days outside the window (with time-zone slack) are never opened


class TestDeviceFilter:

    def test_filters_by_the_device_metadata(self, s3):
        put_crops(s3, "cam-a", minutes_ago(1, 3))
        put_crops(s3, "cam-b", minutes_ago(2))
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW, device="cam-b")
        assert [c.device for c in report.crops] == ["cam-b"]

    def test_a_device_that_never_uploaded_gets_an_empty_answer(self, s3):
        put_crops(s3, "cam-a", minutes_ago(1, 3))
        report = gather_faces(s3, BUCKET, "faces/", TEMPLATE, NOW, device="cam-never")
        assert report.crops == [] and not report.scan_bounded

    def test_a_device_folder_in_the_template_filters_by_key_and_merges_devices_by_time(self, s3):
        template = "{device}/{month}_{day}/{timestamp}_{n}.jpg"
        put_crops(s3, "cam-a", minutes_ago(10, 30), template=template)
        put_crops(s3, "cam-b", minutes_ago(20), template=template)
        everyone = gather_faces(s3, BUCKET, "faces/", template, NOW)
        assert [c.device for c in everyone.crops] == ["cam-a", "cam-b", "cam-a"]
        heads = count_calls(s3, "HeadObject")
        only_b = gather_faces(s3, BUCKET, "faces/", template, NOW, device="cam-b")
        assert [c.device for c in only_b.crops] == ["cam-b"] and heads[0] == 1  # filtered by key, not by HEAD


# ---------------------------------------------------------------------------------------------- the command


def test_json_output_is_one_document(s3, run_cli):
    put_crops(s3, "cam-a", minutes_ago(1, 2, 3, now=dt.datetime.now(dt.timezone.utc)))
    result = run_cli("--output", "json", "faces", "--limit", "2", env=ENV)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["count"] == 2 and document["more"] is True
    assert document["crops"][0]["device"] == "cam-a"


def test_text_output_says_when_there_is_nothing(s3, run_cli):
    result = run_cli("faces", "--since", "1h", env=ENV)
    assert result.exit_code == 0, result.stderr
    assert "No face crops" in result.stdout


@pytest.mark.parametrize("since", ["yesterday", "10 parsecs", "2026-13-45", "-1h"])
def test_a_bad_since_is_a_usage_error(s3, run_cli, since):
    result = run_cli("faces", "--since", since, env=ENV)
    assert result.exit_code == 2
    assert "--since" in result.stderr and "expected" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_device_is_an_error_naming_it(s3, run_cli):
    result = run_cli("faces", "--device", "NoSuchCam", env=ENV)
    assert result.exit_code == 1
    assert "NoSuchCam" in result.stderr


def test_a_registered_device_that_never_uploaded_lists_nothing(s3, run_cli):
    iot = boto3.client("iot", region_name="us-east-1")
    iot.create_thing(thingName="cam-quiet", attributePayload={
        "attributes": {"deeplens_name": "Quiet", "deeplens_target": "v2"}})
    put_crops(s3, "cam-a", minutes_ago(1, now=dt.datetime.now(dt.timezone.utc)))
    result = run_cli("--output", "json", "faces", "--device", "Quiet", env=ENV)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["device"] == "cam-quiet" and document["crops"] == []


class TestDownload:

    def test_saves_private_files_in_a_private_folder_with_a_contact_sheet(self, s3, run_cli, tmp_path):
        import cv2
        import numpy

        ok, jpeg = cv2.imencode(".jpg", numpy.full((64, 48, 3), 120, dtype=numpy.uint8))
        now = dt.datetime.now(dt.timezone.utc)
        put_crops(s3, "cam-a", minutes_ago(1, 2, now=now), body=jpeg.tobytes())
        out = tmp_path / "crops"

        result = run_cli("--output", "json", "faces", "--download", str(out), env=ENV)

        assert result.exit_code == 0, result.stderr
        download = json.loads(result.stdout)["download"]
        assert len(download["written"]) == 2 and download["skipped"] == []
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        for name in download["written"] + ["contact_sheet.png"]:
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
        assert cv2.imread(str(out / "contact_sheet.png")) is not None
        assert not list(out.glob(".part-*"))

    def test_a_second_run_skips_what_is_already_there(self, s3, run_cli, tmp_path):
        now = dt.datetime.now(dt.timezone.utc)
        put_crops(s3, "cam-a", minutes_ago(1, 2, now=now))
        out = tmp_path / "crops"
        assert run_cli("faces", "--download", str(out), env=ENV).exit_code == 0
        result = run_cli("--output", "json", "faces", "--download", str(out), env=ENV)
        download = json.loads(result.stdout)["download"]
        assert download["written"] == [] and len(download["skipped"]) == 2

    def test_never_sends_an_acl_or_changes_the_bucket(self, s3, run_cli, tmp_path):
        put_crops(s3, "cam-a", minutes_ago(1, now=dt.datetime.now(dt.timezone.utc)))
        run_cli("faces", "--download", str(tmp_path / "d"), env=ENV)
        grants = s3.get_object_acl(Bucket=BUCKET, Key=s3.list_objects_v2(Bucket=BUCKET)["Contents"][0]["Key"])["Grants"]
        assert all("AllUsers" not in json.dumps(g) for g in grants)


class TestHostileMetadata:
    """Anyone who may write to the bucket chooses the metadata: it is shown as data, never as terminal control or
    rich markup, and a number JSON cannot carry is null."""

    TITLE_AND_CLEAR = "\x1b]0;OWNED\x07\x1b[2J"

    def put_with_metadata(self, s3, **metadata: str) -> str:
        [key] = put_crops(s3, "cam-a", minutes_ago(1, now=dt.datetime.now(dt.timezone.utc)))
        current = s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"\xff\xd8x", Metadata={**current, **metadata})
        return key

    @pytest.mark.parametrize("output", ["text", "table"])
    def test_terminal_control_in_the_device_metadata_is_shown_escaped(self, s3, run_cli, output):
        self.put_with_metadata(s3, device=self.TITLE_AND_CLEAR + "cam\bok")  # S3 metadata: ASCII, no CR or LF

        result = run_cli("--output", output, "faces", env={**ENV, "COLUMNS": "250"})

        assert result.exit_code == 0, result.stderr
        assert not {"\x1b", "\x07", "\b"} & set(result.stdout)
        assert "\\x1b]0;OWNED\\x07\\x1b[2Jcam\\x08ok" in result.stdout

    @pytest.mark.parametrize("device", ["[/bold]", "[red]x[/red]", "[link=https://example.com]y[/link]"])
    def test_markup_in_the_device_metadata_is_shown_not_parsed(self, s3, run_cli, device):
        self.put_with_metadata(s3, device=device)

        result = run_cli("--output", "table", "faces", env={**ENV, "COLUMNS": "250"})

        assert result.exit_code == 0, result.stderr
        assert device in result.stdout

    @pytest.mark.parametrize("confidence", ["nan", "inf", "-Infinity"])
    def test_a_confidence_that_is_not_finite_is_null_in_strict_json_with_a_warning(self, s3, run_cli, confidence):
        self.put_with_metadata(s3, confidence=confidence)

        result = run_cli("--output", "json", "faces", env=ENV)

        def refuse(constant):
            raise AssertionError(f"{constant} on stdout is not JSON")
        assert result.exit_code == 0, result.stderr
        [crop] = json.loads(result.stdout, parse_constant=refuse)["crops"]
        assert crop["confidence"] is None
        assert "printed as null: crops[0].confidence" in result.stderr


class TestLongKeys:
    """S3 keys may be 1024 bytes, file names only 255: the old tree failed the whole download with "unexpected error:
    OSError: [Errno 36] File name too long ... report it"."""

    TEMPLATE = "{month}_{day}/{hour}_{minute}/" + "site-" * 60 + "{timestamp}_{n}.jpg"

    def test_a_key_too_long_for_a_file_name_is_saved_under_a_short_unique_name(self, s3, run_cli, tmp_path):
        now = dt.datetime.now(dt.timezone.utc)
        keys = put_crops(s3, "cam-a", minutes_ago(1, 2, now=now), template=self.TEMPLATE)
        assert all(len(key) > 300 for key in keys)
        out = tmp_path / "crops"
        env = {**ENV, "DEEPLENS_KEY_TEMPLATE": self.TEMPLATE}

        result = run_cli("--output", "json", "faces", "--download", str(out), env=env)

        assert result.exit_code == 0, result.stderr
        written = json.loads(result.stdout)["download"]["written"]
        assert len(set(written)) == 2 and all(len(name.encode()) <= 255 and name.endswith(".jpg") for name in written)
        assert sorted(written) == sorted(path.name for path in out.glob("*.jpg"))
        again = json.loads(run_cli("--output", "json", "faces", "--download", str(out), env=env).stdout)["download"]
        assert again["written"] == [] and sorted(again["skipped"]) == sorted(written)  # the same names: skipped


def test_a_long_local_name_keeps_its_start_and_extension_and_differs_with_the_key():
    from deeplens_cli.commands.faces import local_name
    from deeplens_cli.views.crops import Crop

    def named(key: str) -> str:
        return local_name(Crop(key=key, time=NOW, size=1, device=None, confidence=None, track=None,
                               captured_at=None, detector=None), "faces/")

    first, second = "faces/" + "é" * 200 + "-1.jpg", "faces/" + "é" * 200 + "-2.jpg"  # same first 255 bytes
    assert named(first) != named(second) and named(first) == named(first)
    assert all(len(named(key).encode()) <= 255 and named(key).startswith("éé") and named(key).endswith(".jpg")
               for key in (first, second))
    assert named("faces/11_30/9_5/1_cam-a-0.jpg") == "11_30-9_5-1_cam-a-0.jpg"  # short names are unchanged
