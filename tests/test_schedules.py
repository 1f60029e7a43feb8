"""Training schedules: the paper's config pinned field by field, and each faster schedule option
(named after its paper, see singan_core/config.py) training a tiny model end to end."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from singan_core import storage, training
from singan_core.config import PRESETS, PyramidConfig, SinGANConfig, preset
from singan_core.errors import InvalidArgument
from singan_core.imageio import load_image, save_image
from singan_core.metrics import pixel_diversity
from singan_core.nets import nfc_at
from singan_core.pyramid import pyramid_geometry
from singan_core.sampling import reconstruct, sample
from singan_core.storage import create_model_dir, file_sha256, load_pyramid, read_meta, save_scale
from singan_core.super_resolution import sr_config
from singan_core.training import new_pyramid, scales_changed_by, train
from singan_core.workflow import resume_training, run_training, start_training

CPU = torch.device("cpu")

# SinGAN (Rott Shaham et al., ICCV 2019) sec. 2-3 and supplementary, and the original code
# release's config.py (tamarott/SinGAN): every field of every config dataclass. A new field must be
# added here with the value that keeps `paper` the paper.
PAPER = {
    "pyramid": {
        "max_size": 250,
        "min_size": 25,
        "scale_factor_init": 0.75,
        "exact_scale_factor": False,
        "scale_rule": "paper",
        "num_stages": 6,
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
        "gp_every": 1,
        "concurrent_stages": 1,
        "stage_lr_scale": 0.1,  # unused with concurrent_stages = 1
        "redraw_coarsest_z_opt": False,  # the paper's fixed z_opt (the original release redraws it)
        "prev_per_d_step": False,  # one coarser sample per iteration (the original: one per D step)
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
            assert got[name] == value and type(got[name]) is type(value), (
                f"{section}.{name}: {got[name]!r} != {value!r}"
            )
    assert paper.train.lr_decay_iteration == 1600
    # 32 channels at the coarsest scale, doubling every 4 scales up to 128
    assert [nfc_at(k, paper.net) for k in range(10)] == [32] * 4 + [64] * 4 + [128] * 2


# --- helpers ----------------------------------------------------------------------------------


def tiny_with(**sections) -> SinGANConfig:
    """The tiny preset with fields replaced per section: ``tiny_with(train={"gp_every": 2})``."""
    cfg = preset("tiny")
    return dataclasses.replace(
        cfg, **{name: dataclasses.replace(getattr(cfg, name), **fields) for name, fields in sections.items()}
    )


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [-1, 1] (peak-to-peak 2)."""
    return 10 * math.log10(4 / F.mse_loss(a.clamp(-1, 1), b.clamp(-1, 1)).item())


def check_trained(pyramid, png) -> None:
    """The finest reconstruction matches the real image (>= 20 dB) and samples come out; writes the
    real image, its reconstruction and four samples side by side to ``png`` to look at."""
    rec, real = reconstruct(pyramid), pyramid.reals[-1]
    save_image(torch.cat([real, rec.clamp(-1, 1), *sample(pyramid, 4, seed=1).split(1)], dim=3), png)
    assert psnr(rec, real) >= 20.0


# --- lazy gradient penalty (StyleGAN2) ----------------------------------------------------------


@pytest.mark.slow
def test_lazy_gradient_penalty_trains_and_applies_the_penalty_every_kth_critic_step(
    shared_images, tmp_path, monkeypatch
):
    cfg = tiny_with(train={"gp_every": 4})
    weights: list[float] = []
    reached: list[float] = []  # d(loss_d)/d(penalty) as seen by backward: 1.0 when the penalty is added to the loss
    real_penalty = training.gradient_penalty

    def counted(critic, real, fake, lambda_grad, rng):
        weights.append(lambda_grad)
        penalty = real_penalty(critic, real, fake, lambda_grad, rng)
        penalty.register_hook(lambda grad: reached.append(float(grad)))
        return penalty

    monkeypatch.setattr(training, "gradient_penalty", counted)
    pyramid = train(new_pyramid(load_image(shared_images / "chelsea.png"), cfg, CPU))
    steps = cfg.train.iterations * cfg.train.d_steps
    assert len(weights) == pyramid.num_scales * math.ceil(steps / 4)
    assert weights == [pytest.approx(4 * cfg.train.lambda_grad)] * len(weights)
    # a penalty computed but never added to the critic's loss would leave `reached` empty
    assert reached == [pytest.approx(1.0)] * len(weights)
    check_trained(pyramid, tmp_path / "lazy_gp.png")
    # and the samples still differ from each other and from the photo (test_core's bar; tiny chelsea: 0.31-0.38)
    samples = sample(pyramid, 4, seed=1)
    assert pixel_diversity(samples, pyramid.reals[-1]) >= 0.15
    assert (
        pixel_diversity(pyramid.reals[-1].expand(4, -1, -1, -1), pyramid.reals[-1]) < 0.15
    )  # the control: copies of the photo


# --- the original release's sampling details (issue 25's faithfulness options) ---------------------


@pytest.mark.slow
def test_redrawn_coarsest_z_opt_trains_and_keeps_the_last_draw(shared_images, tmp_path):
    image = load_image(shared_images / "chelsea.png")
    fixed = train(new_pyramid(image, preset("tiny"), CPU))
    redrawn = train(new_pyramid(image, tiny_with(train={"redraw_coarsest_z_opt": True}), CPU))
    # the option ignored would leave the same z_opt_0 as the same seed's fixed one
    assert not torch.equal(redrawn.z_opts[0], fixed.z_opts[0])
    assert all(torch.equal(z, torch.zeros_like(z)) for z in redrawn.z_opts[1:])
    check_trained(redrawn, tmp_path / "redrawn.png")  # G_0 maps fresh noise to x_0: still reconstructs


@pytest.mark.slow
def test_prev_per_d_step_draws_a_coarser_sample_for_every_critic_step(shared_images, monkeypatch):
    calls = {"n": 0}
    real_upsampled = training._upsampled

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real_upsampled(*args, **kwargs)

    monkeypatch.setattr(training, "_upsampled", counted)
    image = load_image(shared_images / "chelsea.png")
    counts = []
    for per_step in (False, True):
        calls["n"] = 0
        cfg = tiny_with(train={"prev_per_d_step": per_step, "iterations": 3})
        pyramid = train(new_pyramid(image, cfg, CPU))
        counts.append(calls["n"])
    extra = pyramid.num_scales * cfg.train.iterations * (cfg.train.d_steps - 1)
    assert counts[1] - counts[0] == extra, counts


def test_gp_every_below_one_is_refused():
    with pytest.raises(InvalidArgument, match="gp_every: must be >= 1"):
        tiny_with(train={"gp_every": 0})


# --- ConSinGAN stage geometry -----------------------------------------------------------------


def consingan_sizes(h: int, w: int, max_size: int, min_size: int, stages: int):
    """ConSinGAN's adjust_scales2image + create_reals_pyramid, written out independently."""
    s1 = min(max_size / max(h, w), 1)
    fh, fw = math.ceil(h * s1), math.ceil(w * s1)
    stop = stages - 1
    r = (min_size / min(fh, fw)) ** (1 / stop)
    exps = [(stop - 1) / math.log(stop) * math.log(stop - i) + 1 for i in range(stop)]
    return [(math.ceil(round(fh * r**e, 6)), math.ceil(round(fw * r**e, 6))) for e in exps] + [(fh, fw)], r


@pytest.mark.parametrize("hw", [(186, 248), (300, 451), (640, 427), (512, 512)])
@pytest.mark.parametrize("stages", [3, 6, 8])
def test_consingan_rule_gives_its_fewer_low_resolution_weighted_stages(hw, stages):
    cfg = PyramidConfig(scale_rule="consingan", num_stages=stages)
    geo = pyramid_geometry(*hw, cfg)
    sizes, r = consingan_sizes(*hw, cfg.max_size, cfg.min_size, stages)
    assert list(geo.sizes) == sizes and geo.num_scales == stages
    assert geo.scale_factor == pytest.approx(r)
    assert min(geo.sizes[0]) == cfg.min_size and max(geo.sizes[-1]) == min(cfg.max_size, max(hw))
    # weighted to low resolution: below the finest step (one r), each step up is a larger jump than
    # the one before (up to the rounding of a few-pixel side), so the stages crowd at the coarse end
    ratios = [min(b) / min(a) for a, b in zip(geo.sizes, geo.sizes[1:])]
    assert all(later >= earlier - 0.02 for earlier, later in zip(ratios[:-1], ratios[1:-1])), ratios
    assert stages == 3 or ratios[-2] > ratios[0] + 0.1, ratios
    assert ratios[-1] == pytest.approx(1 / r, rel=0.03)


def test_balloons_consingan_pyramid_has_six_stages():
    geo = pyramid_geometry(186, 248, PyramidConfig(scale_rule="consingan"))
    assert geo.sizes == ((25, 34), (32, 42), (42, 56), (63, 84), (125, 167), (186, 248))


def test_consingan_rule_is_refused_for_the_super_resolution_pyramid_and_sr_config_uses_the_paper_rule():
    with pytest.raises(InvalidArgument, match="scale_rule: must be 'paper' with exact_scale_factor"):
        PyramidConfig(scale_rule="consingan", exact_scale_factor=True)
    with pytest.raises(InvalidArgument, match="num_stages: must be >= 2"):
        PyramidConfig(scale_rule="consingan", num_stages=1)
    base = tiny_with(pyramid={"scale_rule": "consingan"})
    assert sr_config(base, 4, 100, 120).pyramid.scale_rule == "paper"


@pytest.mark.slow
def test_consingan_stages_train_save_and_load(shared_images, tmp_path):
    image = shared_images / "chelsea.png"
    cfg = tiny_with(pyramid={"scale_rule": "consingan", "num_stages": 4})
    pyramid = new_pyramid(load_image(image), cfg, CPU)
    create_model_dir(tmp_path / "m", pyramid, file_sha256(image), image.name, "tiny")
    train(pyramid, on_scale_done=lambda p, k: save_scale(tmp_path / "m", p, k))
    assert pyramid.num_scales == 4
    check_trained(pyramid, tmp_path / "consingan_stages.png")
    loaded, meta = load_pyramid(tmp_path / "m", CPU)
    assert loaded.sizes == pyramid.sizes and meta.status == "ready"
    assert torch.equal(sample(loaded, 2, seed=5), sample(pyramid, 2, seed=5))


# --- ConSinGAN concurrent training ------------------------------------------------------------


def state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.clone() for name, t in net.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[name], b[name]) for name in a)


def test_scales_changed_by_follows_the_concurrent_stages():
    assert [scales_changed_by(preset("tiny"), k) for k in range(3)] == [range(0, 1), range(1, 2), range(2, 3)]
    cfg = tiny_with(train={"concurrent_stages": 3})
    assert [scales_changed_by(cfg, k) for k in range(4)] == [range(0, 1), range(0, 2), range(0, 3), range(1, 4)]


@pytest.mark.slow
def test_concurrent_stages_train_the_generators_below_and_nothing_else_of_them(shared_images, tmp_path, monkeypatch):
    cfg = tiny_with(train={"concurrent_stages": 2, "stage_lr_scale": 0.25})
    snapshots: list[dict] = []
    learning_rates: list[list[tuple[float, int]]] = []  # per scale: (lr, id of the first parameter) of G's groups
    real_optimizers = training._optimizers

    def spied(generator, critic, train_cfg, earlier=()):
        opt_d, opt_g, schedulers = real_optimizers(generator, critic, train_cfg, earlier)
        learning_rates.append([(g["lr"], id(g["params"][0])) for g in opt_g.param_groups])
        return opt_d, opt_g, schedulers

    def snapshot(p, k):
        snapshots.append(
            {
                "G": [state(g) for g in p.generators],
                "D": [state(d) for d in p.discriminators],
                "noise_amp": list(p.noise_amps),
                "z_opt": [z.clone() for z in p.z_opts],
            }
        )

    monkeypatch.setattr(training, "_optimizers", spied)
    pyramid = train(new_pyramid(load_image(shared_images / "chelsea.png"), cfg, CPU), on_scale_done=snapshot)
    # G_k at lr_g, the concurrently trained G_{k-1} at lr_g * stage_lr_scale (not at the full rate)
    lr_g = cfg.train.lr_g
    first = [id(next(g.parameters())) for g in pyramid.generators]
    assert learning_rates[0] == [(lr_g, first[0])]
    for k in range(1, pyramid.num_scales):
        assert learning_rates[k] == [(lr_g, first[k]), (pytest.approx(lr_g * 0.25), first[k - 1])]
    for k in range(1, pyramid.num_scales):
        before, after = snapshots[k - 1], snapshots[k]
        assert not same(before["G"][k - 1], after["G"][k - 1]), f"G_{k - 1} was not trained along with scale {k}"
        assert all(same(before["G"][j], after["G"][j]) for j in range(k - 1)), (
            "a generator below the concurrent ones changed"
        )
        assert all(same(before["D"][j], after["D"][j]) for j in range(k)), "an earlier critic changed"
        assert after["noise_amp"][:k] == before["noise_amp"] and all(
            map(torch.equal, after["z_opt"][:k], before["z_opt"])
        )
    assert not any(p.requires_grad for g in pyramid.generators for p in g.parameters())
    assert not any(g.training for g in pyramid.generators)
    check_trained(pyramid, tmp_path / "concurrent.png")


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_concurrent_training_killed_between_files_or_scales_resumes_consistently(shared_images, tmp_path, monkeypatch):
    """Stopped after scale 1 (which rewrote scale 0), then killed while saving scale 2 (after its
    files, before model.json): each time the directory loads as it was after scale 1, and the
    resumed model equals the uninterrupted one."""
    image, path = shared_images / "chelsea.png", tmp_path / "m"
    cfg = tiny_with(train={"concurrent_stages": 3, "iterations": 30})  # consistency, not quality: short
    uninterrupted = train(new_pyramid(load_image(image), cfg, CPU))
    after_scale_1: dict = {}

    def stop_after_scale_1(p, k):
        if k == 1:
            after_scale_1.update(G=[state(g) for g in p.generators], noise_amp=list(p.noise_amps))
            raise Interrupt

    job = start_training(image, path, cfg, "tiny", CPU)
    with pytest.raises(Interrupt):
        run_training(job, on_scale_done=stop_after_scale_1)

    def check_after_scale_1():
        meta = read_meta(path)
        assert (meta.scales_done, meta.noise_amp) == (2, after_scale_1["noise_amp"])
        assert meta.scale_files == ["scale_00.r01.safetensors", "scale_01.safetensors"]
        loaded, _ = load_pyramid(path, CPU)
        assert all(same(state(g), s) for g, s in zip(loaded.generators, after_scale_1["G"], strict=True))

    check_after_scale_1()
    assert not (path / "scale_00.safetensors").exists(), "the superseded file of scale 0 is left behind"

    write_meta = storage._write_meta

    def killed_at_scale_2(p, meta):
        if meta.scales_done == 3:
            raise Interrupt
        write_meta(p, meta)

    monkeypatch.setattr(storage, "_write_meta", killed_at_scale_2)
    with pytest.raises(Interrupt):
        run_training(resume_training(path, CPU))
    assert (path / "scale_01.r02.safetensors").exists()  # written, but model.json does not name it
    check_after_scale_1()

    monkeypatch.setattr(storage, "_write_meta", write_meta)
    meta = run_training(resume_training(path, CPU))
    assert meta.status == "ready" and meta.noise_amp == uninterrupted.noise_amps
    assert meta.scale_files == ["scale_00.r02.safetensors", "scale_01.r02.safetensors", "scale_02.safetensors"]
    assert sorted(f.name for f in path.glob("scale_*")) == sorted(meta.scale_files)
    resumed, _ = load_pyramid(path, CPU)
    assert torch.equal(sample(resumed, 2, seed=3), sample(uninterrupted, 2, seed=3))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("concurrent_stages", 0, "concurrent_stages: must be >= 1"),
        ("stage_lr_scale", 0.0, r"stage_lr_scale: must be in \(0, 1\]"),
        ("stage_lr_scale", 1.5, r"stage_lr_scale: must be in \(0, 1\]"),
    ],
)
def test_concurrent_options_out_of_range_are_refused(field, value, message):
    with pytest.raises(InvalidArgument, match=message):
        tiny_with(train={field: value})


def test_consingan_preset_is_the_paper_with_consingan_schedule_only():
    paper, candidate = PRESETS["paper"].to_dict(), PRESETS["consingan"].to_dict()
    changed = {
        (section, name): candidate[section][name]
        for section in paper
        for name in paper[section]
        if paper[section][name] != candidate[section][name]
    }
    assert changed == {("pyramid", "scale_rule"): "consingan", ("train", "concurrent_stages"): 3}
    assert candidate["pyramid"]["num_stages"] == 6 and candidate["train"]["stage_lr_scale"] == 0.1
