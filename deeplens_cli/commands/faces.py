"""`faces`: the face crops a device uploaded - list the newest, optionally download them with a contact sheet.

Gather (crops.CropIndex: newest folders first, one HEAD per listed crop for its metadata) -> `FacesReport` ->
a table or one JSON document. Face crops are biometric data: this command only reads (never an ACL, never a
presigned URL), and `--download` writes each JPEG with mode 0600 into a folder it keeps at 0700, skipping files
that are already there so a re-run fetches only what is new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from deeplens_cli.cli.printable import printable
from deeplens_cli.cli.timespec import parse_since
from deeplens_cli.errors import ConfigError
from deeplens_cli.file_errors import NAME_MAX, file_system_error
from deeplens_cli.simulator.contact_sheet import Tile, build_contact_sheet
from deeplens_cli.targets.registry import find_device
from deeplens_cli.views.crops import Crop, CropIndex

if TYPE_CHECKING:
    from deeplens_cli.cli.app import App
    from deeplens_cli.cli.output import Reporter

DEFAULT_LIMIT = 20
CONTACT_SHEET = "contact_sheet.png"


@dataclass
class Download:
    """What `--download` did: the folder, files written, files that were already there, the contact sheet."""

    folder: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    contact_sheet: str | None = None
    contact_sheet_problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "written": self.written, "skipped": self.skipped,
                "contact_sheet": self.contact_sheet, "contact_sheet_problem": self.contact_sheet_problem}


@dataclass
class FacesReport:
    bucket: str
    prefix: str
    device: str | None  # the IoT thing name filtered on
    since: dt.datetime | None
    limit: int
    crops: list[Crop]
    more: bool
    scan_bounded: bool
    list_calls: int
    head_calls: int
    download: Download | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "prefix": self.prefix, "device": self.device,
                "since": self.since.isoformat() if self.since else None, "limit": self.limit,
                "count": len(self.crops), "more": self.more, "scan_bounded": self.scan_bounded,
                "crops": [crop.to_dict() for crop in self.crops],
                "requests": {"list": self.list_calls, "head": self.head_calls},
                "download": self.download.to_dict() if self.download else None}


def run_faces(app: App, device_name: str | None, since: str | None, limit: int, download_dir: str | None,
              now: Callable[[], dt.datetime] | None = None) -> None:
    """The `faces` command: resolve the device, gather, download when asked, render."""
    current = (now or _utc_now)()
    since_at = parse_since(since, current) if since else None  # exit 2 before any AWS call
    if download_dir:
        prepare_download_folder(Path(download_dir))  # a folder that cannot be written: exit 2, before any AWS call
    settings = app.settings
    thing = None
    if device_name:
        thing = find_device(app.ctx, settings, device_name, app.reporter).thing_name
    report = gather_faces(app.ctx.client("s3"), settings.require("bucket"), settings["prefix"],
                          settings["key_template"], current, device=thing, since=since_at, limit=limit)
    if download_dir:
        report.download = download_crops(app.ctx.client("s3"), report, Path(download_dir), app.reporter)
    if app.reporter.json:
        app.reporter.emit_json(report.to_dict())
    else:
        render(report, app.reporter)


def gather_faces(s3: Any, bucket: str, prefix: str, key_template: str, now: dt.datetime, device: str | None = None,
                 since: dt.datetime | None = None, limit: int = DEFAULT_LIMIT) -> FacesReport:
    index = CropIndex(s3, bucket, prefix, key_template, now)
    listing = index.search(limit, since=since, device=device)
    return FacesReport(bucket=bucket, prefix=prefix, device=device, since=since, limit=limit, crops=listing.crops,
                       more=listing.more, scan_bounded=listing.scan_bounded, list_calls=listing.list_calls,
                       head_calls=listing.head_calls)


# ---------------------------------------------------------------------------------------------- download


def local_name(crop: Crop, prefix: str) -> str:
    """A flat, unique file name for a crop: its key below the prefix with folders joined by '-'.

    S3 keys may be 1024 bytes, a file name only NAME_MAX (255): a longer name keeps its start and extension and
    gets a short hash of the whole key in between, so it stays unique and a re-run finds (and skips) the same file.
    """
    root = prefix.strip("/")
    relative = crop.key[len(root) + 1:] if root and crop.key.startswith(root + "/") else crop.key
    name = relative.replace("/", "-")
    if len(name.encode("utf-8")) <= NAME_MAX:
        return name
    stem, dot, extension = name.rpartition(".")
    suffix = f".{extension}" if dot and len(extension.encode("utf-8")) <= 16 else ""
    stem = stem if suffix else name
    tag = "-" + hashlib.sha256(crop.key.encode("utf-8")).hexdigest()[:16]
    room = NAME_MAX - len(tag) - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:room].decode("utf-8", errors="ignore") + tag + suffix


def prepare_download_folder(folder: Path) -> None:
    """Create `--download` (0700), or tighten an existing one to 0700: before any AWS call, so a folder that cannot
    be written is a usage error and not a failure after the listing."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    except FileExistsError:
        raise ConfigError(f"--download {folder} is a file", "choose a folder for the crops") from None
    except OSError as exc:
        raise file_system_error(exc, folder, flag="--download") or exc from exc


def download_crops(s3: Any, report: FacesReport, folder: Path, reporter: Reporter | None = None) -> Download:
    """Save each crop as a 0600 file in `folder` (made or tightened to 0700); skip files already there.

    Each file is written under a temporary name and renamed into place, so an interrupted download never leaves
    a truncated JPEG that a re-run would then skip. The contact sheet covers every listed crop. A full disk is one
    line naming the file (what was written stays: a re-run fetches only the rest).
    """
    prepare_download_folder(folder)
    result = Download(folder=str(folder))
    try:
        _download_into(s3, report, folder, result)
        _add_contact_sheet(report, folder, result)
    except OSError as exc:
        raise file_system_error(exc, flag="--download") or exc from exc
    if result.contact_sheet_problem and reporter is not None:
        reporter.warn(result.contact_sheet_problem)
    return result


def _add_contact_sheet(report: FacesReport, folder: Path, result: Download) -> None:
    try:
        result.contact_sheet = str(_contact_sheet(report, folder))
    except ImportError as exc:  # numpy/OpenCV are the [edge] extra, not a base dependency
        result.contact_sheet_problem = (
            f"no contact sheet: {exc.name} is not installed (pip install 'deeplens-cli[edge]')"
        )
    except OSError as exc:
        if exc.errno is not None:
            raise
        result.contact_sheet_problem = f"no contact sheet: {exc}"  # OpenCV could not write it, and says no more


def _download_into(s3: Any, report: FacesReport, folder: Path, result: Download) -> None:
    for crop in report.crops:
        target = folder / local_name(crop, report.prefix)
        if target.exists():
            result.skipped.append(target.name)
            continue
        body = s3.get_object(Bucket=report.bucket, Key=crop.key)["Body"].read()
        _write_private(target, body)
        result.written.append(target.name)


def _write_private(target: Path, body: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")  # mkstemp creates 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except OSError as exc:  # a full disk fails the write, which names no file: name the crop's
        Path(temporary).unlink(missing_ok=True)
        exc.filename = str(target)
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _contact_sheet(report: FacesReport, folder: Path) -> Path:
    import cv2  # noqa: F401 - ImportError here means "no sheet", reported by the caller
    import numpy

    tiles = []
    for crop in report.crops:
        data = numpy.fromfile(str(folder / local_name(crop, report.prefix)), dtype=numpy.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            continue  # not a decodable JPEG: listed, downloaded, but not drawn
        score = f"{crop.confidence:.2f}" if crop.confidence is not None else "?"
        tiles.append(Tile(image, (printable(f"{crop.device or '?'} {score}"), printable(crop.key))))
    who = report.device or "all devices"
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".part-", suffix=".png")
    os.close(descriptor)
    try:
        build_contact_sheet(tiles, temporary, title=f"{len(tiles)} face crop(s), {who}, newest first")
        os.chmod(temporary, 0o600)
        sheet = folder / CONTACT_SHEET
        os.replace(temporary, sheet)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return sheet


# ---------------------------------------------------------------------------------------------- rendering


def render(report: FacesReport, reporter: Reporter) -> None:
    where = f"s3://{report.bucket}/{report.prefix}"
    who = f" from {report.device}" if report.device else ""
    window = f" since {report.since.isoformat()}" if report.since else ""
    if not report.crops:
        reporter.line(f"No face crops{who} under {where}{window}.")
    else:
        reporter.table(f"Face crops{who} under {where}{window}, newest first",
                       ("time (UTC)", "device", "confidence", "track", "size", "key"),
                       [(crop.time.strftime("%Y-%m-%d %H:%M:%S"), crop.device or "-",
                         "-" if crop.confidence is None else f"{crop.confidence:.3f}",
                         "-" if crop.track is None else crop.track, _size(crop.size), crop.key)
                        for crop in report.crops])
    if report.more:
        reporter.line(f"More crops are older than these {len(report.crops)}: raise --limit or narrow --since.")
    if report.scan_bounded:
        reporter.line(
            "The device filter read the metadata of the newest crops only; narrow --since to look further back."
        )
    if report.download:
        d = report.download
        sheet = f"; contact sheet {d.contact_sheet}" if d.contact_sheet else ""
        reporter.line(f"Downloaded {len(d.written)} crop(s) to {d.folder} ({len(d.skipped)} already there){sheet}")


def _size(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size >= 1024 else f"{size} B"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
