"""The words the docker uses: for SinGAN's scales, which are the artist's main control, and for
the models in its list.

Scales are numbered k = 0 (coarsest) .. K-1 (finest), K = the model's ``num_scales``
(docs/protocol.md). Two scale choices matter to an artist:

* **variations** start from scale ``gen_start_scale``: 0 draws new layouts, higher values keep the
  training image's layout and only draw new shapes, then only new detail;
* **harmonize / paint to image** inject the picture at scale k (1..K-1): a coarse k repaints
  shapes and colours, a fine k only touches up texture. None leaves the daemon's default
  (harmonize max(1, K-3), paint to image 1: docs/cli.md, "Applications").

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

import time
from collections import Counter


def _position(k: int, num_scales: int) -> float:
    return k / max(1, num_scales - 1)


def start_scale_label(k: int, num_scales: int) -> str:
    """Words for variations starting at scale ``k`` of ``num_scales``, e.g. ``new layouts (scale 0)``."""
    if k == 0:
        meaning = "new layouts"
    elif _position(k, num_scales) <= 0.5:
        meaning = "same rough layout, new shapes"
    else:
        meaning = "same layout, new fine detail"
    return f"{meaning} (scale {k})"


def injection_scale_label(k: int, num_scales: int) -> str:
    """Words for injecting at scale ``k`` of ``num_scales``, e.g. ``repaint shapes and colours (scale 1)``."""
    position = _position(k, num_scales)
    if position <= 1 / 3:
        meaning = "repaint shapes and colours"
    elif position <= 2 / 3:
        meaning = "adapt colours and texture"
    else:
        meaning = "touch up fine texture"
    return f"{meaning} (scale {k})"


def start_scales(num_scales: int) -> list[tuple[int, str]]:
    """(k, label) for every start scale 0..K-1 of a model with ``num_scales`` = K."""
    return [(k, start_scale_label(k, num_scales)) for k in range(max(1, num_scales))]


def injection_scales(num_scales: int) -> list[tuple[int | None, str]]:
    """(k, label) for the default (None) and every injection scale 1..K-1."""
    default = (None, "default (harmonize K-3, paint 1)")
    return [default] + [(k, injection_scale_label(k, num_scales)) for k in range(1, num_scales)]


def model_text(model: dict, jobs: list[dict]) -> str:
    """A model list entry: name, state, preset and creation time (local), e.g.
    ``chelsea: ready (5 scales, 48 x 32) · tiny · 2026-12-01 19:50`` or
    ``bricks: training 42% (2 of 6 scales) · draft · 2026-12-01 19:52``."""
    status = model["status"]
    if status == "ready":
        state = f"ready ({model['num_scales']} scales, {model['width']} x {model['height']})"
    else:
        job = next((job for job in jobs if job.get("model") == model["id"] and job.get("state") == "running"), None)
        done = f" {job['fraction'] * 100:.0f}%" if job and job.get("fraction") is not None else ""
        state = f"{status}{done} ({model['scales_done']} of {model['num_scales']} scales)"
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(model["created"])) if model.get("created") else "?"
    return f"{model['name']}: {state} · {model.get('preset', '?')} · {created}"


def model_texts(models: list[dict], jobs: list[dict]) -> list[str]:
    """:func:`model_text` of each of ``models``, made unique: an entry that would appear twice
    (same name, state, preset and minute) ends with the model's id, e.g. `` · brick-2``."""
    texts = [model_text(model, jobs) for model in models]
    repeated = Counter(texts)
    return [f"{text} · {model['id']}" if repeated[text] > 1 else text for text, model in zip(texts, models)]


def model_state(model: dict, jobs: list[dict]) -> str:
    """A model's state in a few words: ``ready``, ``training 42%``, ``interrupted 2/7``."""
    status = model["status"]
    if status == "ready":
        return "ready"
    job = next((job for job in jobs if job.get("model") == model["id"] and job.get("state") == "running"), None)
    if job and job.get("fraction") is not None:
        return f"{status} {job['fraction'] * 100:.0f}%"
    return f"{status} {model['scales_done']}/{model['num_scales']}"


def model_choices(models: list[dict], jobs: list[dict]) -> list[tuple[str, str]]:
    """(short, full) texts of each of ``models`` for a one-line model box: the short one is
    ``name · preset · state`` (made unique with the model's id where two would read the same),
    the full one :func:`model_text` (the tooltip)."""
    shorts = [f"{model['name']} · {model.get('preset', '?')} · {model_state(model, jobs)}" for model in models]
    repeated = Counter(shorts)
    shorts = [f"{short} · {model['id']}" if repeated[short] > 1 else short for short, model in zip(shorts, models)]
    return list(zip(shorts, model_texts(models, jobs)))


def duration_text(seconds: float) -> str:
    """``about 40 s``, ``about 13 min``, ``about 1 h 05 min``; no-break spaces keep a number with
    its unit when the docker wraps the text."""
    if seconds < 90:
        text = f"about {max(1, round(seconds))} s"
    else:
        minutes = round(seconds / 60)
        text = f"about {minutes} min" if minutes < 60 else f"about {minutes // 60} h {minutes % 60:02d} min"
    return "about " + text[len("about ") :].replace(" ", "\u00a0")


def training_question(lead: str, subject: str, preset: str, estimate, ask: str) -> str:
    """The docker's question before a training (``estimate``: a :class:`protocol.advice.Estimate`),
    short enough for a narrow docker (the preset's size and iterations are in the preset box), e.g.
    ``Harmonize first trains a 'draft' model of the background: about 13 min, going by this
    daemon's last 2 'draft' trainings. Train it and harmonize?``"""
    time_words = (
        f"{duration_text(estimate.seconds)}, {estimate.basis}"
        if estimate.seconds is not None
        else f"time unknown ({estimate.basis})"
    )
    return f"{lead} a '{preset}' model of {subject}: {time_words}. {ask}"
