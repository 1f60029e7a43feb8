"""The Blender add-on inside real Blender: the bpy 5.0.1 wheel in its own venv with only pyzmq and
msgpack (like Blender's own Python), talking to a real daemon subprocess (``served_model``).

The extension zip is built once with ``python -m blender_addon.build``, installed with
``bpy.ops.extensions.package_install_files`` into a throw-away user dir, and each scenario runs as a
harness script (tests/blender_harness/) in a fresh Blender process that writes JSON and pixel files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from protocol.auth import credentials_dir
from PIL import Image

from conftest import REPO, TRAIN_IMAGE, DaemonProcess
from protocol.client import DaemonError

BLENDER_PYTHON = Path(os.environ.get("SINGAN_BLENDER_PYTHON", REPO / ".venv-blender" / "bin" / "python"))
HARNESS = Path(__file__).resolve().parent / "blender_harness"
WHEEL_SITE = ".local/lib/python3.11/site-packages"

if not BLENDER_PYTHON.exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"the Blender Python {BLENDER_PYTHON} is missing (run .ci/install-hosts)", pytrace=False)
    pytest.skip(
        f"no Blender Python at {BLENDER_PYTHON} (set SINGAN_BLENDER_PYTHON or run .ci/install-hosts)",
        allow_module_level=True,
    )

# pytest-timeout: the first test builds the extension zip (wheel downloads on a cold cache)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run_harness(script: str, *args, env: dict, workdir: Path, timeout: float = 300) -> dict:
    """Run ``tests/blender_harness/<script>.py ARGS OUT.json`` with the Blender Python; its JSON."""
    out = workdir / f"{script}.json"
    done = subprocess.run(
        [str(BLENDER_PYTHON), str(HARNESS / f"{script}.py"), *map(str, args), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if not out.exists():
        pytest.fail(
            f"{script}.py wrote no result (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    result = json.loads(out.read_text())
    if "traceback" in result:
        pytest.fail(f"{script}.py failed:\n{result['traceback']}\n{done.stdout[-2000:]}")
    return result


def rgba(data: bytes, width: int, height: int) -> np.ndarray:
    """uint8 RGBA rows top first, as (height, width, 4)."""
    return np.frombuffer(data, np.uint8).reshape(height, width, 4)


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory) -> Path:
    """The zip ``python -m blender_addon.build`` makes (downloads the wheels: needs PyPI or pip's cache)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "blender_addon.build", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def blender_env(tmp_path_factory) -> dict:
    """Environment of the Blender processes: a throw-away home and user dirs; nothing of this
    project's Python environment."""
    home = tmp_path_factory.mktemp("blender_home")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BLENDER_", "PYTHON", "XDG_"))}
    env.update(
        HOME=str(home),
        BLENDER_USER_SCRIPTS=str(home / "scripts"),
        BLENDER_USER_EXTENSIONS=str(home / "extensions"),
        BLENDER_USER_CONFIG=str(home / "config"),
        BLENDER_USER_DATAFILES=str(home / "datafiles"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        OMP_NUM_THREADS="1",
        SINGAN_CREDENTIALS_DIR=str(credentials_dir()),
    )  # the same user's token as the daemon's (issue 29)
    return env


@pytest.fixture(scope="module")
def installed(extension_zip, blender_env, tmp_path_factory) -> dict:
    return run_harness("install", extension_zip, env=blender_env, workdir=tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """PNGs written for people to look at: the plate, the texture tiled 2x2, the renders."""
    return tmp_path_factory.mktemp("blender_artifacts")


@dataclass(frozen=True)
class SceneRun:
    result: dict
    blend: Path
    plate: np.ndarray  # what the add-on received from the daemon, (h, w, 4) uint8
    plate_in_blender: np.ndarray  # the datablock's pixels
    texture: np.ndarray
    texture_in_blender: np.ndarray
    render_world: np.ndarray  # (h, w, 3) uint8
    render_plane: np.ndarray


@pytest.fixture(scope="module")
def scene_run(installed, served_model, blender_env, tmp_path_factory, artifacts) -> SceneRun:
    workdir = tmp_path_factory.mktemp("scene")
    result = run_harness(
        "scene", served_model.daemon.endpoint, served_model.model, workdir, env=blender_env, workdir=workdir
    )
    width, height = result["plate"]["size"]
    side = result["texture"]["state"]["image"]["size"][0]
    run = SceneRun(
        result,
        workdir / "scene.blend",
        rgba((workdir / "plate.rgba").read_bytes(), width, height),
        rgba((workdir / "plate_blender.rgba").read_bytes(), width, height),
        rgba((workdir / "texture.rgba").read_bytes(), side, side),
        rgba((workdir / "texture_blender.rgba").read_bytes(), side, side),
        np.asarray(Image.open(workdir / "render_world.png").convert("RGB")),
        np.asarray(Image.open(workdir / "render_plane.png").convert("RGB")),
    )
    Image.fromarray(run.plate[..., :3]).save(artifacts / "plate.png")
    Image.fromarray(np.tile(run.texture[..., :3], (2, 2, 1))).save(artifacts / "texture_2x2.png")
    for name in ("render_world.png", "render_plane.png"):
        shutil.copy(workdir / name, artifacts / name)
    return run


@pytest.fixture(scope="module")
def reopened(scene_run, blender_env, tmp_path_factory) -> tuple[dict, Path]:
    """The saved .blend opened in a fresh process, after the folder it was made in (with the
    daemon's bytes) was deleted; its JSON and the folder of the pixels read back."""
    workdir = tmp_path_factory.mktemp("reopen")
    blend = shutil.copy(scene_run.blend, workdir / "moved.blend")
    shutil.rmtree(scene_run.blend.parent)
    return run_harness("reopen", blend, workdir, env=blender_env, workdir=workdir), workdir


def closed_endpoint() -> str:
    """A loopback TCP endpoint nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@dataclass(frozen=True)
class JobRun:
    result: dict
    workdir: Path  # sr.rgba: the super-resolved image as the add-on received it


@pytest.fixture(scope="module")
def job_run(installed, served_model, shared_images, blender_env, tmp_path_factory) -> JobRun:
    """job_control.py against the served daemon, a closed port, and a second daemon it kills."""
    workdir = tmp_path_factory.mktemp("jobs")
    doomed = DaemonProcess(workdir / "doomed-store")
    try:
        return JobRun(
            run_harness(
                "job_control",
                served_model.daemon.endpoint,
                closed_endpoint(),
                shared_images / TRAIN_IMAGE,
                doomed.endpoint,
                doomed.proc.pid,
                workdir,
                env=blender_env,
                workdir=workdir,
            ),
            workdir,
        )
    finally:
        doomed.kill()


def library_model(served_model, model: str):
    """The daemon's model ``model``, loaded in this process through the library."""
    from singan_core.storage import load_pyramid

    return load_pyramid(served_model.daemon.store / "models" / model)[0]


def library_sample(served_model, params: dict) -> np.ndarray:
    """What the library makes for a plate or texture ``generate`` request's ``params`` (width/height
    in pixels, feature_scale, seed, gen_start_scale, padding; ``detail: source``): SinGAN's sample
    lifted to full resolution with the model's source
    (:func:`singan_core.full_resolution.sample_full_resolution`), as uint8 RGB."""
    import torch

    from singan_core.full_resolution import sample_full_resolution
    from singan_core.imageio import to_uint8
    from singan_core.storage import read_meta
    from singan_core.workflow import model_lift_source

    path = served_model.daemon.store / "models" / params["model"]
    pyramid = library_model(served_model, params["model"])
    source = model_lift_source(path, pyramid, read_meta(path))
    with torch.no_grad():
        x = sample_full_resolution(
            pyramid,
            source,
            height=params["height"],
            width=params["width"],
            feature_scale=params["feature_scale"],
            gen_start_scale=params["gen_start_scale"],
            seed=params["seed"],
            padding_mode=params.get("padding"),
        )
    return to_uint8(x)


# --------------------------------------------------------------------------- packaging and install


def test_zip_has_manifest_client_and_wheels_for_every_platform(extension_zip):
    with zipfile.ZipFile(extension_zip) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        sources = {name: zf.read(name).decode() for name in names if name.endswith(".py")}
        for module in ("__init__.py", "wire.py", "client.py", "session.py"):
            assert zf.read(f"protocol/{module}") == (REPO / "protocol" / module).read_bytes()
    assert extension_zip.name == f"singan_studio-{version('singan-studio')}.zip"
    assert manifest["id"] == "singan_studio" and manifest["type"] == "add-on"
    assert manifest["version"] == version("singan-studio")
    assert manifest["blender_version_min"] == "4.2.0"
    assert "network" in manifest["permissions"]
    assert not any("__pycache__" in name for name in names)
    assert not any(
        re.search(r"^\s*(import|from)\s+(torch|pydantic|singan_core)\b", text, re.MULTILINE)
        for text in sources.values()
    )
    assert manifest["platforms"] == ["linux-x64", "windows-x64", "macos-arm64", "macos-x64"]
    wheels = [path.removeprefix("./") for path in manifest["wheels"]]
    assert set(wheels) <= names and all("-cp311-" in wheel for wheel in wheels)


def test_zip_installs_and_registers(installed):
    assert installed["validate"]["returncode"] == 0, installed["validate"]["output"]
    for platform, wheels in installed["wheels_by_platform"].items():  # Blender's own wheel matching
        assert sum(wheel.startswith("pyzmq-27.3.0-") for wheel in wheels) == 1, (platform, wheels)
        assert sum(wheel.startswith("msgpack-1.2.4-") for wheel in wheels) == 1, (platform, wheels)
    assert installed["enabled"]
    assert installed["module_file"].startswith(installed["extensions_dir"])
    assert all(installed["registered"].values()), installed["registered"]
    assert installed["panels"] == {"SINGAN_PT_world": True, "SINGAN_PT_sidebar": True}
    assert installed["operators"] == [
        "cancel_job",
        "connect",
        "delete_model",
        "generate_plate",
        "generate_texture",
        "resume_model",
        "super_resolve",
        "train",
        "view_standard",
    ]
    assert installed["scene_settings"]
    # Blender extracted only the wheels of this platform (Linux x86_64) into its extensions site-packages
    site = installed["wheel_site_packages"]
    assert {"zmq", "msgpack", "pyzmq-27.3.0.dist-info", "msgpack-1.2.4.dist-info"} <= set(site), site


def test_pyzmq_and_msgpack_come_from_the_extension_wheels(scene_run, job_run):
    for modules in (scene_run.result["modules"], job_run.result["modules"]):
        assert modules["zmq"].startswith(modules["wheels_site_packages"]), modules
        assert modules["msgpack"].startswith(modules["wheels_site_packages"]), modules
        assert modules["wheels_site_packages"].endswith(WHEEL_SITE)
    assert job_run.result["top_level"] == []  # the client and session are the add-on's own subpackage


# --------------------------------------------------------------------------- background plate


def test_plate_has_the_render_aspect(scene_run):
    final = scene_run.result["final"]
    assert final["result"] == ["FINISHED"], final["error"]
    width, height = scene_run.result["plate"]["size"]
    assert width == 192 and abs(height - width / 3) <= 1  # render 1920x640, longest side 192
    plate = scene_run.result["plate"]
    assert plate["pack_on_save"] and not plate["packed"]  # packed when the .blend is saved (no PNG encoding on arrival)
    assert scene_run.result["plate"]["name"] == f"{scene_run.result['plate_params']['model']} plate seed 2"
    params = scene_run.result["plate_params"]
    assert (params["width"], params["height"], params["seed"]) == (width, height, 2)


def test_plate_size_follows_resolution_percentage_and_pixel_aspect(scene_run):
    assert scene_run.result["plate_sizes"] == [[192, 64], [1000, 500], [100, 50], [360, 640]]


def test_plate_is_wired_into_world_camera_and_plane(scene_run):
    state = scene_run.result["final"]["state"]
    assert state["world_links"] == [
        ["Background", "Background", "World Output", "Surface"],
        ["SinGAN Plate", "Color", "Background", "Color"],
        ["SinGAN Plate Coordinates", "Window", "SinGAN Plate", "Vector"],
    ]
    assert ["SinGAN Plate", "ShaderNodeTexImage"] in state["world_nodes"]
    plate = scene_run.result["plate"]["name"]
    assert state["world_image"] == plate
    assert state["camera_show_background_images"] and state["camera_images"] == [plate]
    assert state["planes"] == ["SinGAN Plate"] and state["plane_image"] == plate and state["plane_parent"] == "Camera"
    xs = [corner[0] for corner in state["plane_corners"]]
    ys = [corner[1] for corner in state["plane_corners"]]
    assert (max(xs) - min(xs)) / (max(ys) - min(ys)) == pytest.approx(3.0, rel=1e-3)  # fills the 3:1 frame
    assert all(corner[2] < 0 for corner in state["plane_corners"])  # in front of the camera


def test_equirectangular_world_uses_an_environment_texture(scene_run):
    state = scene_run.result["environment"]["state"]
    assert ["SinGAN Plate", "ShaderNodeTexEnvironment"] in state["world_nodes"]
    assert not any(name == "SinGAN Plate Coordinates" for name, _ in state["world_nodes"])
    assert ["SinGAN Plate", "Color", "Background", "Color"] in state["world_links"]
    assert state["world_image"].endswith("seed 3") and state["camera_images"] != [state["world_image"]]


def test_each_new_seed_keeps_the_earlier_plates_as_images(scene_run):
    first, second = scene_run.result["first"]["state"], scene_run.result["second"]["state"]
    for key in ("world_nodes", "world_links", "planes", "objects", "materials"):
        assert first[key] == second[key], key
    assert len(second["camera_images"]) == 1 and second["world_image"] == "chelsea plate seed 2"  # the newest assigned
    assert first["images"] == ["chelsea plate seed 1"] and second["images"] == [
        "chelsea plate seed 1",
        "chelsea plate seed 2",
    ]
    # seed 3 (environment), then seed 2 again: three plates, one image per seed
    assert scene_run.result["final"]["state"]["images"] == [
        "chelsea plate seed 1",
        "chelsea plate seed 2",
        "chelsea plate seed 3",
    ]


def test_daemon_errors_are_reported_and_leave_the_scene_alone(scene_run):
    bad = scene_run.result["bad_scale"]
    assert bad["result"] is None, bad
    assert "Background plate failed: the daemon refused: params.gen_start_scale: must be in 0..2" in bad["error"], bad[
        "error"
    ]
    assert bad["state"] == scene_run.result["final"]["state"]


def test_plate_pixels_are_the_daemons(scene_run, served_model):
    assert np.array_equal(scene_run.plate_in_blender, scene_run.plate)
    params = scene_run.result["plate_params"]
    with served_model.daemon.client() as client:
        job = client.submit("generate", params)
        job.wait(timeout=120)
    again = rgba(bytes(job.images[0].data), params["width"], params["height"])
    assert np.array_equal(again, scene_run.plate)  # the same request gives the same plate
    library = library_sample(served_model, params)  # and it is the library's sample for it
    assert np.abs(library.astype(int) - scene_run.plate[..., :3]).max() <= 1  # float rounding at most
    assert scene_run.plate[..., :3].std() > 5  # a picture, not a flat colour


def test_saved_blend_keeps_the_packed_plate(reopened, scene_run):
    result, workdir = reopened
    assert not result["addon_enabled"]
    assert (
        result["plate"]["packed"] and result["plate"]["name"] == scene_run.result["plate"]["name"]
    )  # packed by the save
    assert result["texture"]["packed"] and not result["plate"]["tags"].get("singan_pack_on_save")
    assert result["world_links"] == scene_run.result["final"]["state"]["world_links"]
    assert result["camera_images"] == [result["plate"]["name"]] and result["plane_images"] == [result["plate"]["name"]]
    width, height = result["plate"]["size"]
    assert np.array_equal(rgba((workdir / "plate.rgba").read_bytes(), width, height), scene_run.plate)
    side = result["texture"]["size"][0]
    assert np.array_equal(rgba((workdir / "texture.rgba").read_bytes(), side, side), scene_run.texture)


def box_average(plate: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The plate's RGB averaged over the area each pixel of a render of ``shape`` covers (the
    plate's size is a multiple of it)."""
    height, width = shape
    rgb = plate[..., :3].astype(float)
    return rgb.reshape(height, rgb.shape[0] // height, width, rgb.shape[1] // width, 3).mean(axis=(1, 3))


@pytest.mark.parametrize("render", ["render_world", "render_plane"])
def test_cycles_render_shows_the_plate_in_the_corners(scene_run, render):
    image = getattr(scene_run, render).astype(float)
    assert image.shape[:2] == ((32, 64) if render == "render_world" else (32, 96))
    expected = box_average(scene_run.plate, image.shape[:2])
    for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert np.abs(image[corner] - expected[corner]).max() <= 12, (corner, image[corner], expected[corner])
    # in the left and right fifths (the cube stands in the middle) the render is the plate, not a flipped or mirrored one
    width = image.shape[1]
    sides = np.zeros(image.shape[:2], bool)
    sides[:, : width // 5] = sides[:, width - width // 5 :] = True
    error = np.abs(image - expected)[sides].mean()  # seen: 2.5 (antialiasing), 14-15 for a flipped or mirrored plate
    assert error < 5, error
    for wrong in (scene_run.plate[::-1], scene_run.plate[:, ::-1]):
        assert error < 0.5 * np.abs(image - box_average(wrong, image.shape[:2]))[sides].mean()


# --------------------------------------------------------------------------- seamless texture


def seams(tile: np.ndarray) -> tuple[float, float, float, float]:
    """Mean absolute difference across the wrap-around seams (last column vs first, last row vs
    first), and the median of the same between interior neighbour columns and rows, 0..255."""
    tile = tile[..., :3].astype(float)
    return (
        np.abs(tile[:, -1] - tile[:, 0]).mean(),
        np.abs(tile[-1] - tile[0]).mean(),
        np.median(np.abs(np.diff(tile, axis=1)).mean(axis=(0, 2))),
        np.median(np.abs(np.diff(tile, axis=0)).mean(axis=(1, 2))),
    )


def test_seamless_texture_tiles_and_is_linked(scene_run, served_model):
    run = scene_run.result["texture"]
    assert run["result"] == ["FINISHED"], run["error"]
    state = run["state"]
    assert ["SinGAN Texture", "Color", "Principled BSDF", "Base Color"] in state["links"]
    assert ["SinGAN Texture Mapping", "Vector", "SinGAN Texture", "Vector"] in state["links"]
    assert ["SinGAN Texture Coordinates", "UV", "SinGAN Texture Mapping", "Vector"] in state["links"]
    assert state["extension"] == "REPEAT" and state["repeat"] == [3.0, 3.0, 1.0]
    assert state["image"]["pack_on_save"] and state["image"]["size"] == [64, 64]
    assert state["nodes"] == scene_run.result["texture_first"]["state"]["nodes"]  # regenerating adds no nodes
    assert state["images"].count(state["image"]["name"]) == 1 and not any(
        "tile seed 0" in name for name in state["images"]
    )
    assert scene_run.result["texture_params"]["padding"] == "circular"
    assert np.array_equal(scene_run.texture_in_blender, scene_run.texture)

    seam_x, seam_y, inner_x, inner_y = seams(scene_run.texture)
    # seen with the tiny model: seams 1.2-1.5x the interior median; 2-3.7x without circular padding
    assert seam_x <= 2 * inner_x and seam_y <= 2 * inner_y, (seam_x, seam_y, inner_x, inner_y)
    # the same request without circular padding has visible seams: the measure tells them apart
    with served_model.daemon.client() as client:
        job = client.submit("generate", {**scene_run.result["texture_params"], "padding": "zeros"})
        job.wait(timeout=120)
    plain = seams(rgba(bytes(job.images[0].data), 64, 64))
    assert seam_x + seam_y < plain[0] + plain[1], (seam_x, seam_y, plain)
    library = library_sample(served_model, scene_run.result["texture_params"])  # the library's circular sample
    assert np.abs(library.astype(int) - scene_run.texture[..., :3]).max() <= 1


# --------------------------------------------------------------------------- full resolution and instant (issue 13)


@pytest.fixture(scope="module")
def fullres_run(installed, served_model, blender_env, shared_images, tmp_path_factory, artifacts) -> dict:
    """coffee.png trained (tiny) in the served daemon; the fullres.py scenario: a 960 x 320 plate of
    it at feature scale 1, and an instant 128 px texture of coffee.png (no model)."""
    from conftest import wire_image

    image = shared_images / "coffee.png"
    with served_model.daemon.client() as client:
        model = client.submit("train", {"name": "coffee", "preset": "tiny"}, [wire_image(image)]).wait(timeout=600)[
            "model"
        ]["id"]
    workdir = tmp_path_factory.mktemp("fullres")
    result = run_harness(
        "fullres", served_model.daemon.endpoint, model, image, workdir, env=blender_env, workdir=workdir
    )
    width, height = result["plate_size"]
    result["plate_pixels"] = rgba((workdir / "plate.rgba").read_bytes(), width, height)
    result["texture_pixels"] = rgba((workdir / "texture.rgba").read_bytes(), 128, 128)
    result["source"] = image
    Image.fromarray(result["plate_pixels"][..., :3]).save(artifacts / "fullres_plate.png")
    Image.fromarray(np.tile(result["texture_pixels"][..., :3], (2, 2, 1))).save(artifacts / "instant_texture_2x2.png")
    return result


def test_a_plate_at_feature_scale_1_has_the_source_photos_patch_statistics(fullres_run, served_model, artifacts):
    """The 960 x 320 plate's central 320 x 320 region against coffee.png at full resolution:
    patch-SWD below that of today's model-scale plate (the same request with ``detail: model``)."""
    import torch

    from singan_core.imageio import load_image
    from singan_core.metrics import patch_swd

    assert fullres_run["plate"]["result"] == ["FINISHED"], fullres_run["plate"]["error"]
    params = fullres_run["plate_params"]
    assert (params["width"], params["height"], params["feature_scale"], params["detail"]) == (960, 320, 1.0, "source")
    with served_model.daemon.client() as client:
        job = client.submit("generate", {**params, "detail": "model"})
        job.wait(timeout=300)
    model_scale = rgba(bytes(job.images[0].data), 960, 320)
    Image.fromarray(model_scale[..., :3]).save(artifacts / "model_scale_plate.png")

    def centre(plate: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(plate[:, 320:640, :3].copy()).permute(2, 0, 1)[None].float()
        return x / 127.5 - 1

    source = load_image(fullres_run["source"])
    lifted_swd = patch_swd(centre(fullres_run["plate_pixels"]), source)
    model_swd = patch_swd(centre(model_scale), source)
    assert lifted_swd < model_swd, (lifted_swd, model_swd)


def test_an_instant_seamless_texture_tiles(fullres_run):
    assert fullres_run["texture"]["result"] == ["FINISHED"], fullres_run["texture"]["error"]
    assert fullres_run["texture_op"] == "instant" and fullres_run["texture_params"]["tile"] is True
    assert fullres_run["texture_image"] == "coffee instant tile seed 0"
    seam_x, seam_y, inner_x, inner_y = seams(fullres_run["texture_pixels"])
    assert seam_x <= 2 * inner_x and seam_y <= 2 * inner_y, (seam_x, seam_y, inner_x, inner_y)


# --------------------------------------------------------------------------- jobs: the real modal path, cancel, errors
# job_control.py dispatches timer and Esc events to the operators' real modal() (its docstring says how).

RETURNS_AT_ONCE_S = 0.15
"""Connect, starting a job and cancelling return at once (issue 14): 10x the 12 ms the slowest of
them took on a loaded machine; a call that waited for the daemon would take the session's 2.4 s."""
UNREACHABLE_SHOWN_S = 25.0
"""A stopped daemon is shown as unreachable at all (the session's policy: 2.4 s; measured 2.3-2.4 s;
10x); the states' order is asserted beside it."""
FELT_STEP_S = 0.25
"""The longest a modal timer step may take while a job runs (measured under load: 1.3 ms; 0.25 s
would be a visible stutter)."""


def test_with_the_daemon_stopped_connect_returns_at_once_and_shows_unreachable(job_run):
    connect = job_run.result["stopped_connect"]
    assert connect["result"] == ["FINISHED"] and connect["seconds"] < RETURNS_AT_ONCE_S, connect
    assert connect["states"] == ["connecting", "unreachable"] and connect["until"] < UNREACHABLE_SHOWN_S, connect
    assert (
        connect["status"].startswith("unreachable: no answer from the SinGAN daemon")
        and "singan serve" in connect["status"]
    )
    # the panels' connection line and Blender's status bar say so (drawn from the session, no network)
    status = connect["status"]
    assert connect["shown"]["panel"] == [[status[0].upper() + status[1:], "ERROR"]], connect["shown"]
    assert connect["shown"]["status_bar"] == [[f"SinGAN: {status}", "UNLINKED"]], connect["shown"]
    assert connect["shown"]["seconds"] < RETURNS_AT_ONCE_S


def test_with_the_daemon_stopped_a_job_starts_at_once_and_fails_with_the_reason(job_run):
    run = job_run.result["stopped_plate"]
    assert run["invoke"]["result"] == ["RUNNING_MODAL"] and run["invoke"]["seconds"] < RETURNS_AT_ONCE_S, run["invoke"]
    assert run["result"] == ["CANCELLED"] and run["seconds"] < UNREACHABLE_SHOWN_S, run
    assert "Background plate failed: unreachable: no answer from the SinGAN daemon" in run["error"], run["error"]
    assert max(run["steps"]) < FELT_STEP_S, max(run["steps"])


@pytest.mark.parametrize("how", ["esc", "button"])
def test_with_the_daemon_stopped_cancel_returns_at_once(job_run, how):
    run = job_run.result[f"stopped_cancel_{how}"]
    assert run["invoke"]["result"] == ["RUNNING_MODAL"], run
    assert run["cancel"]["result"] == (["RUNNING_MODAL"] if how == "esc" else ["FINISHED"]), run["cancel"]
    assert run["cancel"]["seconds"] < RETURNS_AT_ONCE_S, run["cancel"]
    assert run["result"] == ["CANCELLED"] and run["cancelled"] and run["error"] is None, run


def test_connect_shows_the_daemons_version_device_and_models(job_run, served_model):
    connect = job_run.result["connect"]
    assert connect["result"] == ["FINISHED"] and connect["state"] == "connected", connect
    with served_model.daemon.client() as client:
        hello = client.hello()
    assert (connect["info"]["server_version"], connect["info"]["device"]) == (hello["server_version"], hello["device"])
    assert connect["info"]["instance"] == hello["instance"] and served_model.model in connect["models"]
    assert connect["status"] == f"connected: SinGAN daemon {hello['server_version']} on {hello['device']}"
    assert connect["shown"]["panel"] == [
        [f"Connected: SinGAN daemon {hello['server_version']} on {hello['device']}", "CHECKMARK"]
    ]
    assert connect["shown"]["status_bar"] == []  # connected and idle: nothing to say


def test_esc_cancels_a_running_training_on_the_daemon(job_run, served_model):
    run = job_run.result["train_esc"]
    assert run["invoke"]["result"] == ["RUNNING_MODAL"]
    assert run["invoke"]["seconds"] < 0.5  # reading and sending the photo (measured 11 ms); the training takes minutes
    assert any(phase.startswith("Training: scale 1 of ") for phase in run["phases"]), run["phases"]  # the panel's text
    [(text, icon)] = run["shown"]["status_bar"]  # and the status bar's, while it runs
    assert text.startswith("SinGAN: Training: ") and icon == "TIME", run["shown"]
    assert run["cancel"]["result"] == ["RUNNING_MODAL"] and run["cancel"]["seconds"] < RETURNS_AT_ONCE_S, run["cancel"]
    assert run["result"] == ["CANCELLED"] and run["cancelled"], run
    assert max(run["steps"]) < FELT_STEP_S, max(run["steps"])
    with served_model.daemon.client() as client:
        assert run["job"] not in {entry["job"] for entry in client.jobs()}
        try:
            status = client.get_model(run["model"])["status"]
        except DaemonError as error:
            status = error.code
    assert status in ("not_found", "interrupted")  # deleted before its first scale, or kept partly trained


def test_training_from_an_image_datablock_reports_progress_and_sets_the_model(job_run, served_model, shared_images):
    train = job_run.result["train"]
    assert train["invoke"]["result"] == ["RUNNING_MODAL"] and train["result"] == ["FINISHED"], train
    assert train["scene_model"] == "chelsea-photo" == train["model"]
    fractions = [fraction for fraction in train["fractions"] if fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(set(fractions)) > 5
    assert any(phase.startswith("Training: scale 3 of 3") for phase in train["phases"]), train["phases"]
    assert max(train["steps"][:-1]) < FELT_STEP_S  # the last step applies the result
    with served_model.daemon.client() as client:
        model = client.get_model("chelsea-photo")
    assert model["status"] == "ready" and model["preset"] == "tiny"
    with Image.open(shared_images / TRAIN_IMAGE) as photo:  # the daemon got the photo upright, pixel for pixel
        assert model["source_sha256"] == hashlib.sha256(photo.convert("RGB").tobytes()).hexdigest()


@pytest.mark.parametrize("job", ["plate_cancel", "texture_cancel", "sr_cancel"])
def test_cancelling_plate_texture_and_super_resolution_applies_nothing(job_run, served_model, job):
    run = job_run.result[job]
    assert run["invoke"]["result"] == ["RUNNING_MODAL"] and run["cancel"]["seconds"] < RETURNS_AT_ONCE_S, run
    assert run["result"] == ["CANCELLED"] and run["cancelled"] and run["error"] is None, run
    assert job_run.result["images_unchanged"]
    if job == "sr_cancel":  # a training in the daemon: it is stopped there
        with served_model.daemon.client() as client:
            assert run["cancel"]["job"] not in {entry["job"] for entry in client.jobs()}


def test_super_resolve_makes_a_new_image_twice_the_size_as_the_library_does(job_run, served_model):
    import torch

    from singan_core.imageio import to_uint8
    from singan_core.super_resolution import super_resolve

    run = job_run.result["super_resolve"]
    assert run["result"] == ["FINISHED"], run["error"]
    assert run["size"] == [90, 60] and run["packed"] and run["kind"] == "super_resolution"
    assert run["panel_result"] == "small x2"  # named in the panel (issue 28, item 6)
    received = rgba((job_run.workdir / "sr.rgba").read_bytes(), 90, 60)
    with torch.no_grad():
        library = to_uint8(super_resolve(library_model(served_model, run["model"]), 2.0))
    assert np.abs(library.astype(int) - received[..., :3]).max() <= 1  # float rounding at most


def test_daemon_killed_during_a_training_is_reported_as_stopped_and_esc_ends_the_wait(job_run):
    killed = job_run.result["killed"]
    assert killed["invoke"]["result"] == ["RUNNING_MODAL"] and killed["result"] == ["CANCELLED"], killed
    # not "failed" nor "cancelled": the daemon resumes the training when it starts again (issue 28)
    assert killed["stopped_phase"] == "the daemon stopped; the training continues when it restarts", killed
    assert killed["seconds_after_kill"] < 25.0  # the policy says 2.4 s (measured 2.3 s): 10x
    assert killed["cancel"]["seconds"] < RETURNS_AT_ONCE_S and killed["cancelled"] and killed["error"] is None, killed
    assert max(killed["steps"]) < FELT_STEP_S


# --------------------------------------------------------------------------- plates with the default options (issue 28)


@pytest.fixture(scope="module")
def plates_run(installed, served_model, shared_images, blender_env, tmp_path_factory, artifacts) -> tuple[dict, Path]:
    workdir = tmp_path_factory.mktemp("plates")
    photo = shared_images / "reference" / "mountains3.png"
    result = run_harness(
        "plates", served_model.daemon.endpoint, served_model.model, photo, workdir, env=blender_env, workdir=workdir
    )
    width, height = result["instant_size"]
    Image.fromarray(rgba((workdir / "instant.rgba").read_bytes(), width, height)[..., :3]).save(
        artifacts / "instant_plate.png"
    )
    return result, workdir


def test_default_plate_is_the_photos_layout_at_the_renders_resolution(plates_run):
    result, _ = plates_run
    assert result["defaults"] == {
        "layout": "FITTED",
        "render_size": True,
        "targets": ["WORLD"],
        "view_transform": "AgX",
    }
    run = result["default_plate"]
    assert run["result"] == ["FINISHED"], run["error"]
    assert run["size"] == [384, 216]  # 768 x 432 at 50 %
    assert run["params"]["plate"] is True and run["params"]["width"] == 384 and run["params"]["height"] == 216
    assert run["world_image"] == "chelsea plate seed 0" and run["plates"] == ["chelsea plate seed 0"]


def test_three_seeds_are_kept_as_three_images_the_newest_assigned(plates_run, shared_images):
    result, workdir = plates_run
    names = [f"mountains3 instant plate seed {seed}" for seed in range(3)]
    for seed, run in enumerate(result["seeds"]):
        assert run["result"] == ["FINISHED"], run["error"]
        assert run["op"] == "instant" and run["world_image"] == names[seed]
        assert set(names[: seed + 1]) <= set(run["plates"])
    assert result["seeds"][-1]["plates"] == sorted(["chelsea plate seed 0", *names])
    assert all(result["packed_after_save"].values())  # all kept plates are in the saved .blend


def test_instant_plate_from_blender_keeps_the_photos_horizon(plates_run, shared_images):
    import torch

    from singan_core.imageio import load_image
    from singan_core.metrics import horizon_edge, row_profile_correlation

    result, workdir = plates_run
    width, height = result["instant_size"]
    plate = rgba((workdir / "instant.rgba").read_bytes(), width, height)[..., :3]
    plate = torch.from_numpy(plate.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    photo = load_image(shared_images / "reference" / "mountains3.png")
    photo_height, polarity = horizon_edge(photo)
    assert abs(horizon_edge(plate, polarity)[0] - photo_height) <= 0.05
    assert row_profile_correlation(plate, photo) >= 0.8


def test_every_feature_scale_of_the_range_makes_a_plate(plates_run):
    result, _ = plates_run
    for run in result["feature_scales"]:
        assert run["result"] == ["FINISHED"], (run["scale"], run["error"])
        assert (
            run["size"] == [320, 180]
            and run["params"]["feature_scale"] == pytest.approx(run["scale"])
            and "plate" not in run["params"]
        )


def test_view_transform_hint_sets_standard(plates_run):
    result, _ = plates_run
    assert result["view_standard"]["result"] == ["FINISHED"] and result["view_after"] == "Standard"


ARRIVAL_4K_CPU_S = 0.31
"""A 3840 x 2160 plate's arrival (new image from a float32 array, placed in the world), CPU seconds
as measured by plates.py on the shared 2-core machine at load 1.6 (docs/benchmarks.md, Plates;
over the issue's 100 ms aim)."""


def test_a_4k_plate_arrives_without_encoding_a_png(plates_run):
    result, _ = plates_run
    assert result["arrival_4k_world"] == "4K plate"
    # packing on arrival (PNG encoding, seconds of CPU) waits for the save: the order, not the clock
    assert result["arrival_4k_packed"] is False and result["packed_after_save"]["4K plate"] is True, result[
        "packed_after_save"
    ]
    # CPU seconds (the wall time of a loaded machine is mostly waiting): 10x the measured cost
    # (ARRIVAL_4K_CPU_S, docs/benchmarks.md) is the "never blocks" bound; packing on arrival (PNG
    # encoding) took seconds of CPU
    assert result["arrival_4k_cpu_s"] <= 10 * ARRIVAL_4K_CPU_S, (result["arrival_4k_cpu_s"], result["arrival_4k_s"])


# --------------------------------------------------------------------------- models the artist can manage (issue 28, item 5)


@pytest.fixture(scope="module")
def models_run(installed, shared_images, blender_env, tmp_path_factory) -> dict:
    """models.py against a daemon of its own, started again on the same endpoint and store 3 s
    after it exits (the harness shuts it down mid-training)."""
    import threading

    workdir = tmp_path_factory.mktemp("models")
    store, endpoint = workdir / "store", closed_endpoint()
    daemons, finished = [DaemonProcess(store, "--endpoint", endpoint)], threading.Event()

    def restart() -> None:
        daemons[0].proc.wait()
        if not finished.wait(3.0):  # long enough for the add-on to notice (the policy: 3.4 s at most)
            daemons.append(DaemonProcess(store, "--endpoint", endpoint))

    restarter = threading.Thread(target=restart, daemon=True)
    restarter.start()
    try:
        result = run_harness(
            "models", endpoint, shared_images / TRAIN_IMAGE, env=blender_env, workdir=workdir, timeout=1700
        )
        result["log"] = daemons[0].log.read_text() if daemons[0].log.exists() else ""  # both daemons log there
        return result
    finally:
        finished.set()  # a harness that failed before the shutdown: no restart after this
        daemons[0].stop()
        restarter.join(timeout=120)
        for daemon in daemons[1:]:
            daemon.stop()


@pytest.mark.timeout(1800)  # the first test sets up models_run: four tiny trainings and a daemon restart
def test_interrupted_trainings_are_listed_with_resume_and_delete(models_run):
    assert models_run["panel_before"] == {"shown": [], "buttons": []}  # nothing interrupted: no box
    run = models_run["interrupt"]
    assert run["result"] == ["CANCELLED"] and run["cancelled"], run
    assert run["listed_after"] < 5.0, run["listed_after"]  # the heartbeat brings it (1 s)
    shown, buttons = run["panel"]["shown"], run["panel"]["buttons"]
    assert shown[0] == ["Interrupted trainings", "PAUSE"]
    [(text, _)] = [line for line in shown if line[0].startswith("interrupt-me: ")]
    assert text == "interrupt-me: interrupted, 1 of 2 scales", text
    assert {"idname": "singan.resume_model", "model": run["model"]} in buttons
    assert {"idname": "singan.delete_model", "model": run["model"]} in buttons


def test_resume_from_the_panel_trains_the_model_to_the_end(models_run):
    run = models_run["resume"]
    assert run["invoke"]["result"] == ["RUNNING_MODAL"] and run["result"] == ["FINISHED"], run
    model = models_run["interrupt"]["model"]
    assert run["model"] == model and run["status"] == "ready" and run["scene_model"] == model
    assert any(phase.startswith("Training: scale 2 of 2") for phase in run["phases"]), run["phases"]
    assert not any(phase.startswith("Training: scale 1 of 2") for phase in run["phases"]), run[
        "phases"
    ]  # the saved scale is kept
    fractions = [fraction for fraction in run["fractions"] if fraction is not None]
    assert fractions[0] > 0.0 and fractions[-1] == 1.0  # it started from the saved scales, not from zero
    assert run["panel"] == {"shown": [], "buttons": []}  # no longer interrupted
    assert max(run["steps"][:-1]) < FELT_STEP_S


def test_delete_from_the_panel_removes_the_interrupted_model(models_run):
    doomed, run = models_run["doomed"], models_run["delete"]
    assert doomed["result"] == ["CANCELLED"] and doomed["panel"]["buttons"], doomed
    assert run["result"] == ["FINISHED"] and run["message"] == f"model '{doomed['model']}' deleted", run
    assert not run["listed"] and doomed["model"] not in run["models"] and run["gone_after"] < 5.0
    assert run["panel"] == {"shown": [], "buttons": []}
    assert models_run["interrupt"]["model"] in run["models"]  # only that one


def test_a_daemon_stopped_mid_training_is_reported_and_followed_after_its_restart(models_run):
    run = models_run["restart"]
    [seen] = run["stopped_seen"]
    stopped = "the daemon stopped; the training continues when it restarts"
    assert seen["phase"] == stopped and seen["seconds_after_stop"] < 10.0, seen
    assert [f"SinGAN: {stopped}", "TIME"] in seen["panel"]["status_bar"], seen["panel"]
    assert "cancelled" not in " ".join(run["phases"]), run["phases"]
    after = run["phases"][run["phases"].index(stopped) + 1 :]
    assert any(re.match(r"Training: (resumed by the restarted daemon|\d+ %)", phase) for phase in after), run["phases"]
    assert run["result"] == ["FINISHED"] and not run["cancelled"], run
    assert run["status"] == "ready" and run["scene_model"] == run["model"] == "restart-me"
    assert "resuming the interrupted training of restart-me" in models_run["log"]
    assert max(run["steps"][:-1]) < FELT_STEP_S


def test_the_panels_training_estimate_is_the_daemons_and_within_2x_of_the_measured_time(models_run):
    """Issue 28 item 4: the Train panel says how long a training takes from the daemon's cost model
    (``hello``'s preset seconds, calibrated by the daemon's last training; the Krita docker reads the
    same through protocol/advice.py), and a training then takes that long within 2x (wall seconds,
    the harness's modal loop; the shared machine's load moves both)."""
    run = models_run["timed"]
    assert run["result"] == ["FINISHED"], run
    [(text, icon)] = run["estimate"]
    match = re.fullmatch(r"About (\d+) (s|min), from the daemon's cost model", text)
    assert match and icon == "TIME", text
    said = int(match[1]) * (60 if match[2] == "min" else 1)
    assert [item["name"] for item in run["preset_details"] if item.get("seconds")] == ["tiny"]  # only what was trained
    assert run["modal_seconds"] / 2 <= said <= run["modal_seconds"] * 2, (said, run["modal_seconds"])
