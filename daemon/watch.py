"""Folder watch: report image files once they have stopped changing.

watchdog's observer thread only records *when* a file last changed; the socket loop calls
:meth:`FolderWatch.ready` periodically and gets each file once it has had no event for
``debounce`` seconds and its size and modification time are unchanged since the previous check
(a copy in progress keeps changing both). Files already in the folder at start are reported too.
Deduplication by content is the caller's job.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


def is_candidate(path: Path) -> bool:
    """An image file by suffix, not hidden and not a temporary file (``.name``, ``name~``)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and not path.name.endswith("~")


class FolderWatch(FileSystemEventHandler):
    """Watches ``folder`` (not its subfolders). Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, folder: Path, debounce: float = 2.0):
        self.folder, self.debounce = Path(folder), debounce
        self._lock = threading.Lock()
        self._changed: dict[Path, float] = {}  # path -> monotonic time of its last event
        self._stat: dict[Path, tuple[int, int]] = {}  # (size, mtime_ns) at the previous check
        self._observer = Observer()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(self, str(self.folder), recursive=False)
        self._observer.start()
        now = time.monotonic()
        with self._lock:
            for path in self.folder.iterdir():
                if path.is_file() and is_candidate(path):
                    self._changed[path] = now - self.debounce  # due at the first check

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        for attr in ("src_path", "dest_path"):
            raw = getattr(event, attr, "")
            path = Path(raw.decode() if isinstance(raw, bytes) else raw) if raw else None
            if path is not None and path.parent == self.folder and is_candidate(path):
                with self._lock:
                    self._changed[path] = time.monotonic()

    def ready(self) -> list[Path]:
        """Files quiet for ``debounce`` s with a stable size and mtime, each reported once per change."""
        now, out = time.monotonic(), []
        with self._lock:
            due = [p for p, t in self._changed.items() if now - t >= self.debounce]
        for path in due:
            try:
                st = path.stat()
            except OSError:  # deleted or renamed away
                with self._lock:
                    self._changed.pop(path, None)
                self._stat.pop(path, None)
                continue
            stat = (st.st_size, st.st_mtime_ns)
            if self._stat.get(path) == stat and st.st_size > 0:
                with self._lock:
                    if self._changed.get(path, now) <= now - self.debounce:
                        del self._changed[path]
                        out.append(path)
            self._stat[path] = stat
        return sorted(out)
