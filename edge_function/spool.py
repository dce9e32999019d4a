"""The disk spool: face crops waiting for S3, in a folder the spool owns, oldest first, within a byte cap.

Why each rule exists (issue 14):

* **Owned folder.** ``DEEPLENS_SPOOL_DIR`` is configurable, so it may point at a folder that holds other
  files (the seed's spool once deleted a user's photos because ``--spool-dir`` was the ``--source`` folder).
  The spool claims a folder with a marker file (``.deeplens-spool``): it creates the folder (or claims an empty
  one, or one holding only spool entries from an older version), and refuses a folder with anything else in
  it. Inside its folder it only ever touches names it writes itself (``<20 digits>.jpg|.json``, their
  ``.tmp`` and the ``quarantine`` subfolder): a stray file is left alone.
* **Durable entries.** An entry is ``<seq>.jpg`` + ``<seq>.json`` (key and metadata). Each file is written to a
  ``.tmp`` name, fsynced, moved into place, and the folder is fsynced after the sidecar (the commit point), so a
  power cut leaves a whole entry or an orphan that the next start removes - never half a JPEG that looks whole.
  A failed write removes its ``.tmp`` at once (a full disk used to leave one per crop).
* **Monotonic order.** ``seq`` continues from the highest number on disk, so the order is the order of
  capture even after the wall clock jumps backwards (the seed named entries by time in nanoseconds).
* **Quarantine, not deletion.** An entry S3 refuses for good (a 403 after a prefix change, bad metadata, a
  broken JPEG) moves to ``quarantine/`` (capped at a tenth of the spool cap, oldest removed first), so it no
  longer blocks the entries behind it and an operator can still look at it.
* **A spool that cannot be written** (read-only, full, cannot be created) never stops detection: writes fail
  and are counted as drops, one log line per streak names ``DEEPLENS_SPOOL_DIR``. A read-only spool is not
  drained (its entries could not be removed after upload, and every start would upload them again).
"""

import collections
import errno
import json
import logging
import os
import re
import threading
import time
from typing import Any, List, Optional, Set, Tuple

LOG = logging.getLogger(__name__)

MARKER = ".deeplens-spool"
QUARANTINE = "quarantine"
SETTING = "DEEPLENS_SPOOL_DIR (--spool-dir)"
# 20 digits; older versions appended "-<pid>-<n>" to a time in nanoseconds. Both sort by their number.
_ENTRY_NAME = re.compile(r"^(\d{20})(-\d+-\d+)?\.(jpg|json)(\.tmp)?$")
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
_REOPEN_EVERY_S = 10.0
_EVICTION_LOG_EVERY_S = 10.0


class SpoolFolderError(ValueError):
    """The configured spool folder belongs to someone else; one line for the operator."""


def jpeg_problem(body: bytes) -> Optional[str]:
    """Why ``body`` is not a complete JPEG (None when it is): a 0-byte or truncated crop must not reach S3 as
    ``image/jpeg``, because Rekognition fails on it downstream. Checks the start-of-image and end-of-image
    markers, which is what a truncated write loses."""
    if not isinstance(body, (bytes, bytearray)) or len(body) < 4:
        return "empty or tiny JPEG (%d bytes)" % (len(body) if isinstance(body, (bytes, bytearray)) else -1)
    if body[:2] != b"\xff\xd8":
        return "not a JPEG (no start-of-image marker)"
    if body[-2:] != b"\xff\xd9":
        return "truncated JPEG (no end-of-image marker)"
    return None


def metadata_problem(metadata: object) -> Optional[str]:
    """Why S3 user metadata would be refused before it is sent (None when it is fine): botocore raises an
    AttributeError on a non-string value, and S3 refuses non-ASCII header values."""
    if not isinstance(metadata, dict):
        return "metadata is not a mapping"
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            return "metadata %r=%r is not text" % (name, value)
        try:
            (name + value).encode("ascii")
        except UnicodeEncodeError:
            return "metadata %r is not ASCII" % name
    return None


class Entry(collections.namedtuple("Entry", "stem key body metadata problem")):
    """One spooled crop as read back: ``problem`` says why it cannot be sent (unreadable sidecar...)."""

    __slots__ = ()


class Spool:
    """Crops waiting on disk, oldest first, within a byte cap (thread-safe); see the module docstring."""

    def __init__(self, directory: str, max_bytes: int, quarantine_max_bytes: Optional[int] = None) -> None:
        self.directory = directory
        self.quarantine_dir = os.path.join(directory, QUARANTINE)
        self.max_bytes = max_bytes
        self.quarantine_max_bytes = max(0, max_bytes // 10 if quarantine_max_bytes is None else quarantine_max_bytes)
        self.dropped = 0  # evicted by the cap or lost to a failed write
        self.quarantined = 0
        self.left_behind = 0  # entries found but not drained (read-only folder) or uploaded but not removable
        self.available = False  # the folder exists and is ours
        self.writable = False  # the last write succeeded (or none was tried since it opened)
        self.read_only = False
        self._lock = threading.Lock()
        self._entries: "collections.OrderedDict[str, int]" = collections.OrderedDict()  # stem -> bytes
        self._bytes = 0
        self._quarantine: "collections.OrderedDict[str, int]" = collections.OrderedDict()
        self._quarantine_bytes = 0
        self._done: Set[str] = set()  # uploaded, but the files could not be removed: never upload again
        self._next = 0
        self._next_open = 0.0
        self._failure_logged = False
        self._last_eviction_log = -_EVICTION_LOG_EVERY_S
        self._open()

    # --- opening the folder -------------------------------------------------------------------------------

    def _open(self) -> None:
        """Claim the folder and index what a previous run left. A foreign folder raises SpoolFolderError; a folder
        that cannot be created or written leaves the spool unavailable or read-only (logged, retried later)."""
        self._next_open = time.monotonic() + _REOPEN_EVERY_S
        try:
            os.makedirs(self.directory, exist_ok=True)
            names = os.listdir(self.directory)
        except OSError as error:
            self._log_failure("cannot create or read the spool folder %s: %s" % (self.directory, error))
            return
        if MARKER not in names:
            foreign = sorted(name for name in names if not _ENTRY_NAME.match(name) and name != QUARANTINE)
            if foreign:
                raise SpoolFolderError(
                    "invalid %s %r: the folder holds files the spool did not write (%s%s); expected a new or empty "
                    "folder used only for the spool" % (SETTING, self.directory, ", ".join(foreign[:3]),
                                                        ", ..." if len(foreign) > 3 else ""))
        try:
            _write_durably(os.path.join(self.directory, MARKER), b"deeplens edge spool: crops waiting for S3\n")
        except OSError as error:
            if error.errno in _READ_ONLY_ERRNOS:
                self.read_only = True
                waiting = sum(1 for name in names if name.endswith(".json") and _ENTRY_NAME.match(name))
                with self._lock:
                    self.left_behind = waiting
                self._log_failure("the spool folder %s is read-only: %d crops waiting there are left untouched, new "
                                  "crops cannot be spooled: %s" % (self.directory, waiting, error))
                return
            if not (error.errno == errno.ENOSPC and MARKER in names):
                self._log_failure("cannot write to the spool folder %s: %s" % (self.directory, error))
                return
        self._index(names)
        self.available = True
        self.writable = True
        self.read_only = False

    def _index(self, names: List[str]) -> None:
        """Index complete entries; remove the spool's own half-written files (never anything else)."""
        present = set(names)
        highest = -1
        for name in sorted(names):
            match = _ENTRY_NAME.match(name)
            if not match:
                continue
            highest = max(highest, int(match.group(1)))
            stem, suffix, temporary = name[:match.end(2) if match.group(2) else 20], match.group(3), match.group(4)
            partner = stem + (".json" if suffix == "jpg" else ".jpg")
            if temporary or partner not in present:
                _remove_quietly(os.path.join(self.directory, name))  # never committed, or its pair is gone
            elif suffix == "json":
                try:
                    size = os.path.getsize(self._path(stem, ".jpg")) + os.path.getsize(self._path(stem, ".json"))
                except OSError:
                    continue
                self._entries[stem] = size
                self._bytes += size
        self._next = highest + 1
        self._index_quarantine()
        self._enforce_cap()

    def _index_quarantine(self) -> None:
        try:
            names = sorted(os.listdir(self.quarantine_dir))
        except OSError:
            return
        for name in names:
            match = _ENTRY_NAME.match(name)
            if match and match.group(3) == "json" and not match.group(4):
                stem = name[:-5]
                try:
                    size = sum(os.path.getsize(os.path.join(self.quarantine_dir, stem + suffix))
                               for suffix in (".jpg", ".json"))
                except OSError:
                    continue
                self._quarantine[stem] = size
                self._quarantine_bytes += size

    def _reopen_if_due(self) -> None:
        if not self.available and time.monotonic() >= self._next_open:
            try:
                self._open()
            except SpoolFolderError as error:
                self._log_failure(str(error))
            if self.available:
                LOG.warning("spool folder %s is usable again", self.directory)

    # --- state ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def can_write(self) -> bool:
        """Worth sending a crop here rather than keeping it in memory."""
        return self.available and self.writable

    def _path(self, stem: str, suffix: str) -> str:
        return os.path.join(self.directory, stem + suffix)

    # --- writing -------------------------------------------------------------------------------------------

    def add(self, item: Any) -> bool:
        """Persist a crop (``key``, ``body``, ``metadata`` attributes) durably; False when it was dropped (larger
        than the whole cap, or the write failed)."""
        key, body, metadata = item.key, item.body, item.metadata
        self._reopen_if_due()
        sidecar = json.dumps({"key": key, "metadata": metadata, "spooled_at": time.time()}).encode("utf-8")
        size = len(body) + len(sidecar)
        if not self.available or size > self.max_bytes:
            with self._lock:
                self.dropped += 1
            return False
        with self._lock:
            stem = "%020d" % self._next
            self._next += 1
        try:
            _write_durably(self._path(stem, ".jpg"), body, sync_folder=False)
            _write_durably(self._path(stem, ".json"), sidecar)
        except OSError as error:
            _remove_quietly(self._path(stem, ".jpg"))
            self.writable = False
            with self._lock:
                self.dropped += 1
            self._log_failure("spool write failed, crop %s dropped (and every crop until the spool folder %s can be "
                              "written again): %s" % (key, self.directory, error))
            return False
        if not self.writable or self._failure_logged:
            LOG.warning("spool folder %s is writable again", self.directory)
        self.writable = True
        self._failure_logged = False
        with self._lock:
            self._entries[stem] = size
            self._bytes += size
            self._enforce_cap()
        return True

    def _enforce_cap(self) -> None:
        """Drop the oldest entries beyond the cap (called with the lock held); logged, at most every 10 s."""
        evicted = 0
        while self._bytes > self.max_bytes and self._entries:
            stem, size = self._entries.popitem(last=False)
            self._bytes -= size
            self.dropped += 1
            evicted += 1
            _remove_quietly(self._path(stem, ".json"))
            _remove_quietly(self._path(stem, ".jpg"))
        now = time.monotonic()
        if evicted and now - self._last_eviction_log >= _EVICTION_LOG_EVERY_S:
            self._last_eviction_log = now
            LOG.warning("spool over its cap of %.1f MB: the oldest crops are dropped (%d so far, %d entries kept)",
                        self.max_bytes / 1048576.0, self.dropped, len(self._entries))

    def _log_failure(self, message: str) -> None:
        """One ERROR line per streak of failures, naming the setting; DEBUG after that."""
        if self._failure_logged:
            LOG.debug("%s", message)
            return
        self._failure_logged = True
        LOG.error("%s; check %s", message, SETTING)

    # --- reading and removing ------------------------------------------------------------------------------

    def oldest(self) -> Optional[Entry]:
        """The oldest entry not already uploaded, or None. An unreadable one comes back with ``problem`` set."""
        with self._lock:
            stem = next((name for name in self._entries if name not in self._done), None)
        if stem is None:
            return None
        try:
            with open(self._path(stem, ".json"), "rb") as handle:
                sidecar = json.loads(handle.read().decode("utf-8"))
            with open(self._path(stem, ".jpg"), "rb") as handle:
                body = handle.read()
            return Entry(stem, str(sidecar["key"]), body, sidecar.get("metadata") or {}, None)
        except (OSError, ValueError, KeyError, TypeError) as error:
            return Entry(stem, "(unreadable spool entry %s)" % stem, b"", {}, "unreadable spool entry: %s" % error)

    def remove(self, stem: str) -> bool:
        """Forget an uploaded entry; False if it was already gone (evicted meanwhile). An entry whose files cannot
        be removed (read-only folder) is remembered as done, so this run never uploads it again."""
        with self._lock:
            size = self._entries.get(stem)
            if size is None:
                return False
        try:
            for suffix in (".json", ".jpg"):
                _remove_or_gone(self._path(stem, suffix))
        except OSError as error:
            with self._lock:
                if stem not in self._done:
                    self._done.add(stem)
                    self.left_behind += 1
            self._log_failure("uploaded crop cannot be removed from the spool folder %s: %s" % (self.directory, error))
            return True
        with self._lock:
            if self._entries.pop(stem, None) is not None:
                self._bytes -= size
        return True

    def quarantine(self, stem: str) -> bool:
        """Move an entry S3 refuses out of the way (into ``quarantine/``); False if it was already gone."""
        with self._lock:
            size = self._entries.pop(stem, None)
            if size is None:
                return False
            self._bytes -= size
            self.quarantined += 1
        try:
            os.makedirs(self.quarantine_dir, exist_ok=True)
            for suffix in (".jpg", ".json"):
                os.replace(self._path(stem, suffix), os.path.join(self.quarantine_dir, stem + suffix))
            _sync_folder(self.directory)
        except OSError as error:
            LOG.debug("quarantine move of %s failed: %s", stem, error)
            for suffix in (".json", ".jpg"):
                _remove_quietly(self._path(stem, suffix))
            return True
        with self._lock:
            self._quarantine[stem] = size
            self._quarantine_bytes += size
            self._enforce_quarantine_cap()
        return True

    def quarantine_new(self, item: Any) -> None:
        """Keep a refused crop that never reached the spool (it came from memory) in ``quarantine/``."""
        key, body, metadata = item.key, item.body, item.metadata
        with self._lock:
            self.quarantined += 1
            stem = "%020d" % self._next
            self._next += 1
        if not self.available:
            return
        try:
            os.makedirs(self.quarantine_dir, exist_ok=True)
            sidecar = json.dumps({"key": key, "metadata": repr(metadata)}).encode("utf-8")
            _write_durably(os.path.join(self.quarantine_dir, stem + ".jpg"), bytes(body), sync_folder=False)
            _write_durably(os.path.join(self.quarantine_dir, stem + ".json"), sidecar)
        except (OSError, TypeError, ValueError) as error:
            LOG.debug("cannot keep refused crop %s in quarantine: %s", key, error)
            return
        with self._lock:
            self._quarantine[stem] = len(body) + len(sidecar)
            self._quarantine_bytes += len(body) + len(sidecar)
            self._enforce_quarantine_cap()

    def _enforce_quarantine_cap(self) -> None:
        while self._quarantine_bytes > self.quarantine_max_bytes and self._quarantine:
            stem, size = self._quarantine.popitem(last=False)
            self._quarantine_bytes -= size
            for suffix in (".json", ".jpg"):
                _remove_quietly(os.path.join(self.quarantine_dir, stem + suffix))

    def uncount_drop(self) -> None:
        """A crop counted as dropped was kept after all (uploaded while evicted, or kept in memory)."""
        with self._lock:
            self.dropped -= 1

    def pending(self) -> int:
        """Entries still waiting to be uploaded, plus those left behind in a folder the spool could not change."""
        with self._lock:
            return len(self._entries) - len(self._done) + self.left_behind

    def stems(self) -> Tuple[str, ...]:
        with self._lock:
            return tuple(self._entries)


def _write_durably(path: str, data: bytes, sync_folder: bool = True) -> None:
    """Write to ``<path>.tmp``, fsync, move into place, fsync the folder; on failure no ``.tmp`` is left."""
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        _remove_quietly(temporary)
        raise
    if sync_folder:
        _sync_folder(os.path.dirname(path) or ".")


def _sync_folder(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_or_gone(path: str) -> None:
    try:
        os.remove(path)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
