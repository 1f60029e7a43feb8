"""A trained (or partially trained) pyramid on disk: one directory per model.

Layout of a model directory (format version 2; version 1 is version 2 without ``full_source.png``)::

    model.json            ModelMeta: source image hash, config, sizes, noise amplitudes, progress
    source.safetensors    "real": the finest-scale training image x_{K-1}, (1, 3, H, W) float32 in [-1, 1]
    full_source.png       the image the user trained from at full resolution (longest side capped at
                          4096 px), 8-bit RGB PNG: what the full-resolution lift takes its detail from
    scale_00.safetensors  scale k = 0 (coarsest): "G.<param>", "D.<param>", "z_opt", "real" (x_k)
    scale_01.safetensors  ...one file per *finished* scale, k = 0 .. scales_done - 1
    scale_00.r02.safetensors  scale 0 as rewritten by scale 2's concurrent training (ConSinGAN
                          schedule only; ``model.json`` then names each scale's file in ``scale_files``)

``full_source.png`` is a PNG because the input image was read as 8-bit RGB: the PNG holds exactly
those values (lossless) in a third to a tenth of the bytes of a float32 tensor (a 4096 x 4096 photo:
~30 MB instead of 200 MB), and any image viewer opens it. Its SHA-256 and size are in
``model.json`` (``full_source``), so a damaged file is caught when it is read. Directories of
format version 1 have none; :func:`load_full_source` returns ``None`` for them (the full-resolution
lift then falls back to the finest training image).

``source.safetensors`` is written when training starts, so a training can be resumed from the
directory alone; the coarser reals are rebuilt from it with the stored sizes (exactly as
:func:`singan_core.pyramid.build_real_pyramid` derives them from the capped image).

Every file is written atomically (temporary file in the same directory, flush + fsync,
``os.replace``, fsync of the directory), and a scale file is always written before the
``model.json`` that counts it, so ``model.json`` never claims a scale whose file is missing.
Tensors are stored with ``safetensors`` only: nothing here unpickles anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from safetensors.torch import load_file, save_file

from .config import SinGANConfig
from .errors import ModelLoadError, OutputDirNotEmpty
from .imageio import from_uint8, png_bytes
from .model import SinGANPyramid
from .nets import Discriminator, Generator, nfc_at
from .pyramid import PyramidGeometry, reals_from_finest, resize
from .training import scales_changed_by

__all__ = [
    "FORMAT_VERSION",
    "FULL_SOURCE_FILE",
    "FULL_SOURCE_MAX_SIZE",
    "FullSourceInfo",
    "META_FILE",
    "SOURCE_FILE",
    "ModelLoadError",
    "ModelMeta",
    "OutputDirNotEmpty",
    "atomic_write_bytes",
    "create_model_dir",
    "discard_model_dir",
    "file_sha256",
    "full_source_image",
    "load_full_source",
    "load_pyramid",
    "read_meta",
    "save_scale",
    "scale_file_name",
]

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # 1: without full_source.png; such directories still load
META_FILE = "model.json"
SOURCE_FILE = "source.safetensors"
FULL_SOURCE_FILE = "full_source.png"
FULL_SOURCE_MAX_SIZE = 4096  # longest side of full_source.png in pixels; larger inputs are downsized
_TMP_SUFFIX = ".tmp"
_SCALE_FILE_PATTERN = r"^scale_(\d{2})(?:\.r\d{2})?\.safetensors$"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class FullSourceInfo(BaseModel):
    """What ``model.json`` records about ``full_source.png``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    height: int = Field(ge=1, le=FULL_SOURCE_MAX_SIZE)
    """Height of the stored image in pixels."""
    width: int = Field(ge=1, le=FULL_SOURCE_MAX_SIZE)
    """Width of the stored image in pixels."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 (hex) of the bytes of ``full_source.png``."""


class ModelMeta(BaseModel):
    """Contents of ``model.json``: everything about a model directory except the tensors."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    format_version: int = FORMAT_VERSION
    """Version of the directory layout; this code reads versions 1 and 2 (2 adds ``full_source``)."""
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 (hex) of the bytes of the input image file the model was trained on."""
    source_name: str
    """File name (no directory) of the input image, for display."""
    preset: str
    """Name of the preset the config was taken from (e.g. "draft"); the config itself is in ``config``."""
    config: dict[str, Any]
    """The full :class:`~singan_core.config.SinGANConfig`, as ``SinGANConfig.to_dict()``."""
    scale_factor: float = Field(gt=0, le=1)
    """The actual factor r between consecutive scales (dimensionless, < 1)."""
    input_scale: float = Field(gt=0, le=1)
    """Factor applied to the input image to cap its longest side at ``max_size`` (dimensionless, <= 1)."""
    sizes: list[tuple[int, int]] = Field(min_length=1)
    """(height, width) in pixels of every scale; index k = 0 is the coarsest, the last the finest."""
    noise_amp: list[float]
    """noise_amp_k (dimensionless std of the injected noise, images in [-1, 1]) of the finished scales."""
    scales_done: int = Field(ge=0)
    """Number of finished scales: their files (``scale_00`` .. ``scale_{scales_done-1}``, see ``scale_files``) exist."""
    num_scales: int = Field(ge=1)
    """K, the number of scales of the finished model."""
    status: Literal["training", "ready"]
    """``ready`` once every scale is trained (``scales_done == num_scales``), else ``training``."""
    created_at: AwareDatetime = Field(default_factory=_now)
    """When training started (timezone-aware, UTC when written here)."""
    updated_at: AwareDatetime = Field(default_factory=_now)
    """When the last scale was saved (timezone-aware, UTC when written here)."""
    full_source: FullSourceInfo | None = None
    """``full_source.png`` (format version 2; always set there); ``None`` in version 1 directories."""
    scale_files: list[Annotated[str, Field(pattern=_SCALE_FILE_PATTERN)]] | None = None
    """File of each finished scale, when one was rewritten by a later scale's concurrent training
    (``scale_kk.rjj.safetensors``: scale k as scale j left it); ``None`` (omitted from the file):
    every scale k is in ``scale_kk.safetensors``."""

    @model_validator(mode="after")
    def _consistent(self) -> "ModelMeta":
        if len(self.sizes) != self.num_scales:
            raise ValueError(f"sizes has {len(self.sizes)} entries but num_scales is {self.num_scales}")
        if self.scales_done > self.num_scales:
            raise ValueError(f"scales_done {self.scales_done} exceeds num_scales {self.num_scales}")
        if len(self.noise_amp) != self.scales_done:
            raise ValueError(f"noise_amp has {len(self.noise_amp)} entries but scales_done is {self.scales_done}")
        if (self.status == "ready") != (self.scales_done == self.num_scales):
            raise ValueError(f"status {self.status!r} contradicts {self.scales_done} of {self.num_scales} scales done")
        if any(h < 1 or w < 1 for h, w in self.sizes):
            raise ValueError("sizes must be positive")
        if (self.format_version >= 2) != (self.full_source is not None):
            raise ValueError(
                f"format_version {self.format_version} {'needs' if self.format_version >= 2 else 'has no'} full_source"
            )
        if self.scale_files is not None:
            if len(self.scale_files) != self.scales_done:
                raise ValueError(
                    f"scale_files has {len(self.scale_files)} entries but scales_done is {self.scales_done}"
                )
            for k, name in enumerate(self.scale_files):
                if not name.startswith(f"scale_{k:02d}."):
                    raise ValueError(f"scale_files[{k}] is {name!r}, a file of another scale")
        return self

    @property
    def is_complete(self) -> bool:
        return self.status == "ready"


def scale_file_name(k: int, revised_by: int | None = None) -> str:
    """File name of scale k's tensors (k = 0 coarsest): ``scale_kk.safetensors``, or with
    ``revised_by`` = j > k ``scale_kk.rjj.safetensors``, scale k as the concurrent training of scale j
    left it (see :func:`save_scale`)."""
    if revised_by is None or revised_by == k:
        return f"scale_{k:02d}.safetensors"
    return f"scale_{k:02d}.r{revised_by:02d}.safetensors"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- atomic writes


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write ``target`` via ``write(tmp_path)`` so that it is either complete or untouched."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        mode = os.fstat(fd).st_mode & 0o777  # what a new file gets here (the umask applied), read without os.umask
        os.close(fd)
        write(tmp)
        os.chmod(tmp, mode)  # safetensors creates files 0o600
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (temporary file, fsync, ``os.replace``, fsync of the dir)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()

    _atomic_write(Path(target), write)


def _save_tensors(target: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    _atomic_write(target, lambda tmp: save_file(cpu, str(tmp), metadata=metadata))


def _write_meta(path: Path, meta: ModelMeta) -> None:
    exclude = {"scale_files"} if meta.scale_files is None else None  # model.json of the paper's schedule unchanged
    atomic_write_bytes(path / META_FILE, (meta.model_dump_json(indent=2, exclude=exclude) + "\n").encode())


# --------------------------------------------------------------------------- writing


def create_model_dir(
    path: str | os.PathLike,
    pyramid: SinGANPyramid,
    source_sha256: str,
    source_name: str,
    preset_name: str,
    *,
    full_source: torch.Tensor | None = None,
    overwrite: bool = False,
) -> ModelMeta:
    """Start a model directory for an untrained ``pyramid``: the sources, then ``model.json``.

    ``full_source`` is the image the user trained from, (1, 3, H, W) in [-1, 1]: it is stored as
    ``full_source.png`` (8-bit RGB), downsized first (:func:`full_source_image`) if its longest
    side exceeds :data:`FULL_SOURCE_MAX_SIZE` pixels. Without it the directory has no
    full-resolution source (``format_version`` 1: the lift then uses the
    finest training image).

    The directory is created if needed. An existing non-empty directory is accepted only if it
    holds an unfinished model of the same source image (it is then started over), or if
    ``overwrite`` is true; either way only the files of a model directory are removed from it,
    nothing else.

    Raises:
        OutputDirNotEmpty: the directory holds something else (a finished model, a model of another
            image, other files) and ``overwrite`` is false.
        ValueError: ``pyramid`` already has finished scales, or ``path`` is a file.
        OSError: the directory or files cannot be written.
    """
    path = Path(path)
    if pyramid.scales_done:
        raise ValueError("create_model_dir: the pyramid must be untrained (save finished scales with save_scale)")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is not a directory")
    full_png = None if full_source is None else png_bytes(full_source_image(full_source))
    now = _now()
    meta = ModelMeta(
        source_sha256=source_sha256,
        source_name=source_name,
        preset=preset_name,
        config=pyramid.config.to_dict(),
        scale_factor=pyramid.geometry.scale_factor,
        input_scale=pyramid.geometry.input_scale,
        sizes=[(int(s[0]), int(s[1])) for s in pyramid.sizes],
        noise_amp=[],
        scales_done=0,
        num_scales=pyramid.num_scales,
        status="training",
        created_at=now,
        updated_at=now,
        format_version=1 if full_png is None else FORMAT_VERSION,
        full_source=None if full_png is None else _full_source_info(full_png),
    )
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            _check_replaceable(path, source_sha256)
        discard_model_dir(path, remove_dir=False)
    path.mkdir(parents=True, exist_ok=True)
    try:
        source = {"real": pyramid.reals[-1].float()}
        _save_tensors(path / SOURCE_FILE, source, {"format": "pt", "singan_format_version": str(FORMAT_VERSION)})
        if full_png is not None:
            atomic_write_bytes(path / FULL_SOURCE_FILE, full_png)
        _write_meta(path, meta)
    except BaseException:
        discard_model_dir(path, remove_dir=False)
        raise
    return meta


def _check_replaceable(path: Path, source_sha256: str) -> None:
    if not (path / META_FILE).is_file():
        raise OutputDirNotEmpty(f"{path}: directory is not empty and holds no model")
    try:
        existing = read_meta(path)
    except ModelLoadError:
        raise OutputDirNotEmpty(f"{path}: holds an unreadable model") from None
    if existing.source_sha256 != source_sha256:
        raise OutputDirNotEmpty(f"{path}: holds a model of another image ({existing.source_name})")
    if existing.is_complete:
        raise OutputDirNotEmpty(f"{path}: already holds a trained model of this image")


def discard_model_dir(path: str | os.PathLike, *, remove_dir: bool = True) -> None:
    """Delete the files of a model directory (``model.json`` first), leaving any other file alone.

    With ``remove_dir`` the directory itself is removed too if that leaves it empty.
    """
    path = Path(path)
    if not path.is_dir():
        return
    (path / META_FILE).unlink(missing_ok=True)
    for entry in sorted(path.iterdir()):
        name = entry.name
        ours = (
            name in (SOURCE_FILE, FULL_SOURCE_FILE)
            or (name.startswith("scale_") and name.endswith(".safetensors"))
            or (name.startswith(".") and name.endswith(_TMP_SUFFIX))
        )
        if ours and entry.is_file():
            entry.unlink(missing_ok=True)
    _fsync_dir(path)
    if remove_dir and not any(path.iterdir()):
        path.rmdir()


def save_scale(path: str | os.PathLike, pyramid: SinGANPyramid, k: int) -> ModelMeta:
    """Save finished scale k of ``pyramid`` (its files, then the updated ``model.json``); return the new meta.

    Meant as (part of) the ``on_scale_done`` callback of :func:`singan_core.training.train`.
    Scales are saved in order: k must equal the directory's ``scales_done``. The status becomes
    "ready" with the last scale.

    Every scale that training scale k changed (:func:`singan_core.training.scales_changed_by`: k
    alone under the paper's schedule; also the scales below it under ConSinGAN's concurrent
    training) is written: scale k to ``scale_kk.safetensors``, a rewritten earlier scale j to a new
    file ``scale_jj.rkk.safetensors``, never over the file ``model.json`` still names. ``model.json``,
    written last, switches to the new files at once (``scale_files``); the files it no longer
    names are deleted after it. A training killed at any point therefore leaves the directory as
    it was after scale k-1 or after scale k, never a mix, and it resumes from there.

    Raises:
        ValueError: k is not the next scale to save, or the pyramid does not match the directory.
        ModelLoadError: the directory's ``model.json`` is missing or invalid.
    """
    path = Path(path)
    meta = read_meta(path)
    if not 0 <= k < pyramid.scales_done:
        raise ValueError(f"save_scale: scale {k} is not finished ({pyramid.scales_done} scales done)")
    if k != meta.scales_done:
        raise ValueError(f"save_scale: {path} has {meta.scales_done} scales saved; scale {k} cannot be saved next")
    if [tuple(s) for s in meta.sizes] != [tuple(s) for s in pyramid.sizes]:
        raise ValueError(f"save_scale: the pyramid's sizes differ from those in {path / META_FILE}")
    files = _scale_files(meta) + [scale_file_name(k)]
    for j in scales_changed_by(pyramid.config, k):
        files[j] = scale_file_name(j, revised_by=k)
        _save_tensors(path / files[j], _scale_tensors(pyramid, j), {"format": "pt", "scale": str(j)})
    done = k + 1
    meta = ModelMeta.model_validate(
        meta.model_dump()
        | {
            "noise_amp": [float(a) for a in pyramid.noise_amps[:done]],
            "scales_done": done,
            "status": "ready" if done == meta.num_scales else "training",
            "updated_at": _now(),
            "scale_files": None if files == [scale_file_name(j) for j in range(done)] else files,
        }
    )
    _write_meta(path, meta)
    _remove_superseded(path, files)
    return meta


def _scale_files(meta: ModelMeta) -> list[str]:
    """The file of each finished scale, as ``model.json`` names them."""
    return (
        list(meta.scale_files)
        if meta.scale_files is not None
        else [scale_file_name(k) for k in range(meta.scales_done)]
    )


def _scale_tensors(pyramid: SinGANPyramid, k: int) -> dict[str, torch.Tensor]:
    tensors = {f"G.{name}": t for name, t in pyramid.generators[k].state_dict().items()}
    tensors |= {f"D.{name}": t for name, t in pyramid.discriminators[k].state_dict().items()}
    tensors["z_opt"] = pyramid.z_opts[k]
    tensors["real"] = pyramid.reals[k]
    return tensors


def _remove_superseded(path: Path, files: list[str]) -> None:
    """Delete the scale files of finished scales that ``model.json`` no longer names (rewritten ones,
    and any left by a training killed before its ``model.json`` switched)."""
    for entry in path.iterdir():
        match = re.fullmatch(_SCALE_FILE_PATTERN, entry.name)
        if match and int(match.group(1)) < len(files) and entry.name not in files:
            entry.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading


def read_meta(path: str | os.PathLike) -> ModelMeta:
    """Read and validate ``model.json`` of a model directory. Raises :class:`ModelLoadError`."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"{path}: no such model directory")
    file = path / META_FILE
    if not file.is_file():
        raise ModelLoadError(f"{path}: not a model directory ({META_FILE} is missing)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{file}: cannot be read ({exc})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{file}: expected a JSON object, got {type(raw).__name__}")
    version = raw.get("format_version", 1)
    if version not in _READABLE_VERSIONS:
        raise ModelLoadError(
            f"{file}: unsupported format_version {version!r} (this version of singan-studio reads "
            f"{' and '.join(map(str, _READABLE_VERSIONS))})"
        )
    raw["format_version"] = version
    try:
        return ModelMeta.model_validate(raw)
    except ValidationError as exc:
        raise ModelLoadError(f"{file}: {_summarise(exc)}") from None


def _summarise(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"])
    where = f"field {loc!r}: " if loc else ""
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"invalid {where}{first['msg']}{more}"


def _check_safetensors_file(file: Path) -> None:
    """Catch truncation and garbage before safetensors does, for a clearer message."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelLoadError(f"{file}: truncated file ({size} bytes, no safetensors header)")
        header_len = int.from_bytes(head, "little")
        if header_len > 100_000_000:
            raise ModelLoadError(f"{file}: not a safetensors file (corrupt header)")
        if header_len > size - 8:
            raise ModelLoadError(f"{file}: truncated file ({size} bytes; its header alone needs {8 + header_len})")
        try:
            header = json.loads(f.read(header_len))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise ModelLoadError(f"{file}: not a safetensors file (corrupt header)") from None
    expected = 8 + header_len + int(end)
    if size < expected:
        raise ModelLoadError(f"{file}: truncated file ({size} of {expected} bytes)")
    if size > expected:
        raise ModelLoadError(f"{file}: corrupt safetensors file ({size - expected} bytes of trailing data)")


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise ModelLoadError(f"{file}: missing file")
    _check_safetensors_file(file)
    try:
        return load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError (an Exception subclass)
        raise ModelLoadError(f"{file}: corrupt safetensors file ({exc})") from None


def _expect_tensor(file: Path, tensors: dict[str, torch.Tensor], key: str, shape: tuple[int, ...]) -> torch.Tensor:
    if key not in tensors:
        raise ModelLoadError(f"{file}: tensor {key!r} is missing")
    t = tensors[key]
    if tuple(t.shape) != shape:
        raise ModelLoadError(f"{file}: tensor {key!r} has shape {tuple(t.shape)}, expected {shape}")
    if t.dtype != torch.float32:
        raise ModelLoadError(f"{file}: tensor {key!r} has dtype {t.dtype}, expected torch.float32")
    return t


def _load_state(file: Path, net: torch.nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    expected = net.state_dict()
    got = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
    missing = [name for name in expected if name not in got]
    unexpected = [name for name in got if name not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(prefix + n for n in missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(
                f"unexpected {', '.join(prefix + n for n in unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}"
            )
        raise ModelLoadError(f"{file}: state dict key mismatch ({'; '.join(parts)})")
    for name, t in expected.items():
        if got[name].shape != t.shape:
            raise ModelLoadError(
                f"{file}: state dict shape mismatch for {prefix}{name}: {tuple(got[name].shape)} in the file, "
                f"{tuple(t.shape)} expected from the config"
            )
    try:
        net.load_state_dict(got, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{file}: state dict does not load ({str(exc).splitlines()[0]})") from None


def load_pyramid(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[SinGANPyramid, ModelMeta]:
    """Load a model directory: the reals of all scales and every finished scale's nets.

    Works for partially trained directories: ``singan_core.training.train(pyramid)`` then resumes
    with the next scale. The pyramid is moved to ``device``.

    Raises:
        ModelLoadError: one line naming the path and the problem (missing directory, missing or
            invalid ``model.json``, unsupported format version, missing, truncated or corrupt
            tensor file, tensors that do not fit the config).
    """
    path = Path(path)
    meta = read_meta(path)
    meta_file = path / META_FILE
    try:
        config = SinGANConfig.from_dict(meta.config)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise ModelLoadError(f"{meta_file}: invalid config ({exc})") from None
    sizes = tuple((int(h), int(w)) for h, w in meta.sizes)

    source = path / SOURCE_FILE
    finest = _expect_tensor(source, _load_tensors(source), "real", (1, 3, *sizes[-1]))
    reals = reals_from_finest(finest, sizes)
    geometry = PyramidGeometry(sizes=sizes, scale_factor=meta.scale_factor, input_scale=meta.input_scale)
    pyramid = SinGANPyramid(config=config, geometry=geometry, reals=reals)

    for k in range(meta.scales_done):
        file = path / _scale_files(meta)[k]
        if not file.is_file():
            raise ModelLoadError(
                f"{path}: scale file {file.name} is missing ({META_FILE} says {meta.scales_done} scales are done)"
            )
        tensors = _load_tensors(file)
        shape = (1, 3, *sizes[k])
        z_opt = _expect_tensor(file, tensors, "z_opt", shape)
        reals[k] = _expect_tensor(file, tensors, "real", shape)
        stray = [name for name in tensors if name not in ("z_opt", "real") and not name.startswith(("G.", "D."))]
        if stray:
            raise ModelLoadError(f"{file}: unexpected tensor {stray[0]!r}")
        nfc = nfc_at(k, config.net)
        generator, discriminator = Generator(nfc, config.net), Discriminator(nfc, config.net)
        _load_state(file, generator, "G.", tensors)
        _load_state(file, discriminator, "D.", tensors)
        pyramid.add_scale(generator, discriminator, meta.noise_amp[k], z_opt)
    return pyramid.to(torch.device(device)), meta


# --------------------------------------------------------------------------- full-resolution source


def full_source_image(image: torch.Tensor) -> torch.Tensor:
    """``image`` (1, 3, H, W) in [-1, 1] with its longest side capped at :data:`FULL_SOURCE_MAX_SIZE` px.

    Larger images are downsized (antialiased bicubic, aspect kept, sides rounded); smaller ones are
    returned unchanged (never upscaled). Returns (1, 3, h, w) on the CPU, clamped to [-1, 1].
    """
    h, w = image.shape[-2:]
    factor = min(FULL_SOURCE_MAX_SIZE / max(h, w), 1.0)
    image = image.detach().to("cpu", torch.float32)
    if factor < 1.0:
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
        image = resize(image, size)
    return image.clamp(-1, 1)


def _full_source_info(png: bytes) -> FullSourceInfo:
    """Size (from the PNG's IHDR chunk) and SHA-256 of the bytes of ``full_source.png``."""
    height, width = int.from_bytes(png[20:24], "big"), int.from_bytes(png[16:20], "big")
    return FullSourceInfo(height=height, width=width, sha256=hashlib.sha256(png).hexdigest())


def load_full_source(path: str | os.PathLike, meta: ModelMeta | None = None) -> torch.Tensor | None:
    """The model's full-resolution source ``full_source.png`` as (1, 3, H, W) float32 in [-1, 1].

    Args:
        path: the model directory.
        meta: its ``model.json`` contents if already read (else read here).

    Returns:
        The image (H, W at most :data:`FULL_SOURCE_MAX_SIZE` px), or ``None`` for a directory of
        format version 1 (saved before full-resolution sources existed).

    Raises:
        ModelLoadError: one line naming ``full_source.png`` when it is missing, its bytes do not
            match the SHA-256 recorded in ``model.json``, it does not decode as a PNG, or its size
            differs from the recorded one; or the errors of :func:`read_meta`.
    """
    path = Path(path)
    meta = read_meta(path) if meta is None else meta
    info = meta.full_source
    if info is None:
        return None
    file = path / FULL_SOURCE_FILE
    if not file.is_file():
        raise ModelLoadError(f"{file}: missing file ({META_FILE} records a full-resolution source)")
    data = file.read_bytes()
    if hashlib.sha256(data).hexdigest() != info.sha256:
        raise ModelLoadError(
            f"{file}: corrupt full-resolution source (its SHA-256 differs from the one in {META_FILE})"
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            array = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ModelLoadError(f"{file}: corrupt full-resolution source ({exc})") from None
    if array.shape[:2] != (info.height, info.width):
        raise ModelLoadError(
            f"{file}: is {array.shape[1]}x{array.shape[0]} px, {META_FILE} says {info.width}x{info.height}"
        )
    return from_uint8(array)
