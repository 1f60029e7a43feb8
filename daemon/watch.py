"""Folder watch: report each version of an image file once, after it has stopped changing, and
train it (:class:`WatchTrainer`, the watch's own thread).

watchdog's observer thread only records *when* a file may have changed; the watch thread calls
:meth:`FolderWatch.ready` periodically and gets each file once it has had no event for
``debounce`` seconds and its size and modification time are unchanged since the previous check
(a copy in progress keeps changing both). Files already in the folder at start are reported too.

Only events that can change a file's content count: created, modified, closed after writing,
moved into the folder (and deleted, which forgets the file). Opening and closing a file without
writing (``FileOpenedEvent``, ``FileClosedNoWriteEvent``, which inotify reports) are ignored:
the daemon reads each file it handles, and counting those reads as changes made it re-read
every file every ``debounce`` seconds forever. On top of that, the (size, mtime_ns)
of the version last reported is remembered per path, and a file whose (size, mtime_ns) is
unchanged is never reported again, whatever events arrive. Deduplication by content is
:class:`WatchTrainer`'s job.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from protocol.errors import one_line
from singan_core.config import preset

from .budget import MemoryBudget
from .images import checked_image_size
from .jobs import Job, JobQueue
from .prepare import Preparation, reserve
from .store import ModelStore, StudioMeta

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}
CHANGE_EVENTS = {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED, EVENT_TYPE_MOVED}
"""Event types after which a file's content may differ (``closed`` is inotify's close-after-write)."""


def is_candidate(path: Path) -> bool:
    """An image file by suffix, not hidden and not a temporary file (``.name``, ``name~``)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and not path.name.endswith("~")


@dataclass
class WatchCounts:
    """What the watch has done since the daemon started (shown in the ``jobs`` reply).

    ``reads`` counts file reads (each one hashes and decodes a file version once); a file that
    does not change is read once, ever.
    """

    reads: int = 0
    trained: int = 0
    skipped: int = 0
    failed: int = 0


class FolderWatch(FileSystemEventHandler):
    """Watches ``folder`` (not its subfolders). Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, folder: Path, debounce: float = 2.0):
        self.folder, self.debounce = Path(folder), debounce
        self.counts = WatchCounts()
        self._lock = threading.Lock()
        self._changed: dict[Path, float] = {}  # path -> monotonic time of its last change event
        self._stat: dict[Path, tuple[int, int]] = {}  # (size, mtime_ns) at the previous check
        self._handled: dict[Path, tuple[int, int]] = {}  # (size, mtime_ns) of the version last reported
        self._observer = Observer()

    @property
    def files_seen(self) -> int:
        """Image files in the folder that were reported at least once (and not deleted since)."""
        return len(self._handled)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(self, str(self.folder), recursive=False)
        self._observer.start()
        now = time.monotonic()
        with self._lock:
            for path in self.folder.iterdir():
                if not path.is_dir() and is_candidate(path):  # a symlink loop too: it fails, counted, when read
                    self._changed[path] = now - self.debounce  # due at the first check

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or (event.event_type not in CHANGE_EVENTS and event.event_type != EVENT_TYPE_DELETED):
            return
        for attr in ("src_path", "dest_path"):
            path = self._path(getattr(event, attr, ""))
            if path is None:
                continue
            with self._lock:
                if event.event_type == EVENT_TYPE_DELETED or (
                    event.event_type == EVENT_TYPE_MOVED and attr == "src_path"
                ):
                    self._changed.pop(path, None)
                    self._handled.pop(path, None)
                else:
                    self._changed[path] = time.monotonic()

    def _path(self, raw: str | bytes) -> Path | None:
        """The event's path if it is a candidate file directly in the folder."""
        if not raw:
            return None
        path = Path(raw.decode() if isinstance(raw, bytes) else raw)
        return path if path.parent == self.folder and is_candidate(path) else None

    def ready(self) -> list[Path]:
        """Files quiet for ``debounce`` s with a stable size and mtime, each version reported once."""
        now, out = time.monotonic(), []
        with self._lock:
            due = [p for p, t in self._changed.items() if now - t >= self.debounce]
        for path in due:
            try:
                st = path.stat()
                if path.is_dir():  # a folder named like an image (created under a file's name)
                    raise IsADirectoryError(path)
            except OSError as exc:  # deleted or renamed away; or unreadable: reported, to fail (counted) when read
                with self._lock:
                    self._changed.pop(path, None)
                    self._handled.pop(path, None)
                self._stat.pop(path, None)
                if not isinstance(exc, (FileNotFoundError, IsADirectoryError)):
                    out.append(path)
                continue
            stat = (st.st_size, st.st_mtime_ns)
            if self._stat.get(path) == stat and st.st_size > 0:
                with self._lock:
                    if self._changed.get(path, now) <= now - self.debounce:
                        del self._changed[path]
                        if self._handled.get(path) != stat:
                            self._handled[path] = stat
                            out.append(path)
                self._stat.pop(path, None)
            else:
                self._stat[path] = stat
        return sorted(out)


class WatchTrainer:
    """Trains every image that appears in a watched folder, in its own thread: reading and hashing
    watched files never holds up the daemon's socket loop. It only touches thread-safe parts (the
    store's index, the job queue) and the watch's counts.

    Args:
        watch: the folder's :class:`FolderWatch` (started and stopped here).
        preset_name: the trainings' preset. store, queue, budget: the daemon's.
        stop: the daemon's stop event; the thread ends when it is set.
    """

    def __init__(
        self,
        watch: FolderWatch,
        preset_name: str,
        store: ModelStore,
        queue: JobQueue,
        budget: MemoryBudget,
        stop: threading.Event,
    ):
        self.watch, self.preset_name = watch, preset_name
        self.store, self.queue, self.budget, self._stop = store, queue, budget, stop
        self._skips: dict[Path, str] = {}  # watched file -> the content hash whose skip was logged
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching and the watch thread."""
        self.watch.start()
        self._start_thread()
        log.info("watching %s (preset %s)", self.watch.folder, self.preset_name)

    def stop(self) -> None:
        """Wait for the thread (the stop event must be set: it may be queueing a training), then stop watching."""
        if self._thread is not None:
            self._thread.join()
        self.watch.stop()

    def check(self) -> None:
        """Restart the watch thread if it died (called by the socket loop), saying so in the log."""
        if self._thread is None or self._thread.is_alive() or self._stop.is_set():
            return
        log.error("watch: its thread had stopped; restarted")
        self._start_thread()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="singan-watch")
        self._thread.start()

    def _loop(self) -> None:
        """Each file is isolated (:meth:`_watched_file`); should a pass fail anyway, it is logged and
        the loop goes on (and the socket loop restarts a thread that died, :meth:`check`)."""
        while not self._stop.wait(0.5):
            try:
                for path in self.watch.ready():
                    self._watched_file(path)
            except Exception as exc:  # a bug: keep watching
                log.exception("watch: a pass failed (%s); the watch goes on", one_line(f"{type(exc).__name__}: {exc}"))

    def _watched_file(self, path: Path) -> None:
        """A new version of a file of the watched folder: read it once, and train it unless a
        generative model of the same bytes exists. A file replaced with other content trains a new
        model (``<stem>-2``, ...); the old model stays. A skip is logged at info level once per file
        and content, at debug level after that. Any failure with this one file (unreadable,
        vanished, a symlink loop, truncated, a decompression bomb, over the size limits or the
        memory budget) counts as ``failed`` with a one-line warning."""
        counts = self.watch.counts
        try:
            size = path.stat().st_size
            if size > self.budget.inputs:
                raise ValueError(
                    f"{size // 2**20} MiB, over the {self.budget.inputs // 2**20} MiB the memory budget allows for an input"
                )
            data = path.read_bytes()
            counts.reads += 1
            sha = hashlib.sha256(data).hexdigest()
            if self.store.find(sha):
                counts.skipped += 1
                level = logging.DEBUG if self._skips.get(path) == sha else logging.INFO
                self._skips[path] = sha
                log.log(level, "%s: already trained (same content), skipped", one_line(path.name))
                return
            width, height = checked_image_size(data)
            prep = Preparation(
                preset(self.preset_name),
                self.preset_name,
                StudioMeta(name=path.stem),
                path.name,
                file_bytes=data,
                sha256=sha,
            )
            model_id = reserve(self.store, prep, height, width)
        except Exception as exc:  # this file only: the watch goes on
            counts.failed += 1
            log.warning(
                "%s: not trained: %s",
                one_line(path.name),
                one_line(f"{exc}" if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {exc}"),
            )
            return
        counts.trained += 1
        job = Job("train", None, model_id, prepare=prep)
        self.queue.put(job)
        log.info("%s: training as model %s (job %s)", one_line(path.name), model_id, job.id)
