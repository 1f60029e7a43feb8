"""SinGAN Studio core: learn a generative model from a single image (SinGAN, Shaham et al., ICCV 2019).

Scale index convention everywhere: k = 0 is the coarsest scale, k = K - 1 the finest (the paper's
n = N - k). Typical use::

    from singan_core import load_image, preset, new_pyramid, train, sample, select_device

    device = select_device()
    pyramid = new_pyramid(load_image("photo.png"), preset("draft"), device)
    train(pyramid)
    images = sample(pyramid, n_samples=4)          # (4, 3, H, W) in [-1, 1]

To keep the model, train into a directory (every finished scale is saved, training can resume)::

    from singan_core import start_training, run_training, load_pyramid

    run_training(start_training("photo.png", "models/photo", preset("draft"), "draft", device))
    pyramid, meta = load_pyramid("models/photo", device)
"""

from .config import PRESETS, NetConfig, PyramidConfig, SinGANConfig, TrainConfig, preset
from .device import configure_threads, select_device
from .errors import ImageReadError, InvalidArgument, MetricUnavailable, ModelLoadError, OutputDirNotEmpty
from .imageio import load_image, save_image
from .metrics import patch_swd, pixel_diversity, sifid
from .model import SinGANPyramid
from .fill import fill
from .patch_synthesis import inpaint
from .pyramid import PyramidGeometry, pyramid_geometry
from .sampling import generate, reconstruct, sample
from .storage import (
    ModelMeta,
    create_model_dir,
    file_sha256,
    load_pyramid,
    read_meta,
    save_scale,
)
from .training import TrainProgress, new_pyramid, train
from .workflow import EvalResult, TrainJob, evaluate, resume_training, run_training, start_training, write_samples

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "EvalResult",
    "ImageReadError",
    "InvalidArgument",
    "MetricUnavailable",
    "ModelLoadError",
    "ModelMeta",
    "NetConfig",
    "OutputDirNotEmpty",
    "PyramidConfig",
    "PyramidGeometry",
    "SinGANConfig",
    "SinGANPyramid",
    "TrainConfig",
    "TrainJob",
    "TrainProgress",
    "configure_threads",
    "create_model_dir",
    "evaluate",
    "file_sha256",
    "generate",
    "fill",
    "inpaint",
    "load_image",
    "load_pyramid",
    "new_pyramid",
    "patch_swd",
    "pixel_diversity",
    "preset",
    "pyramid_geometry",
    "read_meta",
    "reconstruct",
    "resume_training",
    "run_training",
    "sample",
    "save_image",
    "save_scale",
    "select_device",
    "sifid",
    "start_training",
    "train",
    "write_samples",
]
