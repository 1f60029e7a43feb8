"""Folder watch: report each version of an image file once, after it has stopped changing.

watchdog's observer thread only records *when* a file may have changed; the socket loop calls
:meth:`FolderWatch.ready` periodically and gets each file once it has had no event for
``debounce`` seconds and its size and modification time are unchanged since the previous check
(a copy in progress keeps changing both). Files already in the folder at start are reported too.

Only events that can change a file's content count: created, modified, closed after writing,
moved into the folder (and deleted, which forgets the file). Opening and closing a file without
writing (``FileOpenedEvent``, ``FileClosedNoWriteEvent``, which inotify reports) are ignored:
the daemon reads each file it handles, and counting those reads as changes made it re-read
every file every ``debounce`` seconds forever (issue 18). On top of that, the (size, mtime_ns)
of the version last reported is remembered per path, and a file whose (size, mtime_ns) is
unchanged is never reported again, whatever events arrive. Deduplication by content is the
caller's job.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED, EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

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
                if event.event_type == EVENT_TYPE_DELETED or (event.event_type == EVENT_TYPE_MOVED and attr == "src_path"):
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
