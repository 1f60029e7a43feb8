"""The ``singan`` commands that work on models and images: train, sample, instant, eval, and the
applications (harmonize, edit, paint2image, sr, animate). :mod:`singan_cli.cli` assembles them with
serve, protocol and demo into the one ``singan`` app (:func:`register`).

Thin on purpose: options are parsed here and handed to :mod:`singan_core.workflow`; results and
progress are printed here. Errors from the library (``ValueError`` and its subclasses
``ModelLoadError``/``ImageReadError``, ``OSError``) are caught only in :func:`singan_cli.cli.main` and
reported as one line on stderr with exit code 2. Progress and messages go to stderr; results (the
model directory, the sample files, the metrics) to stdout.
"""

from __future__ import annotations

import datetime
import enum
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from singan_core import animation, editing, harmonization, paint
from singan_core.config import PRESETS, preset as get_preset
from singan_core.device import select_device
from singan_core.full_resolution import instant as instant_images
from singan_core.full_resolution import default_detail, sample_full_resolution
from singan_core.imageio import load_image, load_mask
from singan_core.storage import atomic_write_bytes, load_pyramid, read_meta
from singan_core.super_resolution import output_size, super_resolve
from singan_core.training import TrainingEstimate, TrainProgress
from singan_core.workflow import (
    TrainJob,
    evaluate,
    is_model_dir,
    load_instant_source,
    model_lift_source,
    resume_training,
    run_training,
    sr_model_name,
    sr_training,
    start_training,
    write_image,
    write_pngs,
    write_samples,
)

from daemon.paths import default_model_dir

DEFAULT_PRESET = "draft"

PresetName = enum.Enum("PresetName", {name: name for name in PRESETS}, type=str)  # type: ignore[misc]
HarmonizeMethod = enum.Enum("HarmonizeMethod", {name: name for name in harmonization.METHODS}, type=str)  # type: ignore[misc]
EditMethod = enum.Enum("EditMethod", {name: name for name in editing.METHODS}, type=str)  # type: ignore[misc]


class Padding(str, enum.Enum):
    zeros = "zeros"
    circular = "circular"


class PrecisionName(str, enum.Enum):
    fp32 = "fp32"
    bf16 = "bf16"


_err = Console(stderr=True)

DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu, cuda or cuda:N.")]


# --------------------------------------------------------------------------- train


def train(
    image: Annotated[
        Optional[Path],
        typer.Argument(
            help="The training image; with --resume it may instead be the model directory to resume.",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        Optional[PresetName],
        typer.Option(
            help=f"Training preset (default {DEFAULT_PRESET}): paper = the paper's settings, draft = fast on a CPU, tiny = for tests.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Model directory to write (default: <user data dir>/singan-studio/models/<image stem>).",
            show_default=False,
        ),
    ] = None,
    max_size: Annotated[
        Optional[int],
        typer.Option(
            min=1, help="Longest side of the finest scale in pixels (default from the preset).", show_default=False
        ),
    ] = None,
    padding: Annotated[
        Optional[Padding],
        typer.Option(help="zeros (default), or circular for seamless, tileable output.", show_default=False),
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="Training seed (default 0).", show_default=False)] = None,
    precision: Annotated[
        Optional[PrecisionName], typer.Option(help="fp32 (default) or bf16 autocast.", show_default=False)
    ] = None,
    device: DeviceOpt = "auto",
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted training: `singan train --resume DIR` or `singan train IMAGE --out DIR --resume`.",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the model already in the output directory.")
    ] = False,
) -> None:
    """Train a SinGAN pyramid on IMAGE, saving every finished scale (Ctrl-C keeps them; resume with --resume)."""
    dev = select_device(device)
    options = {
        "--preset": preset,
        "--max-size": max_size,
        "--padding": padding,
        "--seed": seed,
        "--precision": precision,
    }
    given = [name for name, value in options.items() if value is not None]

    if resume and image is not None and image.is_dir():
        if out is not None and out.resolve() != image.resolve():
            raise ValueError(f"train: --resume got two model directories ({image} and --out {out}); give one")
        image_path, model_dir = None, image
    else:
        image_path = image
        if image_path is None:
            if not resume:
                raise ValueError("train: missing IMAGE (or use --resume DIR to continue a training)")
            if out is None:
                raise ValueError("train: --resume needs a model directory: singan train --resume DIR")
        elif image_path.is_dir():
            hint = "; add --resume to continue training it" if is_model_dir(image_path) else ""
            raise ValueError(f"image: {image_path} is a directory, not an image{hint}")
        model_dir = out if out is not None else default_model_dir(image_path.stem)

    if resume and (image_path is None or is_model_dir(model_dir)):
        if given:
            raise ValueError(
                f"train: {', '.join(given)} cannot be changed when resuming; {model_dir} fixes the configuration"
            )
        job = resume_training(model_dir, dev, image_path)
        if job.meta.is_complete:
            _err.print(f"{model_dir}: already fully trained ({job.meta.num_scales} scales)")
            print(model_dir)
            return
        _err.print(f"resuming {model_dir}: {job.meta.scales_done} of {job.meta.num_scales} scales done")
    else:
        assert image_path is not None
        if not overwrite and is_model_dir(model_dir):
            _refuse_unfinished(model_dir)
        name = preset.value if preset is not None else DEFAULT_PRESET
        config = get_preset(name).with_overrides(
            max_size=max_size,
            padding_mode=padding.value if padding else None,
            seed=seed,
            precision=precision.value if precision else None,
        )
        job = start_training(image_path, model_dir, config, name, dev, overwrite=overwrite)
    _run_with_progress(job)
    print(job.path)


def _refuse_unfinished(model_dir: Path) -> None:
    """Do not silently start over a training that could be resumed."""
    try:
        meta = read_meta(model_dir)
    except ValueError:
        return  # create_model_dir refuses unreadable directories itself
    if not meta.is_complete:
        raise ValueError(
            f"{model_dir}: holds an unfinished training of {meta.source_name} ({meta.scales_done} of "
            f"{meta.num_scales} scales); add --resume to continue it, or --overwrite to start over"
        )


def _run_with_progress(job: TrainJob) -> None:
    """Train the job with a progress bar (scale, iteration, losses, ETA); handles Ctrl-C."""
    pyramid = job.pyramid
    first, num_scales, iters = pyramid.scales_done, pyramid.num_scales, pyramid.config.train.iterations
    estimate = TrainingEstimate(pyramid)
    columns = (
        TextColumn("[bold]scale {task.fields[scale]}"),
        BarColumn(bar_width=24),
        TextColumn("it {task.fields[it]}"),
        TextColumn("D {task.fields[d]:.3f} G {task.fields[g]:.3f} rec {task.fields[rec]:.3f}"),
        TextColumn("ETA {task.fields[eta]}"),
    )
    with Progress(*columns, console=_err) as progress:
        task = progress.add_task(
            "train",
            total=1.0,
            completed=estimate.start_fraction,
            scale=f"{first + 1}/{num_scales}",
            it=f"0/{iters}",
            d=0.0,
            g=0.0,
            rec=0.0,
            eta="-:--:--",
        )

        def on_progress(p: TrainProgress) -> None:
            fraction = estimate.fraction(p)
            eta = estimate.eta_seconds(fraction)
            progress.update(
                task,
                completed=fraction,
                eta="-:--:--" if eta is None else str(datetime.timedelta(seconds=round(eta))),
                scale=f"{p.scale + 1}/{p.num_scales}",
                it=f"{p.iteration}/{p.iterations}",
                d=p.loss_d,
                g=p.loss_g,
                rec=p.loss_rec,
            )

        try:
            run_training(job, on_progress=on_progress)
        except KeyboardInterrupt:
            progress.stop()
            done = job.meta.scales_done
            if job.fresh and done == 0:
                _err.print("interrupted before the first scale finished; nothing was kept")
            else:
                _err.print(
                    f"interrupted: {done} of {num_scales} scales saved; continue with: singan train --resume {job.path}"
                )
            raise typer.Exit(130) from None


# --------------------------------------------------------------------------- sample / eval


def _load_complete(model: Path, device: str):
    pyramid, meta = load_pyramid(model, select_device(device))
    if not meta.is_complete:
        raise ValueError(
            f"{model}: only {meta.scales_done} of {meta.num_scales} scales are trained; "
            f"continue with: singan train --resume {model}"
        )
    return pyramid, meta


class DetailName(str, enum.Enum):
    source = "source"
    model = "model"


WidthOpt = Annotated[
    Optional[int], typer.Option("--width", help="Output width in pixels (16..8192).", show_default=False)
]
HeightOpt = Annotated[
    Optional[int], typer.Option("--height", help="Output height in pixels (16..8192).", show_default=False)
]
FeatureScaleOpt = Annotated[
    float,
    typer.Option(
        "--feature-scale",
        help="Output pixels per source pixel: 1 = features as large as in the source image, 0.5 = half as large.",
    ),
]


def sample(
    model: Annotated[Path, typer.Argument(help="A trained model directory.", show_default=False)],
    width: WidthOpt = None,
    height: HeightOpt = None,
    feature_scale: FeatureScaleOpt = 1.0,
    detail: Annotated[
        Optional[DetailName],
        typer.Option(
            help="With --width/--height: source = the source image's full-resolution detail (default when the model has its source), model = the model's own (features at the model's size).",
            show_default=False,
        ),
    ] = None,
    n: Annotated[
        Optional[int],
        typer.Option(
            "-n", "--num", min=1, help="Number of samples (default 8; 1 with --width/--height).", show_default=False
        ),
    ] = None,
    scale_h: Annotated[
        Optional[float],
        typer.Option(
            help="Output height relative to the model's training size, in (0, 64] (default 1).", show_default=False
        ),
    ] = None,
    scale_w: Annotated[
        Optional[float],
        typer.Option(
            help="Output width relative to the model's training size, in (0, 64] (default 1).", show_default=False
        ),
    ] = None,
    gen_start_scale: Annotated[
        int,
        typer.Option(
            min=0,
            help="First scale given fresh noise: 0 = coarsest (new global layouts); higher = keep the training image's layout, new detail only.",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Sample i uses seed SEED + i.")] = 0,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output directory (default MODEL/samples).", show_default=False),
    ] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Write random samples of a trained MODEL as sample_seed<s>.png files (one path per line on stdout).

    With --width and --height the samples have that many output pixels, their features
    --feature-scale times the size they have in the source image (SinGAN's layout, the source's
    detail); without them, --scale-h/--scale-w times the model's training size (the model's detail).
    """
    out_dir = out if out is not None else model / "samples"
    if width is None and height is None:
        given = [
            name
            for name, value in (("--detail", detail), ("--feature-scale", feature_scale != 1.0 or None))
            if value is not None
        ]
        if given:
            raise ValueError(f"sample: {', '.join(given)} needs --width and --height")
        pyramid, _ = _load_complete(model, device)
        paths = write_samples(pyramid, out_dir, n or 8, scale_h or 1.0, scale_w or 1.0, gen_start_scale, seed)
        for path in paths:
            print(path)
        return
    if width is None or height is None:
        raise ValueError(
            f"sample: {'--height' if height is None else '--width'} is missing (give --width and --height together)"
        )
    if scale_h is not None or scale_w is not None:
        raise ValueError("sample: --scale-h/--scale-w and --width/--height are two ways to give the size; use one")
    pyramid, meta = _load_complete(model, device)
    source = model_lift_source(model, pyramid, meta)
    chosen = detail.value if detail is not None else default_detail(source.full_resolution)
    if chosen == "source" and source.notice:
        _err.print(f"note: {source.notice}")
    start = time.perf_counter()
    images = sample_full_resolution(
        pyramid,
        source,
        height=height,
        width=width,
        feature_scale=feature_scale,
        detail=chosen,
        n_samples=n or 1,
        gen_start_scale=gen_start_scale,
        seed=seed,
    )
    _print_written(write_pngs(images, out_dir, "sample", seed), width, height, start)


def instant(
    image: Annotated[
        Path, typer.Argument(help="The image to make variations of (no model, no training).", show_default=False)
    ],
    width: WidthOpt = None,
    height: HeightOpt = None,
    feature_scale: FeatureScaleOpt = 1.0,
    tile: Annotated[bool, typer.Option("--tile", help="Seamless tiles: the output wraps around its edges.")] = False,
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Number of images.")] = 1,
    seed: Annotated[int, typer.Option(help="Image i uses seed SEED + i.")] = 0,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output directory (default ./<image stem>-instant).", show_default=False),
    ] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Variations of IMAGE in seconds, no training (GPNN patch synthesis): instant_seed<s>.png files.

    Features keep --feature-scale times their size in IMAGE, whatever --width and --height.
    """
    if width is None or height is None:
        raise ValueError(
            f"instant: {'--width' if width is None else '--height'} is missing (give --width and --height in pixels)"
        )
    source = load_instant_source(image).to(select_device(device))
    start = time.perf_counter()
    images = instant_images(
        source, height=height, width=width, feature_scale=feature_scale, tile=tile, n_samples=n, seed=seed
    )
    out_dir = out if out is not None else Path(f"{image.stem}-instant")
    _print_written(write_pngs(images, out_dir, "instant", seed), width, height, start)


def _print_written(paths: list[Path], width: int, height: int, start: float) -> None:
    """One path per line on stdout; the count, size and seconds taken on stderr."""
    for path in paths:
        print(path)
    _err.print(
        f"{len(paths)} image{'s' if len(paths) != 1 else ''} of {width}x{height} px in {time.perf_counter() - start:.1f} s"
    )


def eval_(
    model: Annotated[Path, typer.Argument(help="A trained model directory.", show_default=False)],
    n: Annotated[int, typer.Option("-n", "--num", min=2, help="Number of samples to score.")] = 16,
    seed: Annotated[int, typer.Option(help="Sample i uses seed SEED + i.")] = 0,
    sifid_weights: Annotated[
        Optional[Path],
        typer.Option(help="Local Inception-v3 weights (.safetensors) for SIFID; never downloaded.", show_default=False),
    ] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Score n random samples of MODEL against its training image: patch-SWD, pixel diversity, SIFID."""
    pyramid, meta = _load_complete(model, device)
    result = evaluate(pyramid, n, seed, sifid_weights)
    h, w = meta.sizes[-1]
    print(f"samples: {n} at {w}x{h} px, seeds {seed}..{seed + n - 1}")
    print(
        f"patch-SWD: median {result.patch_swd_median:.5f}, mean {result.patch_swd_mean:.5f} (vs the training image; lower = closer patch statistics)"
    )
    print(f"pixel diversity: {result.diversity:.4f}")
    if result.sifid is None:
        print("SIFID: not computed; it needs a local Inception-v3 weights file (--sifid-weights PATH)")
    else:
        print(f"SIFID: mean {result.sifid:.5f}")


# --------------------------------------------------------------------------- applications

ScaleOpt = Annotated[
    Optional[int],
    typer.Option(
        "--scale",
        min=1,
        help="Injection scale k (0 = coarsest; 1 .. K-1): coarser = the model repaints more, finer = keeps more of the input. Default: see --help of the command.",
        show_default=False,
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Noise seed.")]
NoNoiseOpt = Annotated[
    bool, typer.Option("--no-noise", help="Zero noise (deterministic) instead of fresh noise at the injected scales.")
]
OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Output image (.png, .jpg, .webp, .tif).", show_default=False)
]


def _masked_inputs(image: Path, mask: Path):
    return load_image(image), load_mask(mask)


def harmonize(
    model: Annotated[Path, typer.Argument(help="A model trained on the background.", show_default=False)],
    composite: Annotated[
        Path,
        typer.Option(
            help="The naive composite: the background with the object pasted in, any size.", show_default=False
        ),
    ],
    mask: Annotated[
        Path,
        typer.Option(
            help="The pasted object's mask, the composite's size (white or opaque = object).", show_default=False
        ),
    ],
    out: OutOpt,
    scale: ScaleOpt = None,
    method: Annotated[
        HarmonizeMethod,
        typer.Option(
            help="paper = the paper's method exactly; guided = the model's change through a guided filter on the object only; reinhard = colour transfer from the ring around the object, no model pass; reinhard_guided = both; analogies = reinhard_guided, then the finest detail from the background's own patches (image analogies)."
        ),
    ] = HarmonizeMethod(harmonization.DEFAULT_METHOD),
    strength: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Colour transfer strength (reinhard, reinhard_guided): 0 = the object's colours, 1 = the ring's mean colour.",
        ),
    ] = harmonization.DEFAULT_STRENGTH,
    seed: SeedOpt = 0,
    no_noise: NoNoiseOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Blend a pasted object into the background the MODEL was trained on, at the composite's full size.

    Default --scale: K-3 (three scales below the finest: colours and textures of the background,
    the object's shape kept). Pixels outside the dilated mask (--method paper) or outside the
    object's mask (the other methods) are left exactly as they were. Try --scale and --strength
    for a stronger or weaker harmonization; each try is one model pass.
    """
    pyramid, _ = _load_complete(model, device)
    result = harmonization.harmonize(
        pyramid,
        *_masked_inputs(composite, mask),
        scale,
        method=method.value,
        strength=strength,
        noise=not no_noise,
        seed=seed,
    )
    print(write_image(result.image, out))


def edit(
    model: Annotated[Path, typer.Argument(help="A model trained on the unedited image.", show_default=False)],
    edited: Annotated[
        Path, typer.Option(help="The edited image (regions moved, copied or painted), any size.", show_default=False)
    ],
    mask: Annotated[
        Path,
        typer.Option(
            help="The edited regions' mask, the edited image's size (white or opaque = edited).", show_default=False
        ),
    ],
    out: OutOpt,
    scale: ScaleOpt = None,
    method: Annotated[
        EditMethod,
        typer.Option(
            help="paper = the paper's method exactly; analogies = the same, then the finest detail inside the dilated mask from the image's own patches (image analogies)."
        ),
    ] = EditMethod(editing.DEFAULT_METHOD),
    seed: SeedOpt = 0,
    no_noise: NoNoiseOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Make a rough edit look natural: writes OUT (changed inside the dilated mask only) and OUT_unmasked.

    Default --scale: K-4 (four scales below the finest). Both outputs have the edited image's full size.
    """
    pyramid, _ = _load_complete(model, device)
    result = editing.edit(
        pyramid, *_masked_inputs(edited, mask), scale, method=method.value, noise=not no_noise, seed=seed
    )
    print(write_image(result.image, out))
    print(write_image(result.unmasked, out.with_name(f"{out.stem}_unmasked{out.suffix}")))


def paint2image(
    model: Annotated[Path, typer.Argument(help="A trained model.", show_default=False)],
    paint_image: Annotated[
        Path, typer.Option("--paint", help="A rough paint or clip-art of the layout, any size.", show_default=False)
    ],
    out: OutOpt,
    scale: ScaleOpt = None,
    quantize: Annotated[
        bool, typer.Option("--quantize", help="First reduce the paint to the training image's main colours (k-means).")
    ] = False,
    colors: Annotated[int, typer.Option(min=1, max=64, help="Number of colours for --quantize.")] = paint.N_COLORS,
    seed: SeedOpt = 0,
    no_noise: NoNoiseOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Turn a paint into an image of the MODEL's world, at the model's resolution with the paint's aspect.

    Default --scale: 1 (one below the coarsest: the paint's layout, the model's detail).
    """
    pyramid, _ = _load_complete(model, device)
    image = paint.paint_to_image(
        pyramid, load_image(paint_image), scale, quantize=quantize, n_colors=colors, noise=not no_noise, seed=seed
    )
    print(write_image(image, out))


def sr(
    image: Annotated[Path, typer.Argument(help="The low-resolution image.", show_default=False)],
    out: OutOpt,
    factor: Annotated[float, typer.Option(min=1.25, max=16, help="Upscaling factor, 1.25 .. 16.")] = 4.0,
    preset: Annotated[
        PresetName, typer.Option(help="Training preset (nets, iterations) for the SR model.")
    ] = PresetName(DEFAULT_PRESET),
    model: Annotated[
        Optional[Path],
        typer.Option(
            help="SR model directory (default: <user data dir>/singan-studio/models/<stem>-sr-<preset>-r<r>); trained there if absent, resumed if unfinished.",
            show_default=False,
        ),
    ] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Super-resolve IMAGE by FACTOR with a SinGAN trained on IMAGE itself (trains it first if needed)."""
    model_dir = model if model is not None else default_model_dir(sr_model_name(image, factor, preset.value))
    job = sr_training(image, factor, get_preset(preset.value), preset.value, model_dir, select_device(device))
    if not job.meta.is_complete:
        _err.print(f"training the super-resolution model into {model_dir}")
        _run_with_progress(job)
    h, w = output_size(*job.pyramid.sizes[-1], factor)
    _err.print(f"super-resolving to {w}x{h} px")
    print(write_image(super_resolve(job.pyramid, factor), out))


def animate(
    model: Annotated[Path, typer.Argument(help="A trained model.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output animation (.gif or .webp).", show_default=False)],
    frames: Annotated[int, typer.Option(min=1, max=10000, help="Number of frames.")] = 60,
    fps: Annotated[float, typer.Option(min=0.1, max=100, help="Frames per second.")] = 10.0,
    start_scale: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            help="First scale that moves: 0 = the objects move (default), higher = only fine detail moves.",
            show_default=False,
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option(min=0, max=1, help="Pull towards the training image (0 = free walk).")
    ] = animation.ALPHA,
    beta: Annotated[
        float, typer.Option(min=0, max=0.999, help="Momentum of the motion (higher = smoother).")
    ] = animation.BETA,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Write a looping animation of the MODEL's training image: a random walk in noise space."""
    fmt = animation.animation_format(out)
    pyramid, _ = _load_complete(model, device)
    video = animation.animate(pyramid, frames, start_scale, alpha=alpha, beta=beta, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, animation.animation_bytes(video, fmt, fps))
    print(out)


# --------------------------------------------------------------------------- registration


def register(app: typer.Typer) -> None:
    """Add these commands to the ``singan`` app (assembled in :mod:`singan_cli.cli`)."""
    for name, command in (
        ("train", train),
        ("sample", sample),
        ("instant", instant),
        ("eval", eval_),
        ("harmonize", harmonize),
        ("edit", edit),
        ("paint2image", paint2image),
        ("sr", sr),
        ("animate", animate),
    ):
        app.command(name)(command)
