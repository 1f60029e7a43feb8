"""The daemon's model store: one model directory per model (the core's format) under ``<root>/models``.

Model ids are slugs (``[a-z0-9][a-z0-9_-]*``, at most 64 characters), checked before any path is
built, so a request can never name a path outside the store. Beside the core's ``model.json``
each directory holds ``studio.json`` (:class:`StudioMeta`): the display name, the kind, and
whether an unfinished training was stopped on purpose (cancelled or failed) — models that were
merely interrupted (the daemon was killed) are resumed when the daemon starts again.

The store keeps an in-memory index of every model's :class:`ModelInfo` (read once at start, then
kept current by the store's own writes and :meth:`ModelStore.refresh` after each finished scale),
so ``list_models`` reads no file. A model being prepared (its training image not yet decoded and
written, see :mod:`daemon.worker`) is in the index as *reserved*, status ``queued``, before its
directory exists. Model directories copied into the store by hand appear at the next start.

Deleting a model renames its directory into ``<root>/models/.trash`` (one rename, so the caller, the
socket loop, is answered at once) and removes it there in a thread of its own; what a killed daemon
left in the trash is removed at the next start.
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from protocol.schema import ModelInfo
from protocol.errors import ProtocolError
from singan_core.errors import ModelLoadError
from singan_core.storage import META_FILE, ModelMeta, atomic_write_bytes, read_meta

STUDIO_FILE = "studio.json"
TRASH_DIR = ".trash"
"""Deleted model directories on their way out, under ``<root>/models`` (not a slug: never a model)."""
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class StudioMeta(BaseModel):
    """``studio.json``: what the daemon adds to a model directory."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Display name as given by the client (or the watched file's stem)."""
    kind: Literal["generative", "super_resolution"] = "generative"
    sr_factor: float | None = None
    """The factor a super-resolution model was trained for."""
    stopped: bool = False
    """An unfinished training was cancelled or failed: do not resume it at start-up."""
    error: str | None = None
    """Why the training failed."""


def slugify(name: str) -> str:
    """A model id from a display name: ASCII lower case, runs of other characters -> '-'.
    ``"Brick Wall (2).png"`` -> ``"brick-wall-2-png"``; ``"model"`` if nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:56].strip("-")
    return slug or "model"


class ModelStore:
    """Model directories under ``root/models``. Methods raise ``KeyError`` for an unknown id and
    ``ValueError`` for an id that is not a slug."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.models_dir = self.root / "models"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._empty_trash()
        self._lock = threading.Lock()  # the socket loop reads the index, the worker updates it
        self._index: dict[str, ModelInfo] = {}
        self._reserved: set[str] = set()
        for model_id in self.ids():
            self.refresh(model_id)

    # -- the index ----------------------------------------------------------------------------

    def refresh(self, model_id: str) -> None:
        """Re-read one model's files into the index (drop it if it is gone or unreadable)."""
        try:
            info = self._read_info(model_id)
        except (KeyError, ValueError, OSError):  # ModelLoadError is a ValueError
            info = None
        with self._lock:
            if info is not None:
                self._index[model_id] = info
                self._reserved.discard(model_id)
            elif model_id not in self._reserved:
                self._index.pop(model_id, None)

    def reserve(self, name: str, info: ModelInfo) -> str:
        """A new id for ``name`` (see :meth:`new_id`), listed with ``info`` until :meth:`refresh`
        finds its directory or :meth:`release` drops it."""
        with self._lock:
            model_id = self.new_id(name, taken=set(self._index) | self._reserved)
            self._reserved.add(model_id)
            self._index[model_id] = info.model_copy(update={"id": model_id})
            return model_id

    def release(self, model_id: str) -> None:
        """Forget a reservation whose model was never created (its preparation failed or was cancelled)."""
        with self._lock:
            self._reserved.discard(model_id)
        self.refresh(model_id)

    def listing(self) -> list[ModelInfo]:
        """Every indexed model (reserved ones included), sorted by id; no file is read."""
        with self._lock:
            return [self._index[model_id] for model_id in sorted(self._index)]

    def indexed(self, model_id: str) -> ModelInfo:
        """The indexed info of ``model_id``; a model directory not indexed yet (copied in by hand)
        is read once and indexed. Raises KeyError."""
        with self._lock:
            if model_id in self._index:
                return self._index[model_id]
        self.refresh(model_id)
        with self._lock:
            return self._index[model_id]

    # -- files --------------------------------------------------------------------------------

    def path(self, model_id: str) -> Path:
        """The directory of ``model_id`` (existing or not). Raises ValueError for a non-slug id."""
        if not isinstance(model_id, str) or not _SLUG.fullmatch(model_id):
            raise ValueError(f"model: {model_id!r} is not a model id (a-z, 0-9, '-', '_'; 1..64 characters)")
        return self.models_dir / model_id

    def ids(self) -> list[str]:
        """Ids of every model directory (with a model.json), sorted."""
        return sorted(
            p.name for p in self.models_dir.iterdir() if _SLUG.fullmatch(p.name) and (p / META_FILE).is_file()
        )

    def exists(self, model_id: str) -> bool:
        return (self.path(model_id) / META_FILE).is_file()

    def new_id(self, name: str, taken: set[str] = frozenset()) -> str:
        """A free id for ``name``: its slug, or slug-2, slug-3, ... (also avoiding ``taken``)."""
        base = slugify(name)
        candidate, n = base, 1
        while candidate in taken or self.path(candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def meta(self, model_id: str) -> ModelMeta:
        """The core's metadata. Raises KeyError (unknown id) or ModelLoadError (corrupt)."""
        if not self.exists(model_id):
            raise KeyError(model_id)
        return read_meta(self.path(model_id))

    def studio(self, model_id: str) -> StudioMeta:
        """The daemon's metadata (a default one for model directories made outside the daemon)."""
        file = self.path(model_id) / STUDIO_FILE
        try:
            return StudioMeta.model_validate_json(file.read_bytes())
        except (OSError, ValueError):
            return StudioMeta(name=model_id)

    def write_studio(self, model_id: str, studio: StudioMeta) -> None:
        atomic_write_bytes(self.path(model_id) / STUDIO_FILE, studio.model_dump_json(indent=2).encode())
        self.refresh(model_id)

    def delete(self, model_id: str) -> None:
        """Remove the model directory and everything in it: at once from the store (a rename into
        the trash), then from the disk in a thread of its own."""
        path = self.path(model_id)
        if not path.is_dir():
            raise KeyError(model_id)
        trash = self.models_dir / TRASH_DIR
        trash.mkdir(exist_ok=True)
        gone = trash / f"{model_id}-{secrets.token_hex(4)}"
        path.rename(gone)
        self.refresh(model_id)
        threading.Thread(
            target=shutil.rmtree, args=(gone,), kwargs={"ignore_errors": True}, name="singan-delete"
        ).start()

    def _empty_trash(self) -> None:
        """Remove what a killed daemon left in the trash."""
        shutil.rmtree(self.models_dir / TRASH_DIR, ignore_errors=True)

    def find(self, source_sha256: str, kind: str = "generative") -> list[str]:
        """Ids of the models trained from this source hash (any status), of ``kind`` (from the index)."""
        return [info.id for info in self.listing() if info.source_sha256 == source_sha256 and info.kind == kind]

    def unfinished(self) -> list[str]:
        """Models whose training was interrupted (not stopped on purpose): to resume at start-up."""
        out = []
        for info in self.listing():
            if info.status != "ready" and not self.studio(info.id).stopped:
                out.append(info.id)
        return out

    def info(self, model_id: str, job_id: str | None = None, job_running: bool = False) -> ModelInfo:
        """The protocol's view of a model (from the index). ``job_id``: the training job queued or
        running for it. Raises KeyError (unknown id)."""
        info = self.indexed(model_id)
        if job_id is None:
            return info
        return info.model_copy(update={"status": "training" if job_running else "queued", "job": job_id})

    def _read_info(self, model_id: str) -> ModelInfo:
        """A model's ModelInfo read from its files, without job. Raises KeyError or ModelLoadError."""
        meta, studio = self.meta(model_id), self.studio(model_id)
        if meta.is_complete:
            status = "ready"
        else:
            status = "failed" if studio.error else "interrupted"
        height, width = meta.sizes[-1]
        return ModelInfo(
            id=model_id,
            name=studio.name,
            status=status,
            kind=studio.kind,
            scales_done=meta.scales_done,
            num_scales=meta.num_scales,
            width=width,
            height=height,
            preset=meta.preset,
            padding=meta.config["net"]["padding_mode"],
            source_name=meta.source_name,
            source_sha256=meta.source_sha256,
            created=meta.created_at.timestamp(),
            updated=meta.updated_at.timestamp(),
            job=None,
            error=studio.error,
        )

    def stop_training(self, model_id: str, error: str | None = None) -> None:
        """A training ended early on purpose (cancelled) or by ``error``: not to be resumed at start-up.
        A cancelled model without any finished scale is deleted."""
        if not self.exists(model_id):
            return
        if error is None and self.meta(model_id).scales_done == 0:
            self.delete(model_id)
            return
        studio = self.studio(model_id).model_copy(update={"stopped": True, "error": error})
        self.write_studio(model_id, studio)


def require_ready(store: ModelStore, model_id: str) -> ModelMeta:
    """The meta of a completely trained model, for the ops that use one.

    Raises:
        ProtocolError: ``not_found`` (no such model), ``busy`` (not completely trained yet),
            ``internal`` (its ``model.json`` cannot be read). The field is ``params.model``.
    """
    try:
        meta = store.meta(model_id)
    except KeyError:
        raise ProtocolError(
            f"params.model: no model {model_id!r} (see list_models)", "params.model", "not_found"
        ) from None
    except ModelLoadError as exc:
        raise ProtocolError(f"params.model: {model_id} cannot be read: {exc}", "params.model", "internal") from None
    if not meta.is_complete:
        raise ProtocolError(
            f"params.model: {model_id} is not ready ({meta.scales_done} of {meta.num_scales} scales trained)",
            "params.model",
            "busy",
        )
    return meta
