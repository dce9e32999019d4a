"""Face crops to S3 without ever making the capture loop wait on the network.

The seed called ``put_object`` inside the inference loop: a slow or dead network stalled detection, and
an error lost the crop. Here the capture thread only calls ``submit()``, which puts the crop on a bounded
in-memory queue and returns at once; when the queue is full the crop is written to the spool directory
instead, so memory stays flat whatever the network does. ONE worker thread owns the S3 client:

* online: it uploads spooled crops first (oldest first), then queued ones;
* an upload fails (after botocore's own retries, ``retries={"mode": "standard"}`` with short
  timeouts): the crop goes to the spool and the worker turns offline. While offline it moves queued
  crops to the spool without trying the network, and probes with the oldest spooled crop after a delay
  that doubles (with jitter) up to ``retry_max_s``. The first probe that succeeds turns it online and the
  spool drains;
* at start-up a spool left by a previous run (crash, reboot, outage) is drained first.

Spool entries are ``<name>.jpg`` + ``<name>.json`` (key and metadata), each written to a temporary name
and moved into place with ``os.replace``; the sidecar is written last and is the commit point, so a crash
mid-write leaves only a temporary file or a JPEG without sidecar, both cleaned up at the next start.
(No fsync: a power cut may still lose the newest entries; an unreadable entry is dropped and counted.)
The spool has a size cap: the oldest entries are dropped beyond it (``dropped`` counter).

Each crop's S3 key is fixed when it is captured (``keys.KeyFactory``) and never changes on its way
through queue and spool, so an upload repeated after a crash or a timeout overwrites the same object
with the same bytes: never two objects for one crop. (S3 does send a second event for the overwrite, so a
crop whose upload succeeded just before a crash or a shutdown deadline can reach the downstream pipeline
twice; the key is the same, so it can de-duplicate on it.) No ACL is ever sent: ``public-read`` fails on buckets with ACLs disabled (the S3 default)
and would publish biometric data.

``close(deadline_s)`` lets the worker flush until the deadline; whatever is still waiting then is
spooled for the next start.
"""

import collections
import itertools
import json
import logging
import os
import queue
import random
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

LOG = logging.getLogger(__name__)

UploadItem = collections.namedtuple("UploadItem", "key body metadata")
UploadItem.__doc__ = """One crop: S3 key fixed at capture, JPEG bytes, S3 user metadata (str -> str)."""

CONTENT_TYPE = "image/jpeg"
# Errors that will fail again for this object however often it is retried (a bug, not an outage):
# the crop is dropped and counted instead of blocking the spool forever.
_PERMANENT_ERROR_CODES = frozenset((
    "InvalidArgument", "KeyTooLongError", "MetadataTooLarge", "EntityTooLarge", "InvalidRequest",
))
_OK, _RETRY, _REJECTED = "ok", "retry", "rejected"
_spool_sequence = itertools.count()


def make_s3_client(endpoint_url: Optional[str] = None, max_attempts: int = 3,
                   connect_timeout: float = 3.0, read_timeout: float = 10.0):
    """An S3 client that gives up quickly, so the worker notices an outage and starts spooling.

    botocore's standard retry mode already retries throttling, 5xx and connection errors with
    exponential backoff; the worker's own offline/probe cycle handles longer outages. The endpoint also
    follows ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` (botocore), which is how tests and the demo
    point the device at an emulator.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


class Spool:
    """Crops waiting on disk, oldest first, within a byte cap (thread-safe)."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped = 0
        self._lock = threading.Lock()
        self._entries: "collections.OrderedDict[str, int]" = collections.OrderedDict()  # name -> bytes
        self._bytes = 0
        os.makedirs(directory, exist_ok=True)
        self._recover()

    def _path(self, name: str, suffix: str) -> str:
        return os.path.join(self.directory, name + suffix)

    def _recover(self) -> None:
        """Index what a previous run left; remove half-written files."""
        names = sorted(os.listdir(self.directory))
        present = set(names)
        for name in names:
            path = os.path.join(self.directory, name)
            if name.endswith(".tmp"):
                _remove_quietly(path)
            elif name.endswith(".jpg") and name[:-4] + ".json" not in present:
                _remove_quietly(path)  # the sidecar (commit point) was never written
        for name in names:
            if not name.endswith(".json"):
                continue
            stem = name[:-5]
            try:
                size = os.path.getsize(self._path(stem, ".jpg")) + os.path.getsize(self._path(stem, ".json"))
            except OSError:
                _remove_quietly(self._path(stem, ".json"))
                continue
            self._entries[stem] = size
            self._bytes += size
        self._enforce_cap()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, item: UploadItem) -> bool:
        """Persist a crop; False when it was dropped (larger than the whole cap, or the disk failed)."""
        sidecar = json.dumps({"key": item.key, "metadata": item.metadata, "spooled_at": time.time()}).encode()
        size = len(item.body) + len(sidecar)
        if size > self.max_bytes:
            with self._lock:
                self.dropped += 1
            return False
        stem = "%020d-%d-%d" % (time.time() * 1e9, os.getpid(), next(_spool_sequence))
        try:
            _write_atomically(self._path(stem, ".jpg"), item.body)
            _write_atomically(self._path(stem, ".json"), sidecar)
        except OSError as error:
            LOG.error("spool write failed, crop %s dropped: %s", item.key, error)
            _remove_quietly(self._path(stem, ".jpg"))
            with self._lock:
                self.dropped += 1
            return False
        with self._lock:
            self._entries[stem] = size
            self._bytes += size
            self._enforce_cap()
        return True

    def _enforce_cap(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            stem, size = self._entries.popitem(last=False)
            self._bytes -= size
            self.dropped += 1
            _remove_quietly(self._path(stem, ".json"))
            _remove_quietly(self._path(stem, ".jpg"))

    def oldest(self) -> Optional[Tuple[str, UploadItem]]:
        """The oldest readable entry (unreadable ones are dropped on the way), or None."""
        while True:
            with self._lock:
                if not self._entries:
                    return None
                stem = next(iter(self._entries))
            try:
                with open(self._path(stem, ".json"), "rb") as handle:
                    sidecar = json.loads(handle.read().decode("utf-8"))
                with open(self._path(stem, ".jpg"), "rb") as handle:
                    body = handle.read()
                return stem, UploadItem(sidecar["key"], body, sidecar.get("metadata") or {})
            except (OSError, ValueError, KeyError, TypeError) as error:
                if self.remove(stem):
                    LOG.warning("unreadable spool entry %s dropped: %s", stem, error)
                    with self._lock:
                        self.dropped += 1

    def recount_evicted_but_uploaded(self) -> None:
        with self._lock:
            self.dropped -= 1

    def remove(self, stem: str) -> bool:
        """Forget an entry (uploaded or unreadable); False if it was already gone (evicted meanwhile)."""
        with self._lock:
            size = self._entries.pop(stem, None)
            if size is None:
                return False
            self._bytes -= size
        _remove_quietly(self._path(stem, ".json"))
        _remove_quietly(self._path(stem, ".jpg"))
        return True


def _write_atomically(path: str, data: bytes) -> None:
    temporary = path + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


class SpoolingUploader:
    """Bounded queue -> one worker thread -> S3, with a disk spool for outages (see module docstring)."""

    def __init__(
        self,
        bucket: str,
        spool_dir: str,
        client: Any = None,
        client_factory: Callable[[], Any] = make_s3_client,
        queue_size: int = 16,
        spool_max_bytes: int = 100 * 1024 * 1024,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 60.0,
        start: bool = True,
    ) -> None:
        self.bucket = bucket
        self._client = client if client is not None else client_factory()
        self._queue: "queue.Queue[UploadItem]" = queue.Queue(maxsize=queue_size)
        self.queue_size = queue_size
        self._spool = Spool(spool_dir, spool_max_bytes)
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._retry_delay = retry_initial_s
        self._online = True
        self._closed = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._inflight_lock = threading.Lock()
        self._inflight: Optional[UploadItem] = None
        self._counts_lock = threading.Lock()
        self._counts = collections.OrderedDict(
            (name, 0) for name in ("captured", "uploaded", "spooled", "failed", "rejected"))
        self._thread = threading.Thread(target=self._run, name="s3-uploader", daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        self._thread.start()

    # --- capture side ---------------------------------------------------------------------------------

    def submit(self, item: UploadItem) -> None:
        """Hand over a crop; never blocks on the network (a full queue sends it to the spool)."""
        self._count("captured")
        if not self._closed:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                pass
        self._to_spool(item)

    def stats(self) -> Dict[str, Any]:
        """Counters for messages and logs: captured, uploaded, spooled, dropped, failed (attempts),
        rejected (permanent errors), queue depth, spool entries and bytes, online."""
        with self._counts_lock:
            result: Dict[str, Any] = dict(self._counts)
        result["dropped"] = self._spool.dropped + result["rejected"]
        result["queue_depth"] = self._queue.qsize()
        result["spool_items"] = len(self._spool)
        result["spool_bytes"] = self._spool.bytes
        result["online"] = self._online
        return result

    def close(self, deadline_s: float = 10.0) -> bool:
        """Flush for at most ``deadline_s`` seconds; spool what is left. True when nothing is pending."""
        self._closed = True
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline_s))
        if self._thread.is_alive():
            self._abort.set()
            with self._inflight_lock:
                inflight, self._inflight = self._inflight, None
            if inflight is not None:
                self._to_spool(inflight)  # same key: if its upload still succeeds, a re-upload is harmless
        self._spill_queue()
        return self._queue.empty() and len(self._spool) == 0

    # --- worker ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        """The worker: one step at a time until stopped. An unexpected error (a bug, a full disk) is logged and
        retried after a back-off instead of ending the thread: a dead worker would leave every later crop on
        disk until the process restarts."""
        failures = 0
        while not self._abort.is_set():
            try:
                if not self._step():
                    return
                failures = 0
            except Exception:  # noqa: BLE001 - see the docstring
                failures += 1
                LOG.exception("upload worker error (%d in a row); retrying", failures)
                self._wake.wait(min(self._retry_initial_s * 2 ** min(failures, 16), self._retry_max_s))

    def _step(self) -> bool:
        """Upload one crop (spooled first) or wait briefly for one; False when the worker should exit."""
        if not self._online:
            return self._probe()
        spooled = self._spool.oldest()
        if spooled is not None:
            self._send_spooled(*spooled)
            return True
        try:
            item = self._queue.get(timeout=0.1)
        except queue.Empty:
            return not self._stopping.is_set()
        self._send_queued(item)
        return True

    def _probe(self) -> bool:
        """Offline: park queued crops on disk, wait, retry the oldest. False when the worker should exit."""
        self._spill_queue()
        if not self._stopping.is_set():
            delay = self._retry_delay * (0.5 + 0.5 * random.random())
            self._wake.wait(delay)
            self._wake.clear()
        if self._abort.is_set():
            return False
        spooled = self._spool.oldest()
        if spooled is None:
            self._set_online(True)
            return True
        self._send_spooled(*spooled)
        if self._online:
            return True
        self._retry_delay = min(self._retry_delay * 2.0, self._retry_max_s)
        if self._stopping.is_set():
            self._spill_queue()
            return False
        return True

    def _send_spooled(self, stem: str, item: UploadItem) -> None:
        outcome = self._put(item)
        if outcome == _RETRY:
            self._set_online(False)
            return
        if not self._spool.remove(stem):
            # The cap evicted this entry (and counted it dropped) while its upload was in flight; the upload
            # succeeded, so the crop was not lost after all.
            self._spool.recount_evicted_but_uploaded()
        self._set_online(True)

    def _send_queued(self, item: UploadItem) -> None:
        with self._inflight_lock:  # close() sets _abort before it takes _inflight under this lock
            if self._abort.is_set():
                self._to_spool(item)
                return
            self._inflight = item
        outcome = self._put(item)
        with self._inflight_lock:
            mine = self._inflight is item
            self._inflight = None
        if outcome == _RETRY:
            if mine:  # else close() already spooled it
                self._to_spool(item)
            self._set_online(False)

    def _put(self, item: UploadItem) -> str:
        from botocore.exceptions import ClientError, ParamValidationError

        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=item.key,
                Body=item.body,
                ContentType=CONTENT_TYPE,
                Metadata=item.metadata,
            )
        except (ClientError, ParamValidationError) as error:
            self._count("failed")
            code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
            if isinstance(error, ParamValidationError) or code in _PERMANENT_ERROR_CODES:
                LOG.error("S3 rejected %s for good, dropped: %s", item.key, error)
                self._count("rejected")
                return _REJECTED
            self._note_failure(item, error)
            return _RETRY
        except Exception as error:  # connection errors, timeouts, credential problems: an outage
            self._count("failed")
            self._note_failure(item, error)
            return _RETRY
        self._count("uploaded")
        return _OK

    def _note_failure(self, item: UploadItem, error: Exception) -> None:
        if self._online:
            LOG.warning("upload of %s failed, spooling until S3 is reachable: %s", item.key, error)

    def _set_online(self, online: bool) -> None:
        if online and not self._online:
            LOG.info("S3 reachable again; draining %d spooled crops", len(self._spool))
            self._retry_delay = self._retry_initial_s
        self._online = online

    def _spill_queue(self) -> None:
        pending: List[UploadItem] = []
        while True:
            try:
                pending.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for item in pending:
            self._to_spool(item)

    def _to_spool(self, item: UploadItem) -> None:
        if self._spool.add(item):
            self._count("spooled")

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1
