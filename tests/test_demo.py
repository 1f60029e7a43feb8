"""``singan demo --preset tiny`` end to end: a real daemon subprocess, the client, every output file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEMO_SIZE = (300, 262)  # singan_core/data/demo.png
SR_CROP = 64
OUTPUTS = [
    "variation_1", "variation_2", "variation_3", "variation_4", "panorama_3x1", "tile", "tile_2x2",
    "composite", "mask", "harmonized", "sr_input", "sr_bicubic_2x", "sr_2x", "contact_sheet",
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


@pytest.mark.slow
@pytest.mark.timeout(900)  # trains two models and runs every application (about 3 minutes on 2 busy cores)
def test_demo_tiny_writes_every_output_and_stops_its_daemon(tmp_path):
    out, temp = tmp_path / "demo", tmp_path / "tmp"
    temp.mkdir()  # the demo's temporary store goes here (TMPDIR), so we can see it removed
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(temp),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--preset", "tiny", "--out", str(out), "--device", "cpu"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr

    printed = result.stdout.strip().splitlines()
    assert [Path(line).name for line in printed[:-1]] == [f"{name}.png" for name in OUTPUTS]
    assert printed[-1].startswith(f"{len(OUTPUTS)} images in {out}")
    sizes = {}
    for name in OUTPUTS:
        with Image.open(out / f"{name}.png") as im:
            im.load()  # decodes the whole file: a truncated PNG fails here
            sizes[name] = im.size

    w, h = sizes["variation_1"]
    assert max(w, h) == 48  # the tiny preset's max_size
    assert all(sizes[f"variation_{i}"] == (w, h) for i in range(2, 5)) and sizes["tile"] == (w, h)
    assert sizes["panorama_3x1"] == (3 * h, h)
    assert sizes["tile_2x2"] == (2 * w, 2 * h)
    assert sizes["composite"] == sizes["mask"] == sizes["harmonized"] == DEMO_SIZE
    assert sizes["sr_input"] == (SR_CROP, SR_CROP)
    assert sizes["sr_2x"] == sizes["sr_bicubic_2x"] == (2 * SR_CROP, 2 * SR_CROP)
    assert all(a > 2 * b for a, b in zip(sizes["contact_sheet"], DEMO_SIZE))

    assert list(temp.glob("singan-demo-*")) == []  # the temporary store is gone (torch may leave its own caches)
    if Path("/proc").is_dir():
        assert processes_mentioning(str(temp)) == []  # and no daemon serves it any more
