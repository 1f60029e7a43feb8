"""Training schedules: the paper's config pinned field by field, and each faster schedule option
(named after its paper, see singan_core/config.py) training a tiny model end to end."""

from __future__ import annotations

import dataclasses

from singan_core.config import PRESETS, SinGANConfig
from singan_core.models import nfc_at

# SinGAN (Rott Shaham et al., ICCV 2019) sec. 2-3 and supplementary, and the original code
# release's config.py (tamarott/SinGAN): every field of every config dataclass. A new field must be
# added here with the value that keeps `paper` the paper.
PAPER = {
    "pyramid": {
        "max_size": 250,
        "min_size": 25,
        "scale_factor_init": 0.75,
        "exact_scale_factor": False,
    },
    "net": {
        "nfc_base": 32,
        "nfc_max": 128,
        "nfc_double_every": 4,
        "num_layers": 5,
        "kernel_size": 3,
        "padding_mode": "zeros",
    },
    "train": {
        "iterations": 2000,
        "lr_g": 5e-4,
        "lr_d": 5e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "lr_decay_at": 0.8,
        "gamma": 0.1,
        "d_steps": 3,
        "g_steps": 3,
        "alpha": 10.0,
        "lambda_grad": 0.1,
        "noise_amp_init": 0.1,
        "precision": "fp32",
        "seed": 0,
    },
}


def test_paper_preset_is_the_paper_field_by_field():
    paper = PRESETS["paper"]
    assert paper == SinGANConfig(), "the paper preset is the dataclass defaults"
    for section, expected in PAPER.items():
        got = dataclasses.asdict(getattr(paper, section))
        assert set(got) == set(expected), f"{section}: a field was added or removed; pin its paper value here"
        for name, value in expected.items():
            assert got[name] == value and type(got[name]) is type(value), f"{section}.{name}: {got[name]!r} != {value!r}"
    assert paper.train.lr_decay_iteration == 1600
    # 32 channels at the coarsest scale, doubling every 4 scales up to 128
    assert [nfc_at(k, paper.net) for k in range(10)] == [32] * 4 + [64] * 4 + [128] * 2
