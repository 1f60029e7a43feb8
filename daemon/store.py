"""The daemon's model store: one model directory per model (the core's format) under ``<root>/models``.

Model ids are slugs (``[a-z0-9][a-z0-9_-]*``, at most 64 characters), checked before any path is
built, so a request can never name a path outside the store. Beside the core's ``model.json``
each directory holds ``studio.json`` (:class:`StudioMeta`): the display name, the kind, and
whether an unfinished training was stopped on purpose (cancelled or failed) — models that were
merely interrupted (the daemon was killed) are resumed when the daemon starts again.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from protocol.schema import ModelInfo
from protocol.wire import ProtocolError
from singan_core.storage import META_FILE, ModelLoadError, ModelMeta, atomic_write_bytes, read_meta

STUDIO_FILE = "studio.json"
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

    def path(self, model_id: str) -> Path:
        """The directory of ``model_id`` (existing or not). Raises ValueError for a non-slug id."""
        if not isinstance(model_id, str) or not _SLUG.fullmatch(model_id):
            raise ValueError(f"model: {model_id!r} is not a model id (a-z, 0-9, '-', '_'; 1..64 characters)")
        return self.models_dir / model_id

    def ids(self) -> list[str]:
        """Ids of every model directory (with a model.json), sorted."""
        return sorted(p.name for p in self.models_dir.iterdir() if _SLUG.fullmatch(p.name) and (p / META_FILE).is_file())

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

    def delete(self, model_id: str) -> None:
        """Remove the model directory and everything in it."""
        path = self.path(model_id)
        if not path.is_dir():
            raise KeyError(model_id)
        shutil.rmtree(path)

    def find(self, source_sha256: str, kind: str = "generative") -> list[str]:
        """Ids of the models trained from this source hash (any status), of ``kind``."""
        found = []
        for model_id in self.ids():
            try:
                if self.meta(model_id).source_sha256 == source_sha256 and self.studio(model_id).kind == kind:
                    found.append(model_id)
            except (KeyError, ModelLoadError):
                continue
        return found

    def unfinished(self) -> list[str]:
        """Models whose training was interrupted (not stopped on purpose): to resume at start-up."""
        out = []
        for model_id in self.ids():
            try:
                if not self.meta(model_id).is_complete and not self.studio(model_id).stopped:
                    out.append(model_id)
            except (KeyError, ModelLoadError):
                continue
        return out

    def info(self, model_id: str, job_id: str | None = None, job_running: bool = False) -> ModelInfo:
        """The protocol's view of a model. ``job_id``: the training job queued or running for it.

        Raises KeyError (unknown id) or ModelLoadError (corrupt ``model.json``)."""
        meta, studio = self.meta(model_id), self.studio(model_id)
        if job_id is not None:
            status = "training" if job_running else "queued"
        elif meta.is_complete:
            status = "ready"
        else:
            status = "failed" if studio.error else "interrupted"
        height, width = meta.sizes[-1]
        return ModelInfo(
            id=model_id, name=studio.name, status=status, kind=studio.kind, scales_done=meta.scales_done,
            num_scales=meta.num_scales, width=width, height=height, preset=meta.preset,
            padding=meta.config["net"]["padding_mode"], source_name=meta.source_name,
            source_sha256=meta.source_sha256, created=meta.created_at.timestamp(),
            updated=meta.updated_at.timestamp(), job=job_id, error=studio.error,
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
        raise ProtocolError(f"params.model: no model {model_id!r} (see list_models)", "params.model", "not_found") from None
    except ModelLoadError as exc:
        raise ProtocolError(f"params.model: {model_id} cannot be read: {exc}", "params.model", "internal") from None
    if not meta.is_complete:
        raise ProtocolError(
            f"params.model: {model_id} is not ready ({meta.scales_done} of {meta.num_scales} scales trained)", "params.model", "busy"
        )
    return meta
