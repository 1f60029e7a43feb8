"""``singan demo --preset tiny`` end to end: a real daemon subprocess, the client, every output file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from singan_core.imageio import from_uint8

REPO = Path(__file__).resolve().parents[1]
DEMO_SIZE = (300, 262)  # singan_core/data/demo.png
SR_CROP = 64
OUTPUTS = [
    "instant_variation_1",
    "instant_variation_2",
    "instant_variation_3",
    "instant_variation_4",
    "instant_panorama_3x1",
    "instant_tile",
    "instant_tile_2x2",
    "variation_1",
    "variation_2",
    "variation_3",
    "variation_4",
    "panorama_3x1",
    "tile",
    "tile_2x2",
    "composite",
    "mask",
    "harmonized",
    "sr_input",
    "sr_bicubic_2x",
    "sr_2x",
    "contact_sheet",
]


def processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text`` (Linux /proc)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue  # the process has exited meanwhile
    return pids


def pixels(path: Path) -> np.ndarray:
    """(H, W, 3) int RGB of a PNG."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def changed_inside_only(result: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> bool:
    """Harmonization changed the object (mean change inside the mask over 10 levels; the demo:
    48) and nothing farther than 30 px from it (the blend reaches 23 px past the mask)."""
    far = ndimage.distance_transform_edt(~mask) > 30
    return np.abs(result - composite)[mask].mean() > 10 and np.array_equal(result[far], composite[far])


def detail(x: np.ndarray) -> float:
    """Mean squared Laplacian of an (H, W, 3) image: its fine detail."""
    lap = torch.tensor([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=torch.float32).expand(3, 1, 3, 3)
    return F.conv2d(from_uint8(x.astype(np.uint8)), lap, groups=3).pow(2).mean().item()


def blockiness(x: np.ndarray) -> float:
    """Mean |difference| of luminance between the two pixels of each 2 x 2 block (rows and columns)
    over that between neighbouring blocks: 0 for a nearest-neighbour 2x, about 1 for a picture."""
    y = x.astype(float).mean(2)
    h, w = (y.shape[0] // 2) * 2, (y.shape[1] // 2) * 2
    y = y[:h, :w]
    within = np.abs(y[:, 0::2] - y[:, 1::2]).mean() + np.abs(y[0::2] - y[1::2]).mean()
    across = np.abs(y[:, 1:-1:2] - y[:, 2::2]).mean() + np.abs(y[1:-1:2] - y[2::2]).mean()
    return within / across


def edge_alignment(sr: np.ndarray, bicubic: np.ndarray) -> float:
    """Correlation of the detail added to bicubic (|sr - bicubic|, luminance) with bicubic's
    gradient magnitude: super-resolution sharpens edges; noise lands anywhere (about 0)."""
    lum = lambda a: a.astype(float).mean(2)  # noqa: E731
    extra = np.abs(lum(sr) - lum(bicubic))
    gy, gx = np.gradient(lum(bicubic))
    e, g = extra - extra.mean(), np.hypot(gx, gy)
    g = g - g.mean()
    norm = np.sqrt((e * e).sum() * (g * g).sum())
    return 0.0 if norm == 0 else float((e * g).sum() / norm)


def super_resolved(sr: np.ndarray, bicubic: np.ndarray, low: np.ndarray) -> bool:
    """Sharper than bicubic (more than 2x its detail; the demo: 8.6x) and still the input when
    shrunk back (area, mean error under 4 levels; the demo: 1.7), not blocky (>= 0.5; demo
    outputs: 0.93, nearest neighbour: 0) and the added detail on bicubic's edges (correlation >=
    0.2; demo outputs: 0.44, bicubic + noise of sigma 6 levels: 0.01)."""
    back = F.interpolate(from_uint8(sr.astype(np.uint8)), size=low.shape[:2], mode="area")
    error = (back - from_uint8(low.astype(np.uint8))).abs().mean().item() * 127.5
    return (
        detail(sr) > 2 * detail(bicubic) and error < 4 and blockiness(sr) >= 0.5 and edge_alignment(sr, bicubic) >= 0.2
    )


def repeated(tile: np.ndarray, n: int = 2) -> np.ndarray:
    return np.tile(tile, (n, n, 1))


@pytest.mark.slow
@pytest.mark.timeout(900)  # instant results, two trainings and every application (about 3-4 minutes on 2 busy cores)
def test_demo_tiny_writes_every_output_and_stops_its_daemon(tmp_path):
    out, temp = tmp_path / "demo", tmp_path / "tmp"
    temp.mkdir()  # the demo's temporary store goes here (TMPDIR), so we can see it removed
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        TMPDIR=str(temp),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    result = subprocess.run(
        [sys.executable, "-m", "singan_cli.cli", "demo", "--preset", "tiny", "--out", str(out), "--device", "cpu"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr

    for row in ("variations", "panorama", "tile"):  # the trained-vs-instant figures (issue 25, item 4)
        assert f"{row} against the demo image" in result.stderr, result.stderr[-2000:]
    assert result.stderr.count("instant: patch-SWD") == result.stderr.count("trained: patch-SWD") == 3
    printed = result.stdout.strip().splitlines()
    assert [Path(line).name for line in printed[:-1]] == [f"{name}.png" for name in OUTPUTS]
    assert printed[-1].startswith(f"{len(OUTPUTS)} images in {out}")
    sizes = {}
    for name in OUTPUTS:
        with Image.open(out / f"{name}.png") as im:
            im.load()  # decodes the whole file: a truncated PNG fails here
            sizes[name] = im.size

    w, h = DEMO_SIZE  # instant and trained results at the demo image's own size and feature scale
    for prefix in ("instant_", ""):
        assert all(sizes[f"{prefix}variation_{i}"] == (w, h) for i in range(1, 5))
        assert sizes[f"{prefix}panorama_3x1"] == (3 * h, h)
        assert sizes[f"{prefix}tile"] == (h, h) and sizes[f"{prefix}tile_2x2"] == (2 * h, 2 * h)
    assert sizes["composite"] == sizes["mask"] == sizes["harmonized"] == DEMO_SIZE
    assert sizes["sr_input"] == (SR_CROP, SR_CROP)
    assert sizes["sr_2x"] == sizes["sr_bicubic_2x"] == (2 * SR_CROP, 2 * SR_CROP)
    assert all(a > 2 * b for a, b in zip(sizes["contact_sheet"], DEMO_SIZE))

    # content, each with a control that must fail beside it
    composite, harmonized = pixels(out / "composite.png"), pixels(out / "harmonized.png")
    mask = pixels(out / "mask.png")[..., 0] > 127
    assert changed_inside_only(harmonized, composite, mask)
    assert not changed_inside_only(composite, composite, mask)  # nothing harmonized
    assert not changed_inside_only(np.clip(harmonized + 8, 0, 255), composite, mask)  # the whole frame changed

    for prefix in ("instant_", ""):
        tile = pixels(out / f"{prefix}tile.png")
        assert np.array_equal(pixels(out / f"{prefix}tile_2x2.png"), repeated(tile))
        variations = [pixels(out / f"{prefix}variation_{i}.png") for i in range(1, 5)]
        assert all(not np.array_equal(a, b) for a, b in zip(variations, variations[1:]))  # seeds differ
        assert min(v.std() for v in variations) > 5  # pictures, not flat colours
    # (whether tiles wrap around is tested on brick in test_full_resolution, test_daemon_fullres and
    # the Blender tests; a sparse star field looks seamless whatever it is spliced from)

    sr, bicubic, low = pixels(out / "sr_2x.png"), pixels(out / "sr_bicubic_2x.png"), pixels(out / "sr_input.png")
    assert super_resolved(sr, bicubic, low)
    assert not super_resolved(bicubic, bicubic, low)  # bicubic is not super-resolution
    nearest = np.repeat(np.repeat(low, 2, axis=0), 2, axis=1)  # 6x bicubic's detail, shrinks back exactly
    noisy = np.clip(bicubic + np.random.default_rng(0).normal(0, 6, bicubic.shape), 0, 255).round()
    assert not super_resolved(nearest, bicubic, low) and not super_resolved(noisy, bicubic, low)

    assert list(temp.glob("singan-demo-*")) == []  # the temporary store is gone (torch may leave its own caches)
    if Path("/proc").is_dir():
        assert processes_mentioning(str(temp)) == []  # and no daemon serves it any more
