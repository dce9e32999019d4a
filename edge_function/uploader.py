"""Face crops to S3 without ever making the capture loop wait on the network, and without losing them silently.

The capture thread only calls ``submit()``, which returns at once. Where the crop goes depends on the state:

* **online**: a bounded in-memory queue for the ONE upload worker thread, which owns the S3 client and uploads
  spooled crops first (oldest first), then queued ones;
* **offline** (the last upload met an outage) or **stalled** (an upload has been in flight for longer than
  ``stall_after_s``): straight to the disk spool (``spool.py``), written and fsynced before ``submit()`` returns,
  so a kill -9 in an outage loses at most the crop being written (the seed kept them in memory until the next
  probe and lost 32 of 124). That is disk time on the capture thread, only while S3 is away, a few ms per crop
  against a gate that sends a handful per minute; never a network wait. With the queue full the same happens
  online;
* a spool that cannot be written keeps crops in the bounded queue instead (and drops beyond it, counted).

An upload ends in one of three ways, and the difference is the point of this module:

* **sent**;
* **outage** - no answer, a timeout, 5xx, throttling, a credentials or clock problem, a missing bucket: S3 (or
  the way to it) is unwell for every crop. The crop goes to the spool and the worker turns offline: it waits
  with a backoff that doubles (with jitter) up to ``retry_max_s`` and probes with the oldest waiting crop. Only a
  probe that S3 accepts turns it online again - never "nothing to send" (the seed flapped online/offline once a
  second with an unwritable spool);
* **refused** - a 4xx about this one object (AccessDenied after a ``prefix`` change narrowed the device's grant,
  bad metadata, a key too long) or a crop that fails the checks before sending (not a whole JPEG, metadata that is
  not ASCII text): it is quarantined (``spool.quarantine``), counted and logged once, and the next crop goes at
  once. The seed treated these as outages and retried the same oldest entry forever, so one refused entry
  stopped every upload.

botocore retries inside each attempt: ``retries={"mode": "standard", "total_max_attempts": N}`` (``N`` attempts in
all; ``max_attempts`` in the config means retries *after* the first), or the legacy ``max_attempts=N-1`` on a
botocore older than 1.15, which has no retry modes. Timeouts are short, so a dead endpoint is noticed within
seconds.

Each crop's S3 key is fixed when it is captured (``keys.KeyFactory``) and never changes on its way through
queue and spool, so an upload repeated after a crash overwrites the same object with the same bytes: never two
objects for one crop (S3 still sends a second event, so downstream can de-duplicate on the key). No ACL is ever
sent: ``public-read`` fails on buckets with ACLs disabled (the S3 default) and would publish biometric data.

``close(deadline_s)`` lets the worker flush until the deadline; what is still waiting then is spooled for the next
start, and it returns False unless every crop is in S3 (or quarantined) and nothing was left in the spool.
"""

import collections
import logging
import queue
import random
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from edge_function.spool import Entry, Spool, jpeg_problem, metadata_problem

LOG = logging.getLogger(__name__)

UploadItem = collections.namedtuple("UploadItem", "key body metadata")
UploadItem.__doc__ = """One crop: S3 key fixed at capture, JPEG bytes, S3 user metadata (str -> str)."""

CONTENT_TYPE = "image/jpeg"
_SENT, _OUTAGE, _REFUSED = "sent", "outage", "refused"
# 4xx codes that are about S3, the credentials or the clock, not about this object: an outage, retried later.
OUTAGE_CODES = frozenset((
    "SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "RequestLimitExceeded", "RequestThrottled",
    "RequestTimeout", "RequestTimeTooSkewed", "RequestExpired", "ExpiredToken", "ExpiredTokenException",
    "InvalidToken", "TokenRefreshRequired", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
    "InvalidClientTokenId", "AuthorizationHeaderMalformed", "PermanentRedirect", "TemporaryRedirect",
))
OBJECT_REFUSAL_CODES = frozenset((
    "AccessDenied", "InvalidArgument", "KeyTooLongError", "MetadataTooLarge", "EntityTooLarge", "InvalidRequest",
    "InvalidDigest", "BadDigest", "InvalidObjectState",
))
COUNTERS = ("captured", "uploaded", "spooled", "quarantined", "dropped", "failed")


def retry_config(max_attempts: int) -> Dict[str, Any]:
    """botocore ``retries`` for ``max_attempts`` attempts in all: standard mode where botocore has it (1.15+),
    legacy retries otherwise (an old botocore refuses ``mode`` and the loop would not start at all)."""
    from botocore.config import Config
    from botocore.exceptions import InvalidRetryConfigurationError

    attempts = max(1, int(max_attempts))
    try:
        Config(retries={"mode": "standard", "total_max_attempts": attempts})
        return {"mode": "standard", "total_max_attempts": attempts}
    except InvalidRetryConfigurationError:
        return {"max_attempts": attempts - 1}


def make_s3_client(endpoint_url: Optional[str] = None, max_attempts: int = 3,
                   connect_timeout: float = 3.0, read_timeout: float = 10.0):
    """An S3 client that gives up quickly (``max_attempts`` attempts in all), so the worker notices an outage and
    spools. The endpoint also follows ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` (botocore 1.31+), which is how
    tests and the demo point the device at an emulator."""
    import boto3
    from botocore.config import Config

    config = Config(retries=retry_config(max_attempts), connect_timeout=connect_timeout, read_timeout=read_timeout)
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def classify_error(error: BaseException) -> str:
    """``_OUTAGE`` or ``_REFUSED`` for an exception raised by ``put_object`` (see the module docstring)."""
    from botocore.exceptions import ClientError, ParamValidationError

    if isinstance(error, ParamValidationError):
        return _REFUSED
    if isinstance(error, ClientError):
        details = error.response.get("Error", {}) or {}
        code = str(details.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status is None:  # no HTTP answer recorded: only a code known to be about the object is a refusal
            return _REFUSED if code in OBJECT_REFUSAL_CODES else _OUTAGE
        if code in OUTAGE_CODES or status == 429 or not 400 <= int(status) < 500:
            return _OUTAGE
        return _REFUSED
    if isinstance(error, (AttributeError, TypeError, UnicodeError)):  # botocore serialising a bad value
        return _REFUSED
    return _OUTAGE  # connection errors, timeouts, missing credentials


class SpoolingUploader:
    """Bounded queue -> one worker thread -> S3, with a disk spool for outages (see the module docstring)."""

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
        stall_after_s: float = 2.0,
        start: bool = True,
    ) -> None:
        self.bucket = bucket
        self._spool = Spool(spool_dir, spool_max_bytes)
        self._client = client if client is not None else client_factory()
        self._queue: "queue.Queue[UploadItem]" = queue.Queue(maxsize=queue_size)
        self.queue_size = queue_size
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._retry_delay = retry_initial_s
        self._stall_after_s = stall_after_s
        self._online = True
        self._closed = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._inflight_lock = threading.Lock()
        # Held while queued crops are moved to the spool: they are off the queue and only in the mover's hands
        # until each is written, so close() takes it too and returns only once they are on disk.
        self._spill_lock = threading.Lock()
        self._inflight: Optional[UploadItem] = None  # a queued crop being uploaded (close() may spool it)
        self._inflight_since: Optional[float] = None
        self._held: Optional[UploadItem] = None  # the worker's probe crop when the spool cannot take it
        self._counts_lock = threading.Lock()
        self._counts = collections.OrderedDict((name, 0) for name in COUNTERS)
        self._thread = threading.Thread(target=self._run, name="s3-uploader", daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        self._thread.start()

    # --- capture side ---------------------------------------------------------------------------------

    def submit(self, item: UploadItem) -> None:
        """Hand over a crop; never blocks (see the module docstring for where it goes)."""
        self._count("captured")
        if self._closed:
            self._to_spool(item)
            return
        if (not self._online or self._stalled()) and self._spool.can_write:
            if self._to_spool(item):
                return
            try:  # the spool just failed: keep the crop in memory while there is room
                self._queue.put_nowait(item)
                self._spool.uncount_drop()
            except queue.Full:
                pass  # counted as dropped by the spool
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._to_spool(item)

    def stats(self) -> Dict[str, Any]:
        """Counters for messages and logs: captured, uploaded, spooled, quarantined, dropped (cap evictions, failed
        writes), failed (upload attempts that met an outage); queue depth, spool entries and bytes, online (False
        while offline or while an upload has been hanging for longer than ``stall_after_s``)."""
        with self._counts_lock:
            result: Dict[str, Any] = dict(self._counts)
        result["dropped"] += self._spool.dropped
        result["quarantined"] = self._spool.quarantined
        result["queue_depth"] = self._queue.qsize()
        result["spool_items"] = len(self._spool)
        result["spool_bytes"] = self._spool.bytes
        result["online"] = self._online and not self._stalled()
        return result

    def close(self, deadline_s: float = 10.0) -> bool:
        """Flush for at most ``deadline_s`` seconds; spool what is left. True only when every crop reached S3 (or
        quarantine) and the spool holds nothing, not even entries it could not remove."""
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
        held, self._held = self._held, None
        if held is not None:
            self._to_spool(held)
        self._spill(self._queue)
        return self._queue.empty() and self._spool.pending() == 0 and held is None

    # --- worker ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        """The worker: one step at a time until stopped. An unexpected error (a bug) is logged and retried after a
        back-off instead of ending the thread: a dead worker would leave every later crop on disk."""
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
        entry = self._spool.oldest()
        if entry is not None:
            self._send_entry(entry)
            return True
        try:
            item = self._queue.get(timeout=0.1)
        except queue.Empty:
            return self._keep_going()
        self._send_item(item)
        return True

    def _keep_going(self) -> bool:
        """Whether the worker goes on when it found nothing to do: until stopped, and once stopped only while the
        spool still holds a crop. The spool is looked at again *after* the stop is seen, because the worker's last
        look came before its 0.1 s wait on the queue: a crop spooled meanwhile (queue full, or an upload stalled)
        by a ``submit()`` that returned before ``close()`` was otherwise left behind, and ``close()`` reported
        False with its deadline unused."""
        return not self._stopping.is_set() or self._spool.oldest() is not None

    def _probe(self) -> bool:
        """Offline: park queued crops on disk, wait, then try the oldest waiting crop. Only a crop S3 accepts turns
        the worker online; a refused one is quarantined and the next is tried at once."""
        if self._spool.can_write:
            self._spill(self._queue)
        if not self._stopping.is_set():  # stopping: one last try at once, then the rest waits on disk
            self._wake.wait(self._retry_delay * (0.5 + 0.5 * random.random()))
            self._wake.clear()
        while not self._abort.is_set():
            entry = self._spool.oldest()
            if entry is not None:
                outcome = self._send_entry(entry)
            else:
                if self._held is None:
                    try:
                        self._held = self._queue.get_nowait()
                    except queue.Empty:
                        return self._keep_going()  # nothing to probe with: stay offline
                outcome = self._send_item(self._held, held=True)
            if outcome != _REFUSED:
                break
        if not self._online:
            self._retry_delay = min(self._retry_delay * 2.0, self._retry_max_s)
        return not self._stopping.is_set() or self._online

    def _send_entry(self, entry: Entry) -> str:
        problem = entry.problem or jpeg_problem(entry.body) or metadata_problem(entry.metadata)
        outcome = _REFUSED if problem else self._put(entry.key, entry.body, entry.metadata)
        if outcome == _OUTAGE:
            self._go_offline()
            return outcome
        if outcome == _REFUSED:
            if self._spool.quarantine(entry.stem):
                LOG.error("spooled crop %s refused, quarantined in %s: %s", entry.key,
                          self._spool.quarantine_dir, problem or self._last_error)
            return outcome
        if not self._spool.remove(entry.stem):
            # The cap evicted this entry (and counted it dropped) while its upload was in flight; the upload
            # succeeded, so the crop was not lost after all.
            self._spool.uncount_drop()
        self._go_online()
        return outcome

    def _send_item(self, item: UploadItem, held: bool = False) -> str:
        problem = jpeg_problem(item.body) or metadata_problem(item.metadata)
        if problem:
            outcome = _REFUSED
        else:
            with self._inflight_lock:  # close() sets _abort before it takes _inflight under this lock
                if self._abort.is_set():
                    self._to_spool(item)
                    return _OUTAGE
                self._inflight = item
            outcome = self._put(item.key, item.body, item.metadata)
            with self._inflight_lock:
                mine = self._inflight is item
                self._inflight = None
            if not mine:  # close() spooled it already
                self._held = None
                return outcome
        if outcome == _REFUSED:
            self._held = None
            self._spool.quarantine_new(item)
            LOG.error("crop %s refused, quarantined in %s: %s", item.key, self._spool.quarantine_dir,
                      problem or self._last_error)
            return outcome
        if outcome == _OUTAGE:
            if self._spool.can_write:
                self._held = None
                self._to_spool(item)
            elif not held:
                self._held = item  # keep it in memory as the next probe
            self._go_offline()
            return outcome
        self._held = None
        self._go_online()
        return outcome

    _last_error = ""

    def _put(self, key: str, body: bytes, metadata: Dict[str, str]) -> str:
        self._inflight_since = time.monotonic()
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=CONTENT_TYPE,
                                    Metadata=metadata)
        except Exception as error:  # noqa: BLE001 - classified below
            outcome = classify_error(error)
            self._last_error = str(error) if hasattr(error, "response") else "%s: %s" % (type(error).__name__, error)
            if outcome == _OUTAGE:
                self._count("failed")
                if self._online:
                    LOG.warning("upload of %s failed, spooling until S3 is reachable: %s", key, error)
            return outcome
        finally:
            self._inflight_since = None
        self._count("uploaded")
        return _SENT

    def _stalled(self) -> bool:
        since = self._inflight_since
        return since is not None and time.monotonic() - since > self._stall_after_s

    def _go_offline(self) -> None:
        self._online = False

    def _go_online(self) -> None:
        if not self._online:
            LOG.info("S3 reachable again (a waiting crop was accepted); %d spooled crops left to upload",
                     self._spool.pending())
            self._retry_delay = self._retry_initial_s
        self._online = True

    def _spill(self, source: "queue.Queue[UploadItem]") -> None:
        """Move every queued crop to the spool (local writes only: never waits for the network)."""
        with self._spill_lock:
            pending: List[UploadItem] = []
            while True:
                try:
                    pending.append(source.get_nowait())
                except queue.Empty:
                    break
            for item in pending:
                self._to_spool(item)

    def _to_spool(self, item: UploadItem) -> bool:
        if self._spool.add(item):
            self._count("spooled")
            return True
        return False

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1
